import { AppError, BadRequestError, ConflictError, ForbiddenError, NotFoundError } from "@reef/contracts";
import { type Db, isUuid, schema, type Tx, withScope } from "@reef/db";
import { and, count, eq, isNotNull, isNull, lt, or } from "drizzle-orm";
import { requireOperator } from "../admin/admin-service.ts";
import { type AuditService, appendAudit } from "../audit/audit-service.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext, UserActor } from "../shared/context.ts";
import type { Sealer } from "../shared/sealing.ts";
import { hashToken } from "../shared/tokens.ts";
import {
  type AuthTokenRow,
  consumeAuthToken,
  countTokenAttempt,
  findLiveAuthToken,
  linkInvalid,
  revokeUserTokens,
} from "./auth-tokens.ts";
import { provePassword } from "./password-proof.ts";
import { endSessionsIn, type IssuedSession, type PublicUser, type SignIn, type UserRow } from "./sign-in.ts";
import { acceptTotpCode, hashRecoveryCode, newRecoveryCodes, newTotpSecret, totpUri } from "./totp.ts";

const { users, userTotp, recoveryCodes, authTokens, workspaces, workspaceMembers } = schema;

/** The AAD binding a sealed TOTP seed to its owner's row: a seed copied to another account does not open. */
const totpAad = (userId: string) => `totp:${userId}`;

/** Wrong codes an enrolment at sign-in may take before its challenge is void (the password must be given again). */
const ENROL_ATTEMPTS = 5;

/** Too many wrong second-factor codes: the account's second factor is locked until `retryAfter` seconds pass. */
export class TwoFactorLockedError extends AppError {
  /** Seconds until a retry may succeed; sent as `Retry-After`. */
  readonly retryAfter: number;
  constructor(retryAfterSec: number) {
    const minutes = Math.max(1, Math.ceil(retryAfterSec / 60));
    super(
      "TWO_FACTOR_LOCKED",
      `Too many wrong codes: two-factor sign-in for this account is locked for ${minutes} minute${minutes === 1 ? "" : "s"}. Then sign in again.`,
      { details: { retryAfter: retryAfterSec } },
    );
    this.retryAfter = Math.max(1, Math.ceil(retryAfterSec));
  }
}

function invalidCode(recovery: boolean): AppError {
  return new AppError(
    "TWO_FACTOR_INVALID",
    recovery
      ? "That recovery code is not right or has already been used."
      : "That code is not right or has already been used. Enter the current code from your authenticator app.",
  );
}

/** Who must give a second factor: the platform, and each workspace that requires one. */
export interface TwoFactorRequirement {
  platform: boolean;
  workspaces: { id: string; name: string }[];
}

/** The account page's view of a person's two-factor settings. */
export interface TwoFactorStatus {
  enabled: boolean;
  enabledAt: string | null;
  recoveryCodesLeft: number;
  /** The platform or one of the person's workspaces requires a second factor (so it cannot be turned off). */
  required: boolean;
}

/** A finished second-factor sign-in: the session to set, and whether a recovery code was spent. */
export interface TwoFactorSignIn {
  user: PublicUser;
  session: IssuedSession;
  recoveryCodeUsed: boolean;
  recoveryCodesLeft: number;
}

export interface TwoFactorServiceDeps {
  db: Db;
  audit: AuditService;
  rateLimits: RateLimits;
  signIn: SignIn;
  /** The platform sealer (`createPlatformSealer`): TOTP seeds are platform secrets, resealed by `reef rotate-keys`. */
  sealer: Sealer;
  /** Whether the platform requires a second factor (platform settings over configuration). */
  platformRequires: () => Promise<boolean>;
  /** Tells a person their two-factor was reset, when mail is set up. */
  mailer?: () => Promise<Mailer | undefined>;
}

/** Replaces the account's recovery codes in `tx` (user scope). @returns the new codes, shown once. */
async function replaceRecoveryCodes(tx: Tx, userId: string): Promise<string[]> {
  const codes = newRecoveryCodes();
  await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  await tx.insert(recoveryCodes).values(codes.map((code) => ({ userId, codeHash: hashRecoveryCode(code) })));
  return codes;
}

async function codesLeft(tx: Tx, userId: string): Promise<number> {
  const [row] = await tx
    .select({ n: count() })
    .from(recoveryCodes)
    .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)));
  return row?.n ?? 0;
}

/**
 * Reseals every TOTP seed under the current root key (for `reef rotate-keys`),
 * in `tx`, which must be in platform scope. @returns how many were resealed.
 */
export async function resealTotpSeedsIn(tx: Tx, sealer: Sealer): Promise<number> {
  const rows = await tx.select({ userId: userTotp.userId, sealed: userTotp.secretSealed }).from(userTotp).for("update");
  let resealed = 0;
  for (const row of rows) {
    const next = sealer.reseal(row.sealed, totpAad(row.userId));
    if (!next) continue;
    await tx.update(userTotp).set({ secretSealed: next }).where(eq(userTotp.userId, row.userId));
    resealed += 1;
  }
  return resealed;
}

/**
 * Two-factor authentication: TOTP authenticators with one-time recovery codes,
 * enrolled from the account page or, when policy requires it, during sign-in;
 * the second step of password and magic-link sign-ins; an operator's reset.
 * Seeds are sealed under the platform key and never leave after setup.
 */
export function createTwoFactorService(deps: TwoFactorServiceDeps) {
  const { db, audit, rateLimits, signIn, sealer } = deps;

  function requireUserActor(ctx: RequestContext): UserActor {
    if (ctx.actor.kind !== "user") throw new ForbiddenError("Only people have two-factor settings.");
    return ctx.actor;
  }

  async function userRow(tx: Tx, userId: string): Promise<UserRow> {
    const [user] = await tx.select().from(users).where(eq(users.id, userId));
    if (!user) throw new NotFoundError("No such user.");
    return user;
  }

  /** Proves the person's password before a two-factor change (held back like sign-in; a wrong one audited). */
  function provePasswordFor(ctx: RequestContext, user: UserRow, password: string, purpose: string) {
    return provePassword({ rateLimits, audit }, ctx, user, password, {
      action: "user.password_check",
      details: { purpose },
      error: () =>
        new ForbiddenError(
          user.passwordHash
            ? "That password is not right."
            : "This account has no password: set one with “Forgot password” first.",
        ),
    });
  }

  async function requirementIn(tx: Tx, userId: string): Promise<TwoFactorRequirement> {
    const rows = await tx
      .select({ id: workspaces.id, name: workspaces.name })
      .from(workspaceMembers)
      .innerJoin(workspaces, eq(workspaces.id, workspaceMembers.workspaceId))
      .where(and(eq(workspaceMembers.userId, userId), eq(workspaces.requireTwoFactor, true)));
    return { platform: await deps.platformRequires(), workspaces: rows };
  }

  /** The `two_factor` challenge behind `challenge`, read without using it up (it is used on success only). */
  async function readChallenge(challenge: string): Promise<AuthTokenRow & { userId: string }> {
    const row = await withScope(db, {}, (tx) => findLiveAuthToken(tx, "two_factor", challenge));
    if (!row) throw linkInvalid("This sign-in step has expired or was already used. Sign in again.");
    return row;
  }

  async function voidChallenge(challenge: string): Promise<void> {
    const tokenHash = hashToken(challenge);
    await withScope(db, { lookup: { auth_token: tokenHash } }, (tx) =>
      tx
        .update(authTokens)
        .set({ usedAt: new Date() })
        .where(and(eq(authTokens.tokenHash, tokenHash), isNull(authTokens.usedAt))),
    );
  }

  const methodOf = (row: AuthTokenRow) => (typeof row.data.method === "string" ? row.data.method : "password");

  /** Starts (or restarts) a pending enrolment in `tx` (user scope). @returns what the authenticator app needs. */
  async function startEnrolmentIn(tx: Tx, ctx: RequestContext, user: UserRow) {
    const [existing] = await tx.select().from(userTotp).where(eq(userTotp.userId, user.id));
    if (existing?.confirmedAt) {
      throw new ConflictError("Two-factor is already on. Turn it off first to use another authenticator.");
    }
    const secret = newTotpSecret();
    const sealed = sealer.seal(secret, totpAad(user.id));
    await tx
      .insert(userTotp)
      .values({ userId: user.id, secretSealed: sealed })
      .onConflictDoUpdate({
        target: userTotp.userId,
        set: { secretSealed: sealed, confirmedAt: null, lastStep: null, createdAt: new Date() },
      });
    await appendAudit(tx, ctx, {
      workspaceId: null,
      action: "user.two_factor_setup",
      targetType: "user",
      targetId: user.id,
    });
    return { secret, otpauthUri: totpUri(secret, user.email) };
  }

  /** Confirms the pending enrolment with a code in `tx` (user scope). @returns the recovery codes, or undefined for a wrong code. */
  async function confirmEnrolmentIn(tx: Tx, ctx: RequestContext, userId: string, code: string) {
    const [pending] = await tx.select().from(userTotp).where(eq(userTotp.userId, userId)).for("update");
    if (!pending) throw new BadRequestError("Start setting up two-factor first.");
    if (pending.confirmedAt) throw new ConflictError("Two-factor is already on.");
    const step = await acceptTotpCode(sealer.open(pending.secretSealed, totpAad(userId)), code, pending.lastStep);
    if (step === undefined) return undefined;
    await tx.update(userTotp).set({ confirmedAt: new Date(), lastStep: step }).where(eq(userTotp.userId, userId));
    const codes = await replaceRecoveryCodes(tx, userId);
    await appendAudit(tx, ctx, {
      workspaceId: null,
      action: "user.two_factor_enable",
      targetType: "user",
      targetId: userId,
    });
    return codes;
  }

  /**
   * A wrong code at sign-in: counted per account. Spending the allowance locks
   * the account's second factor for the window, voids the challenge and is
   * audited once, as `auth.two_factor_lockout`.
   */
  async function wrongCode(ctx: RequestContext, userId: string, challenge: string, recovery: boolean): Promise<never> {
    const left = await rateLimits.spend("two_factor", userId);
    if (left.remaining <= 0) {
      await voidChallenge(challenge);
      // Parallel wrong codes each spend a point; only the one that spent the last writes the entry.
      const lockedNow = left.remaining === 0;
      if (lockedNow) {
        await audit.recordEvent(ctx, {
          workspaceId: null,
          action: "auth.two_factor_lockout",
          outcome: "failure",
          targetType: "user",
          targetId: userId,
          details: { retryAfter: left.retryAfterSec },
        });
      }
      throw new TwoFactorLockedError(left.retryAfterSec);
    }
    await audit.recordEvent(ctx, {
      workspaceId: null,
      action: "auth.two_factor",
      outcome: "failure",
      targetType: "user",
      targetId: userId,
      details: { kind: recovery ? "recovery_code" : "totp", attemptsLeft: left.remaining },
    });
    throw invalidCode(recovery);
  }

  return {
    /** Whether the person has two-factor on, how many recovery codes are left, and whether policy requires it. */
    async status(ctx: RequestContext): Promise<TwoFactorStatus> {
      const actor = requireUserActor(ctx);
      return withScope(db, { userId: actor.userId }, async (tx) => {
        const [totp] = await tx
          .select({ confirmedAt: userTotp.confirmedAt })
          .from(userTotp)
          .where(eq(userTotp.userId, actor.userId));
        const required = await requirementIn(tx, actor.userId);
        return {
          enabled: totp?.confirmedAt != null,
          enabledAt: totp?.confirmedAt?.toISOString() ?? null,
          recoveryCodesLeft: totp?.confirmedAt ? await codesLeft(tx, actor.userId) : 0,
          required: required.platform || required.workspaces.length > 0,
        };
      });
    },

    /** What requires a second factor of this person (the platform and which workspaces). */
    async requirement(userId: string): Promise<TwoFactorRequirement> {
      return withScope(db, { userId }, (tx) => requirementIn(tx, userId));
    },

    /** Starts (or restarts) enrolment from the account page, after the password. @returns the new secret and its URI. */
    async setup(ctx: RequestContext, password: string) {
      const actor = requireUserActor(ctx);
      const user = await withScope(db, { userId: actor.userId }, (tx) => userRow(tx, actor.userId));
      await provePasswordFor(ctx, user, password, "two_factor_setup");
      return withScope(db, { userId: actor.userId }, (tx) => startEnrolmentIn(tx, ctx, user));
    },

    /** Finishes enrolment with a code from the app. @returns ten recovery codes, shown once. */
    async confirm(ctx: RequestContext, code: string): Promise<string[]> {
      const actor = requireUserActor(ctx);
      const codes = await withScope(db, { userId: actor.userId }, (tx) =>
        confirmEnrolmentIn(tx, ctx, actor.userId, code),
      );
      if (!codes) throw invalidCode(false);
      return codes;
    },

    /** Turns two-factor off (password proven), unless the platform or one of the person's workspaces requires it. */
    async disable(ctx: RequestContext, password: string): Promise<void> {
      const actor = requireUserActor(ctx);
      const { user, required } = await withScope(db, { userId: actor.userId }, async (tx) => ({
        user: await userRow(tx, actor.userId),
        required: await requirementIn(tx, actor.userId),
      }));
      await provePasswordFor(ctx, user, password, "two_factor_disable");
      if (required.platform) {
        throw new AppError("TWO_FACTOR_REQUIRED", "Two-factor cannot be turned off: this Reef requires it.");
      }
      if (required.workspaces.length) {
        const names = required.workspaces.map((w) => `“${w.name}”`).join(", ");
        throw new AppError(
          "TWO_FACTOR_REQUIRED",
          `Two-factor cannot be turned off: ${names} ${required.workspaces.length === 1 ? "requires" : "require"} it.`,
        );
      }
      await withScope(db, { userId: actor.userId }, async (tx) => {
        const gone = await tx.delete(userTotp).where(eq(userTotp.userId, actor.userId)).returning();
        await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, actor.userId));
        if (gone.some((g) => g.confirmedAt)) {
          await appendAudit(tx, ctx, {
            workspaceId: null,
            action: "user.two_factor_disable",
            targetType: "user",
            targetId: actor.userId,
          });
        }
      });
    },

    /** A new set of recovery codes (password proven); the old set stops working. */
    async regenerateRecoveryCodes(ctx: RequestContext, password: string): Promise<string[]> {
      const actor = requireUserActor(ctx);
      const user = await withScope(db, { userId: actor.userId }, (tx) => userRow(tx, actor.userId));
      await provePasswordFor(ctx, user, password, "recovery_codes");
      return withScope(db, { userId: actor.userId }, async (tx) => {
        const [totp] = await tx
          .select({ confirmedAt: userTotp.confirmedAt })
          .from(userTotp)
          .where(and(eq(userTotp.userId, actor.userId), isNotNull(userTotp.confirmedAt)));
        if (!totp) throw new ConflictError("Turn two-factor on first.");
        const codes = await replaceRecoveryCodes(tx, actor.userId);
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "user.recovery_codes_regenerate",
          targetType: "user",
          targetId: actor.userId,
        });
        return codes;
      });
    },

    /**
     * The second step of a password or magic-link sign-in: a code from the
     * authenticator (each accepted once) or a recovery code (each works once).
     * The challenge is used up only on success; wrong codes count towards the
     * account's lockout.
     */
    async verifyChallenge(
      ctx: RequestContext,
      input: { challenge: string; code?: string | undefined; recoveryCode?: string | undefined },
    ): Promise<TwoFactorSignIn> {
      const token = await readChallenge(input.challenge);
      const userId = token.userId;
      const lock = await rateLimits.peek("two_factor", userId);
      if (lock.remaining <= 0) {
        await voidChallenge(input.challenge);
        throw new TwoFactorLockedError(lock.retryAfterSec);
      }
      const recovery = input.recoveryCode !== undefined;
      const result = await withScope(db, { userId, lookup: { auth_token: token.tokenHash } }, async (tx) => {
        const user = await userRow(tx, userId);
        if (user.deactivatedAt) throw linkInvalid("This account has been deactivated. Ask an administrator.");
        const [totp] = await tx
          .select()
          .from(userTotp)
          .where(and(eq(userTotp.userId, userId), isNotNull(userTotp.confirmedAt)));
        if (!totp) throw linkInvalid("This account has no authenticator any more. Sign in again.");
        if (input.recoveryCode !== undefined) {
          const [used] = await tx
            .update(recoveryCodes)
            .set({ usedAt: new Date() })
            .where(
              and(
                eq(recoveryCodes.userId, userId),
                eq(recoveryCodes.codeHash, hashRecoveryCode(input.recoveryCode)),
                isNull(recoveryCodes.usedAt),
              ),
            )
            .returning({ id: recoveryCodes.id });
          if (!used) return undefined;
        } else {
          const step = await acceptTotpCode(
            sealer.open(totp.secretSealed, totpAad(userId)),
            input.code ?? "",
            totp.lastStep,
          );
          if (step === undefined) return undefined;
          // Conditional, so two requests racing with the same code cannot both win.
          const [accepted] = await tx
            .update(userTotp)
            .set({ lastStep: step })
            .where(and(eq(userTotp.userId, userId), or(isNull(userTotp.lastStep), lt(userTotp.lastStep, step))))
            .returning({ userId: userTotp.userId });
          if (!accepted) return undefined;
        }
        await consumeAuthToken(tx, "two_factor", input.challenge, { what: "This sign-in step" });
        const left = await codesLeft(tx, userId);
        const outcome = await signIn.startSessionIn(
          tx,
          ctx,
          user,
          `${methodOf(token)}+totp`,
          recovery ? { recoveryCodeUsed: true, recoveryCodesLeft: left } : {},
        );
        return { user: outcome.user, session: outcome.session, recoveryCodeUsed: recovery, recoveryCodesLeft: left };
      });
      if (!result) return wrongCode(ctx, userId, input.challenge, recovery);
      await rateLimits.reset("two_factor", userId);
      return result;
    },

    /** Sign-in when policy requires a second factor the account does not have yet: a new authenticator. */
    async enrolStart(ctx: RequestContext, challenge: string) {
      const token = await readChallenge(challenge);
      if (token.data.next !== "two_factor_enrol") {
        throw linkInvalid("This account already has an authenticator: enter its code instead.");
      }
      return withScope(db, { userId: token.userId }, async (tx) =>
        startEnrolmentIn(tx, ctx, await userRow(tx, token.userId)),
      );
    },

    /** Finishes enrolment at sign-in: the session, and ten recovery codes shown once. */
    async enrolConfirm(ctx: RequestContext, challenge: string, code: string) {
      const token = await readChallenge(challenge);
      if (token.data.next !== "two_factor_enrol") {
        throw linkInvalid("This account already has an authenticator: enter its code instead.");
      }
      const userId = token.userId;
      const result = await withScope(db, { userId, lookup: { auth_token: token.tokenHash } }, async (tx) => {
        const user = await userRow(tx, userId);
        const codes = await confirmEnrolmentIn(tx, ctx, userId, code);
        if (!codes) return undefined;
        await consumeAuthToken(tx, "two_factor", challenge, { what: "This sign-in step" });
        const outcome = await signIn.startSessionIn(tx, ctx, user, `${methodOf(token)}+totp`, { enrolled: true });
        return { user: outcome.user, session: outcome.session, recoveryCodes: codes };
      });
      if (result) return result;
      const attempts = await withScope(db, { lookup: { auth_token: token.tokenHash } }, (tx) =>
        countTokenAttempt(tx, token.id),
      );
      if (attempts >= ENROL_ATTEMPTS) {
        await voidChallenge(challenge);
        throw linkInvalid("Too many wrong codes. Sign in again to start over.");
      }
      throw invalidCode(false);
    },

    /**
     * Operators: removes a person's authenticator and recovery codes (they lost
     * their phone) and signs them out everywhere; their next sign-in enrols
     * again if policy requires it. The person is told by email when mail is set up.
     */
    async adminReset(ctx: RequestContext, userId: string): Promise<void> {
      requireOperator(ctx);
      if (!isUuid(userId)) throw new NotFoundError("No such user.");
      const user = await withScope(db, { platform: true, userId }, async (tx) => {
        const target = await userRow(tx, userId);
        const gone = await tx.delete(userTotp).where(eq(userTotp.userId, userId)).returning({ id: userTotp.userId });
        await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
        const revoked = await endSessionsIn(tx, userId);
        await revokeUserTokens(tx, userId, ["two_factor"]);
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "user.two_factor_reset",
          targetType: "user",
          targetId: userId,
          details: { hadAuthenticator: gone.length > 0, sessionsRevoked: revoked },
        });
        return target;
      });
      await rateLimits.reset("two_factor", userId);
      const mailer = await deps.mailer?.();
      if (mailer) {
        // Best effort: the reset stands even when the mail server is down.
        await mailer
          .send({
            to: user.email,
            subject: "Your Reef two-factor sign-in was reset",
            text:
              "An administrator reset two-factor sign-in for your Reef account and signed you out everywhere.\n" +
              "Sign in again and set up your authenticator app. If you did not ask for this, tell your administrator.\n",
          })
          .catch(() => undefined);
      }
    },
  };
}

export type TwoFactorService = ReturnType<typeof createTwoFactorService>;
