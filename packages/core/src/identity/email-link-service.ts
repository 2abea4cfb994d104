import { ConflictError, UnavailableError } from "@reef/contracts";
import { type AuthTokenKind, type Db, extendScope, schema, type Tx, withScope } from "@reef/db";
import { and, eq, isNull, ne, sql } from "drizzle-orm";
import { type AuditService, appendAudit } from "../audit/audit-service.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext } from "../shared/context.ts";
import { isUniqueViolation } from "../shared/pg-errors.ts";
import { newToken } from "../shared/tokens.ts";
import {
  consumeAuthToken,
  findLiveAuthToken,
  issueAuthToken,
  linkInvalid,
  type NewAuthToken,
  revokeUserTokens,
} from "./auth-tokens.ts";
import { ssoRequired } from "./identity-service.ts";
import { safeNextPath } from "./next-path.ts";
import { checkPasswordPolicy, hashPassword } from "./passwords.ts";
import { endSessionsIn, type SignIn, type SignInOutcome, type UserRow } from "./sign-in.ts";

const { users, userIdentities, identityProviders } = schema;

/** How long a magic link lasts (it signs in: short). */
export const MAGIC_LINK_TTL_MS = 15 * 60_000;
/** How long a password reset link lasts. */
export const PASSWORD_RESET_TTL_MS = 60 * 60_000;
/** How long a new address's confirmation link lasts (people read that mailbox later). */
export const EMAIL_CHANGE_TTL_MS = 24 * 60 * 60_000;

/** The tokens a new password ends: links mailed before it must not sign in after it. */
export const LINKS_ENDED_BY_PASSWORD: AuthTokenKind[] = ["magic_link", "password_reset", "two_factor"];

/** The mail and link settings the emailed flows share (both read per request: operators change them at runtime). */
export interface EmailLinkMail {
  mailer: () => Promise<Mailer | undefined>;
  publicUrl: () => Promise<string>;
  /** Told about mail that could not be sent in the background (never given the link). */
  log?: { warn(obj: object, msg: string): void } | undefined;
}

export interface EmailLinkServiceDeps extends EmailLinkMail {
  db: Db;
  audit: AuditService;
  rateLimits: RateLimits;
  signIn: SignIn;
}

/** `<publicUrl>/<page>?token=…` (plus extra query parameters), the address an emailed link opens. */
export function linkUrl(publicUrl: string, page: string, token: string, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams({ token, ...extra });
  return `${publicUrl.replace(/\/$/, "")}/${page}?${query.toString()}`;
}

/** The refusal when no mail server is configured (the sign-in page hides these options then). */
export function mailNotConfigured(what: string): UnavailableError {
  return new UnavailableError(
    `${what} by email is not available: no mail server is configured on this Reef. Ask an administrator.`,
    { retryable: false },
  );
}

/** The user with this email (case-insensitive), read through the email lookup. */
export async function userByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  const lower = email.trim().toLowerCase();
  return withScope(db, { lookup: { email: lower } }, async (tx) => {
    const [row] = await tx.select().from(users).where(sql`lower(${users.email}) = ${lower}`);
    return row;
  });
}

/** Whether another account than `userId` already has `email` (read in `tx`, widened to that email). */
export async function emailTakenIn(tx: Tx, email: string, userId: string): Promise<boolean> {
  const lower = email.toLowerCase();
  await extendScope(tx, { lookup: { email: lower } });
  const [row] = await tx
    .select({ id: users.id })
    .from(users)
    .where(and(sql`lower(${users.email}) = ${lower}`, ne(users.id, userId)));
  return row !== undefined;
}

/**
 * Sends a mail without holding the request for the mail server: the answer to an
 * anonymous request then takes as long whether an account exists or not, and a
 * relay's failure does not tell the asker either. Failures go to the log.
 */
function sendInBackground(mail: EmailLinkMail, mailer: Mailer, m: Parameters<Mailer["send"]>[0], what: string) {
  void mailer.send(m).catch((err: unknown) => mail.log?.warn({ err, what }, "an account email could not be sent"));
}

/**
 * The emailed sign-in flows that anyone may start: magic links, password reset,
 * and confirming a new email address. Asking never tells whether an account
 * exists (always 202, same work up to the mail, mail sent in the background).
 */
export function createEmailLinkService(deps: EmailLinkServiceDeps) {
  const { db, audit, rateLimits, signIn } = deps;

  /** The mailer, or a 503 saying the feature needs one. Checked before anything is counted. */
  async function requireMailer(what: string): Promise<Mailer> {
    const mailer = await deps.mailer();
    if (!mailer) throw mailNotConfigured(what);
    return mailer;
  }

  /** Both limits of an anonymous emailed request: per address (mail bombing) and per IP (spraying addresses). */
  async function limit(ctx: RequestContext, email: string) {
    await rateLimits.consume("login_ip", ctx.ip ?? "unknown", ctx);
    await rateLimits.consume("auth_email", email, ctx);
  }

  /**
   * The account an anonymous emailed request may mail, or undefined: none with
   * this address, deactivated, or SSO required and not breakglass (audited as
   * `action`, denied). The asker is told none of it.
   */
  async function mailableAccount(ctx: RequestContext, email: string, action: string): Promise<UserRow | undefined> {
    const user = await userByEmail(db, email);
    if (!user || user.deactivatedAt) return undefined;
    if (!user.breakglass && (await signIn.policy.requireSso())) {
      await audit.recordEvent(ctx, {
        workspaceId: null,
        action,
        outcome: "denied",
        targetType: "user",
        targetId: user.id,
        details: { reason: "sso_required" },
      });
      return undefined;
    }
    return user;
  }

  /**
   * Issues the token of a link mailed to `user` (to their current address) and
   * audits the request as `action`, in one transaction; `endOlder` first ends
   * their unused links of that kind, so only the newest works. The public URL is
   * read meanwhile. @returns the token and the public URL.
   */
  function issueLink(
    ctx: RequestContext,
    user: UserRow,
    action: string,
    link: Omit<NewAuthToken, "userId" | "email">,
    opts: { endOlder?: boolean } = {},
  ): Promise<[string, string]> {
    return Promise.all([
      withScope(db, { userId: user.id }, async (tx) => {
        if (opts.endOlder) await revokeUserTokens(tx, user.id, [link.kind]);
        const token = await issueAuthToken(tx, { ...link, userId: user.id, email: user.email });
        await appendAudit(tx, ctx, { workspaceId: null, action, targetType: "user", targetId: user.id });
        return token;
      }),
      deps.publicUrl(),
    ]);
  }

  /** Names of the single sign-on providers an account is linked to (for the "use SSO instead" mail). */
  async function providerNames(userId: string): Promise<string[]> {
    return withScope(db, { userId, platform: true }, async (tx) => {
      const rows = await tx
        .select({ name: identityProviders.name })
        .from(userIdentities)
        .innerJoin(identityProviders, eq(identityProviders.id, userIdentities.providerId))
        .where(eq(userIdentities.userId, userId));
      return rows.map((r) => r.name);
    });
  }

  const service = {
    /**
     * "Email me a sign-in link". @returns the browser binding to set as cookie,
     * whatever happened (the answer is the same for every address). An account
     * that may not use it (none, deactivated, or SSO required and not breakglass)
     * gets no mail and the asker is not told: saying SSO_REQUIRED here would tell
     * anyone which addresses have accounts.
     */
    async requestMagicLink(
      ctx: RequestContext,
      input: { email: string; next?: string | undefined; binding?: string | undefined },
    ): Promise<{ binding: string }> {
      const mailer = await requireMailer("Signing in with a link");
      const email = input.email.trim().toLowerCase();
      await limit(ctx, email);
      // A browser asking twice keeps one binding, so both links work in it.
      const binding = input.binding && /^rlb_[A-Za-z0-9_-]{43}$/.test(input.binding) ? input.binding : newToken("rlb_");
      const user = await mailableAccount(ctx, email, "auth.magic_link_request");
      if (!user) return { binding };
      const next = safeNextPath(input.next);
      const [token, publicUrl] = await issueLink(ctx, user, "auth.magic_link_request", {
        kind: "magic_link",
        binding,
        ttlMs: MAGIC_LINK_TTL_MS,
        data: next ? { next } : {},
      });
      const url = linkUrl(publicUrl, "magic", token, next ? { next } : {});
      sendInBackground(
        deps,
        mailer,
        {
          to: user.email,
          subject: "Your Reef sign-in link",
          text:
            `Someone (from IP address ${ctx.ip ?? "unknown"}) asked to sign in to Reef as ${user.email}.\n\n` +
            `Sign in (the link works once, for 15 minutes, in the browser it was asked from):\n${url}\n\n` +
            "If this was not you, ignore this email: nobody can sign in without the link.\n",
        },
        "magic_link",
      );
      return { binding };
    },

    /**
     * Signs in with an emailed link, in the browser that asked for it (`binding`).
     * @returns a session or the second-factor step, and the path to land on.
     */
    async consumeMagicLink(
      ctx: RequestContext,
      input: { token: string; binding?: string | undefined },
    ): Promise<{ outcome: SignInOutcome; next: string | undefined }> {
      const { user, next } = await withScope(db, {}, async (tx) => {
        const row = await consumeAuthToken(tx, "magic_link", input.token, {
          binding: input.binding,
          what: "This sign-in link",
        });
        if (!row.userId) throw linkInvalid("This sign-in link is not valid. Ask for a new one.");
        await extendScope(tx, { userId: row.userId });
        const [u] = await tx.select().from(users).where(eq(users.id, row.userId));
        if (!u || u.deactivatedAt) throw linkInvalid("This sign-in link is not valid. Ask for a new one.");
        // The address the link went to must still be the account's (an email change ends old links).
        if (row.email && row.email.toLowerCase() !== u.email.toLowerCase()) {
          throw linkInvalid("This sign-in link is not valid any more. Ask for a new one.");
        }
        return { user: u, next: safeNextPath(row.data.next) };
      });
      // Policy may have changed since the link was mailed; the link's holder proved the address, so saying so leaks nothing.
      if (!user.breakglass && (await signIn.policy.requireSso())) throw ssoRequired();
      const outcome = await signIn.afterFirstFactor(ctx, user, "magic_link");
      return { outcome, next };
    },

    /**
     * "Forgot password": mails a reset link (1 h, usable from any device: people
     * open mail on their phone). A new request ends older unused reset links.
     * Accounts without a password are told to use their SSO provider; accounts that
     * must use SSO anyway get nothing. The asker is never told which.
     */
    async requestPasswordReset(ctx: RequestContext, input: { email: string }): Promise<void> {
      const mailer = await requireMailer("Resetting a password");
      const email = input.email.trim().toLowerCase();
      await limit(ctx, email);
      const user = await mailableAccount(ctx, email, "user.password_reset_request");
      if (!user) return;
      if (!user.passwordHash) {
        const names = await providerNames(user.id);
        const via = names.length ? names.join(" or ") : "your organisation's single sign-on";
        sendInBackground(
          deps,
          mailer,
          {
            to: user.email,
            subject: "Signing in to Reef",
            text:
              `Someone (from IP address ${ctx.ip ?? "unknown"}) asked to reset the Reef password of ${user.email}.\n\n` +
              `This account has no password: sign in with ${via} on the Reef sign-in page.\n\n` +
              "If this was not you, ignore this email.\n",
          },
          "password_reset_sso",
        );
        return;
      }
      const [token, publicUrl] = await issueLink(
        ctx,
        user,
        "user.password_reset_request",
        { kind: "password_reset", ttlMs: PASSWORD_RESET_TTL_MS },
        { endOlder: true },
      );
      sendInBackground(
        deps,
        mailer,
        {
          to: user.email,
          subject: "Reset your Reef password",
          text:
            `Someone (from IP address ${ctx.ip ?? "unknown"}) asked to reset the Reef password of ${user.email}.\n\n` +
            `Choose a new password (the link works once, for 1 hour):\n${linkUrl(publicUrl, "reset-password", token)}\n\n` +
            "If this was not you, ignore this email: your password stays as it is.\n",
        },
        "password_reset",
      );
    },

    /**
     * Sets a new password from a reset link. The password is checked before the
     * link is used, so a weak one does not burn it. Every session and unused
     * emailed link of the account ends; no session is started (signing in again
     * also asks for the second factor).
     */
    async completePasswordReset(ctx: RequestContext, input: { token: string; password: string }): Promise<void> {
      const what = "This password reset link";
      // A look first (nothing used): a dead link is said before the password is judged or hashed.
      const owner = await withScope(db, {}, async (tx) => {
        const row = await findLiveAuthToken(tx, "password_reset", input.token);
        if (!row) {
          // Throws the sentence saying what is wrong with the link (and rolls back).
          await consumeAuthToken(tx, "password_reset", input.token, { what });
          throw linkInvalid(`${what} is not valid. Ask for a new one.`);
        }
        await extendScope(tx, { userId: row.userId });
        const [u] = await tx.select().from(users).where(eq(users.id, row.userId));
        return u;
      });
      if (!owner) throw linkInvalid(`${what} is not valid. Ask for a new one.`);
      checkPasswordPolicy(input.password, owner.email);
      const passwordHash = await hashPassword(input.password);
      const user = await withScope(db, {}, async (tx) => {
        const row = await consumeAuthToken(tx, "password_reset", input.token, { what });
        if (!row.userId) throw linkInvalid(`${what} is not valid. Ask for a new one.`);
        await extendScope(tx, { userId: row.userId });
        const [u] = await tx
          .update(users)
          .set({ passwordHash, updatedAt: new Date() })
          .where(and(eq(users.id, row.userId), isNull(users.deactivatedAt)))
          .returning();
        if (!u) throw linkInvalid(`${what} is not valid. Ask for a new one.`);
        const ended = await endSessionsIn(tx, u.id);
        await revokeUserTokens(tx, u.id, LINKS_ENDED_BY_PASSWORD);
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "user.password_reset",
          targetType: "user",
          targetId: u.id,
          details: { sessionsRevoked: ended },
        });
        return u;
      });
      // Guessing slowed on the old password ends with it.
      await rateLimits.reset("login_account", user.email.toLowerCase());
    },

    /**
     * Makes a requested email change take effect from the link mailed to the new
     * address, if the address is still free, and tells the old address.
     */
    async confirmEmailChange(ctx: RequestContext, input: { token: string }): Promise<void> {
      const what = "This email confirmation link";
      const changed = await withScope(db, {}, async (tx) => {
        const row = await consumeAuthToken(tx, "email_change", input.token, { what });
        const newEmail = typeof row.data.newEmail === "string" ? row.data.newEmail : undefined;
        if (!row.userId || !newEmail) throw linkInvalid(`${what} is not valid. Ask for a new one.`);
        await extendScope(tx, { userId: row.userId });
        const [before] = await tx.select().from(users).where(eq(users.id, row.userId));
        if (!before || before.deactivatedAt) throw linkInvalid(`${what} is not valid. Ask for a new one.`);
        if (await emailTakenIn(tx, newEmail, before.id)) {
          throw new ConflictError(`Another account now uses ${newEmail}. Choose another address.`);
        }
        const [after] = await tx
          .update(users)
          .set({ email: newEmail, updatedAt: new Date() })
          .where(eq(users.id, before.id))
          .returning();
        if (!after) throw new Error("user update returned nothing");
        // Links mailed to the old address must not work once it is no longer the account's.
        await revokeUserTokens(tx, before.id, ["magic_link", "password_reset", "email_change"]);
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "user.email_change",
          targetType: "user",
          targetId: before.id,
          details: { from: before.email, to: after.email },
        });
        return { from: before.email, to: after.email };
      }).catch((err: unknown) => {
        if (isUniqueViolation(err)) throw new ConflictError("Another account now uses this address. Choose another.");
        throw err;
      });
      const mailer = await deps.mailer();
      if (mailer) {
        sendInBackground(
          deps,
          mailer,
          {
            to: changed.from,
            subject: "Your Reef email address was changed",
            text:
              `The email address of your Reef account was changed from ${changed.from} to ${changed.to}.\n\n` +
              "If you did not do this, contact your Reef administrator at once.\n",
          },
          "email_change_notice",
        );
      }
    },
  };
  return service;
}

export type EmailLinkService = ReturnType<typeof createEmailLinkService>;
