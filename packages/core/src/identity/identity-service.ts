import { AppError, ConflictError, ForbiddenError, NotFoundError, UnauthorizedError } from "@reef/contracts";
import { type Db, schema, type Tx, withScope } from "@reef/db";
import { and, desc, eq, gt, isNull, sql } from "drizzle-orm";
import { type AuditService, appendAudit } from "../audit/audit-service.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext, UserActor } from "../shared/context.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import { isUniqueViolation } from "../shared/pg-errors.ts";
import { hashToken } from "../shared/tokens.ts";
import { holdPasswordGuess } from "./password-proof.ts";
import { checkPasswordPolicy, hashPassword, verifyPassword } from "./passwords.ts";
import { createAccountIn, methodHasSecondFactor, type SignIn, type SignInOutcome, toPublicUser } from "./sign-in.ts";

export type { PublicUser } from "./sign-in.ts";

const { users, sessions, workspaceMembers, workspaces, invites } = schema;

export interface SessionInfo {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  current: boolean;
  /** How it signed in (`password+totp`, `oidc:<slug>`, …); null for sessions from before methods were recorded. */
  method: string | null;
}

export interface IdentityServiceDeps {
  db: Db;
  audit: AuditService;
  rateLimits: RateLimits;
  signIn: SignIn;
}

/** Password sign-in refused: the operator requires single sign-on and this is not a breakglass account. */
export function ssoRequired(): AppError {
  return new AppError(
    "SSO_REQUIRED",
    "Password sign-in is turned off: sign in with your organisation's single sign-on.",
  );
}

const TOUCH_EVERY_MS = 60_000;

/** The invite a sign-up uses: pending, unexpired, and sent to this email; otherwise a plain refusal. */
async function usableInvite(tx: Tx, tokenHash: string, email: string) {
  const [invite] = await tx.select().from(invites).where(eq(invites.tokenHash, tokenHash));
  if (!invite || invite.revokedAt) throw new NotFoundError("This invite link is not valid. Ask for a new one.");
  if (invite.acceptedAt) throw new ConflictError("This invite has already been used. Sign in instead.");
  if (invite.expiresAt.getTime() <= Date.now()) throw new ConflictError("This invite has expired. Ask for a new one.");
  if (invite.email.toLowerCase() !== email.toLowerCase()) {
    throw new ForbiddenError("This invite was sent to a different email address. Sign up with that address.");
  }
  return invite;
}

export function createIdentityService(deps: IdentityServiceDeps) {
  const { db, audit, rateLimits, signIn } = deps;

  const service = {
    /**
     * Creates an account with a personal workspace it owns, and signs it in. The
     * very first account on the platform becomes its super_admin. With an invite
     * token the account joins the inviting workspace instead (no empty personal
     * workspace), using the invite in the same transaction.
     */
    async signup(
      ctx: RequestContext,
      input: { email: string; password: string; name: string; inviteToken?: string | undefined },
    ) {
      await rateLimits.consume("signup_ip", ctx.ip ?? "unknown", ctx);
      const email = input.email.trim();
      checkPasswordPolicy(input.password, email);
      const passwordHash = await hashPassword(input.password);
      const userId = crypto.randomUUID();
      const inviteHash = input.inviteToken ? hashToken(input.inviteToken) : undefined;
      if (inviteHash) await rateLimits.consume("invite_accept", ctx.ip ?? "unknown", ctx);
      if (await signIn.policy.requireSso()) {
        // With SSO required only the very first account (the operator's) is made with a password.
        const anyone = await withScope(db, { platform: true }, (tx) =>
          tx.select({ id: users.id }).from(users).limit(1),
        );
        if (anyone.length > 0) throw ssoRequired();
      }
      try {
        const lookup = { email: email.toLowerCase(), ...(inviteHash ? { invite: inviteHash } : {}) };
        return await withScope(db, { userId, lookup }, async (tx) => {
          const invite = inviteHash ? await usableInvite(tx, inviteHash, email) : undefined;
          const created = await createAccountIn(tx, ctx, {
            userId,
            email,
            name: input.name.trim(),
            passwordHash,
            home: invite ? { kind: "join", workspaceId: invite.workspaceId, role: invite.role } : { kind: "personal" },
            via: invite ? "invite" : "password",
          });
          if (!created) throw new ConflictError("An account with this email already exists. Sign in instead.");
          const { user, workspace } = created;
          const outcome = await signIn.startSessionIn(tx, ctx, user, "signup");
          if (invite) {
            await tx
              .update(invites)
              .set({ acceptedAt: new Date(), acceptedBy: userId })
              .where(eq(invites.id, invite.id));
            await appendAudit(
              tx,
              {
                ...ctx,
                actor: { kind: "user", userId, platformRole: user.platformRole, sessionId: outcome.session.id },
              },
              {
                workspaceId: workspace.id,
                action: "invite.accept",
                targetType: "invite",
                targetId: invite.id,
                details: { role: invite.role, atSignup: true },
              },
            );
          }
          return { user: toPublicUser(user), workspace, session: outcome.session };
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw new ConflictError("An account with this email already exists. Sign in instead.");
        throw err;
      }
    },

    /**
     * Breakglass: makes sure a super_admin with this email exists and can sign in,
     * creating the account (with its personal workspace) or promoting, reactivating
     * and re-keying an existing one. Used by `reef create-admin`, which works while
     * the server is down.
     */
    async ensureAdmin(ctx: RequestContext, input: { email: string; name: string; password: string }) {
      const email = input.email.trim();
      checkPasswordPolicy(input.password, email);
      const passwordHash = await hashPassword(input.password);
      const existing = await withScope(db, { lookup: { email: email.toLowerCase() } }, async (tx) => {
        const [row] = await tx.select().from(users).where(sql`lower(${users.email}) = ${email.toLowerCase()}`);
        return row;
      });
      if (!existing) {
        const newId = crypto.randomUUID();
        const created = await withScope(db, { userId: newId, lookup: { email: email.toLowerCase() } }, (tx) =>
          createAccountIn(tx, ctx, {
            userId: newId,
            email,
            name: input.name.trim(),
            passwordHash,
            home: { kind: "personal" },
            via: "create-admin",
          }),
        );
        if (!created) throw new ConflictError("An account with this email already exists.");
        return { user: (await promote(created.user.id)).user, created: true };
      }
      return { user: (await promote(existing.id)).user, created: false };

      async function promote(userId: string) {
        return withScope(db, { userId, platform: true }, async (tx) => {
          const [user] = await tx
            .update(users)
            .set({
              platformRole: "super_admin",
              breakglass: true,
              deactivatedAt: null,
              passwordHash,
              updatedAt: new Date(),
            })
            .where(eq(users.id, userId))
            .returning();
          if (!user) throw new NotFoundError("No such user.");
          await appendAudit(tx, ctx, {
            workspaceId: null,
            action: "user.breakglass_admin",
            targetType: "user",
            targetId: userId,
          });
          return { user: toPublicUser(user) };
        });
      }
    },

    /**
     * Signs in with email and password. Failures are audited. Each address has a
     * hard limit (429); each account only slows down: past a few attempts every
     * attempt is held for a growing delay (capped at a few seconds, reset by a
     * success), so guessing stays slow while nobody can lock the owner out.
     */
    async login(ctx: RequestContext, input: { email: string; password: string }): Promise<SignInOutcome> {
      const email = input.email.trim().toLowerCase();
      await rateLimits.consume("login_ip", ctx.ip ?? "unknown", ctx);
      // Counted on arrival, so a burst of parallel guesses is held as much as a series.
      // Unknown emails are slowed alike: the timing does not reveal which accounts exist.
      await holdPasswordGuess(rateLimits, ctx, email);
      const user = await withScope(db, { lookup: { email } }, async (tx) => {
        const [row] = await tx.select().from(users).where(sql`lower(${users.email}) = ${email}`);
        return row;
      });
      if (!user?.breakglass && (await signIn.policy.requireSso())) {
        await audit.recordEvent(ctx, {
          workspaceId: null,
          action: "auth.login",
          outcome: "denied",
          targetType: "user",
          ...(user ? { targetId: user.id } : {}),
          details: { email, reason: "sso_required" },
        });
        throw ssoRequired();
      }
      const ok = await verifyPassword(user?.passwordHash, input.password);
      if (!user || !ok) {
        await audit.recordEvent(ctx, {
          workspaceId: null,
          action: "auth.login",
          outcome: "failure",
          targetType: "user",
          ...(user ? { targetId: user.id } : {}),
          details: { email, reason: user ? "wrong_password" : "unknown_email" },
        });
        throw new UnauthorizedError("Email or password is incorrect.");
      }
      if (user.deactivatedAt) {
        await audit.recordEvent(ctx, {
          workspaceId: null,
          action: "auth.login",
          outcome: "denied",
          targetType: "user",
          targetId: user.id,
          details: { reason: "deactivated" },
        });
        throw new UnauthorizedError("This account has been deactivated. Ask an administrator.");
      }
      await rateLimits.reset("login_account", email);
      return signIn.afterFirstFactor(ctx, user, "password");
    },

    /** Resolves a session cookie to its user, or undefined when it is unknown, expired, revoked or the user is deactivated. */
    async authenticateSession(token: string): Promise<UserActor | undefined> {
      if (!token.startsWith("rs_") || token.length > 100) return undefined;
      const { rows } = await db.execute<{
        o_session_id: string;
        o_user_id: string;
        o_platform_role: "super_admin" | "user";
        o_last_seen_at: string;
        o_method: string | null;
      }>(sql`select * from reef_session_actor(${hashToken(token)})`);
      const row = rows[0];
      if (!row) return undefined;
      if (Date.now() - new Date(row.o_last_seen_at).getTime() > TOUCH_EVERY_MS) {
        await withScope(db, { userId: row.o_user_id }, (tx) =>
          tx.update(sessions).set({ lastSeenAt: new Date() }).where(eq(sessions.id, row.o_session_id)),
        );
      }
      return {
        kind: "user" as const,
        userId: row.o_user_id,
        platformRole: row.o_platform_role,
        sessionId: row.o_session_id,
        secondFactor: methodHasSecondFactor(row.o_method),
      };
    },

    async logout(ctx: RequestContext): Promise<void> {
      if (ctx.actor.kind !== "user") return;
      const { userId, sessionId } = ctx.actor;
      await withScope(db, { userId }, async (tx) => {
        await tx
          .update(sessions)
          .set({ revokedAt: new Date() })
          .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)));
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "auth.logout",
          targetType: "session",
          targetId: sessionId,
        });
      });
    },

    /** The signed-in user and the workspaces they belong to, with their role in each. */
    async me(actor: UserActor) {
      // The hottest read after authentication: named prepared statements skip
      // re-planning (the RLS policies make planning cost more than execution).
      return withScope(db, { userId: actor.userId }, async (tx) => {
        const [user] = await tx
          .select()
          .from(users)
          .where(eq(users.id, sql.placeholder("userId")))
          .prepare("reef_me_user")
          .execute({ userId: actor.userId });
        if (!user) throw new UnauthorizedError();
        const memberships = await tx
          .select({
            id: workspaces.id,
            name: workspaces.name,
            role: workspaceMembers.role,
            personal: workspaces.personal,
          })
          .from(workspaceMembers)
          .innerJoin(workspaces, eq(workspaces.id, workspaceMembers.workspaceId))
          .where(eq(workspaceMembers.userId, sql.placeholder("userId")))
          .orderBy(workspaces.createdAt, workspaces.id)
          .prepare("reef_me_workspaces")
          .execute({ userId: actor.userId });
        return { user: toPublicUser(user), workspaces: memberships };
      });
    },

    async listSessions(
      actor: UserActor,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<SessionInfo>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      return withScope(db, { userId: actor.userId }, async (tx) => {
        const rows = await tx
          .select()
          .from(sessions)
          .where(
            and(
              eq(sessions.userId, actor.userId),
              isNull(sessions.revokedAt),
              gt(sessions.expiresAt, new Date()),
              olderThan(sessions.createdAt, sessions.id, cursor),
            ),
          )
          .orderBy(desc(sessions.createdAt), desc(sessions.id))
          .limit(limit + 1);
        return toPage(
          rows,
          limit,
          (s) => ({
            id: s.id,
            createdAt: s.createdAt.toISOString(),
            lastSeenAt: s.lastSeenAt.toISOString(),
            expiresAt: s.expiresAt.toISOString(),
            ip: s.ip,
            userAgent: s.userAgent,
            current: s.id === actor.sessionId,
            method: s.method,
          }),
          (s) => ({ createdAt: s.createdAt.toISOString(), id: s.id }),
        );
      });
    },

    async revokeSession(ctx: RequestContext & { actor: UserActor }, sessionId: string): Promise<void> {
      const { userId } = ctx.actor;
      await withScope(db, { userId }, async (tx) => {
        const revoked = await tx
          .update(sessions)
          .set({ revokedAt: new Date() })
          .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
          .returning({ id: sessions.id });
        if (revoked.length === 0) throw new NotFoundError("No such session.");
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "session.revoke",
          targetType: "session",
          targetId: sessionId,
        });
      });
    },
  };
  return service;
}

export type IdentityService = ReturnType<typeof createIdentityService>;
