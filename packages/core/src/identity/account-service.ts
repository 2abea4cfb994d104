import { AppError, BadRequestError, ConflictError, UnauthorizedError } from "@reef/contracts";
import { type Db, schema, withScope } from "@reef/db";
import { eq } from "drizzle-orm";
import { type AuditService, appendAudit } from "../audit/audit-service.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext, UserActor } from "../shared/context.ts";
import { issueAuthToken, revokeUserTokens } from "./auth-tokens.ts";
import {
  EMAIL_CHANGE_TTL_MS,
  type EmailLinkMail,
  emailTakenIn,
  LINKS_ENDED_BY_PASSWORD,
  linkUrl,
  mailNotConfigured,
} from "./email-link-service.ts";
import { provePassword } from "./password-proof.ts";
import { checkPasswordPolicy, hashPassword, verifyPassword } from "./passwords.ts";
import { endSessionsIn, type PublicUser, type SignInPolicy, toPublicUser, type UserRow } from "./sign-in.ts";

const { users } = schema;

export interface AccountServiceDeps extends EmailLinkMail {
  db: Db;
  audit: AuditService;
  rateLimits: RateLimits;
  policy: SignInPolicy;
}

type SignedIn = RequestContext & { actor: UserActor };

/**
 * The signed-in person's own account: name, password, email address, and
 * signing out everywhere. Each change is audited (never with a password or a token).
 */
export function createAccountService(deps: AccountServiceDeps) {
  const { db, audit, rateLimits } = deps;

  async function self(ctx: SignedIn): Promise<UserRow> {
    const userId = ctx.actor.userId;
    const [user] = await withScope(db, { userId }, (tx) => tx.select().from(users).where(eq(users.id, userId)));
    if (!user) throw new UnauthorizedError();
    return user;
  }

  /** Proves the current password before `action` (held back like sign-in; a wrong one audited under `action`). */
  function proveCurrentPassword(ctx: SignedIn, user: UserRow, password: string, action: string) {
    return provePassword({ rateLimits, audit }, ctx, user, password, {
      action,
      details: { reason: "wrong_password" },
      error: () => new UnauthorizedError("Your current password is incorrect."),
    });
  }

  /** Tells the account's address about a change it should know of (when mail is set up; never fails the change). */
  async function notify(to: string, subject: string, text: string) {
    const mailer = await deps.mailer();
    if (!mailer) return;
    await mailer
      .send({ to, subject, text })
      .catch((err: unknown) => deps.log?.warn({ err, what: subject }, "an account email could not be sent"));
  }

  return {
    /** Renames the signed-in user. */
    async updateProfile(ctx: SignedIn, input: { name: string }): Promise<{ user: PublicUser }> {
      const userId = ctx.actor.userId;
      return withScope(db, { userId }, async (tx) => {
        const [user] = await tx
          .update(users)
          .set({ name: input.name.trim(), updatedAt: new Date() })
          .where(eq(users.id, userId))
          .returning();
        if (!user) throw new UnauthorizedError();
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "user.update",
          targetType: "user",
          targetId: userId,
          details: { fields: ["name"] },
        });
        return { user: toPublicUser(user) };
      });
    },

    /**
     * Changes the password after proving the current one; every other session and
     * every unused emailed link ends, this session stays. An account without a
     * password (made by single sign-on) may set a first one only while the platform
     * does not require SSO: its `currentPassword` is then not checked (there is none;
     * the session proves who it is), and the account's address is told, as for
     * every password change, so a stolen session adding a password does not go unseen.
     */
    async changePassword(ctx: SignedIn, input: { currentPassword: string; newPassword: string }): Promise<void> {
      const user = await self(ctx);
      const first = user.passwordHash === null;
      if (first) {
        if (!user.breakglass && (await deps.policy.requireSso())) {
          throw new AppError(
            "SSO_REQUIRED",
            "Your account signs in with your organisation's single sign-on: password sign-in is turned off.",
          );
        }
      } else {
        await proveCurrentPassword(ctx, user, input.currentPassword, "user.password_change");
      }
      checkPasswordPolicy(input.newPassword, user.email);
      if (!first && (await verifyPassword(user.passwordHash, input.newPassword))) {
        throw new BadRequestError("The new password is the same as the current one. Choose a different one.");
      }
      const passwordHash = await hashPassword(input.newPassword);
      await withScope(db, { userId: user.id }, async (tx) => {
        await tx.update(users).set({ passwordHash, updatedAt: new Date() }).where(eq(users.id, user.id));
        const ended = await endSessionsIn(tx, user.id, { except: ctx.actor.sessionId });
        await revokeUserTokens(tx, user.id, LINKS_ENDED_BY_PASSWORD);
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "user.password_change",
          targetType: "user",
          targetId: user.id,
          details: { sessionsRevoked: ended, ...(first ? { firstPassword: true } : {}) },
        });
      });
      await notify(
        user.email,
        "Your Reef password was changed",
        `The password of your Reef account (${user.email}) was ${first ? "set" : "changed"} from IP address ${ctx.ip ?? "unknown"}.\n` +
          "Your other sessions were signed out.\n\nIf you did not do this, reset your password and contact your Reef administrator.\n",
      );
    },

    /**
     * Starts an email change: proves the password, checks the new address is free
     * (409 otherwise) and mails a confirmation link to it (24 h). Nothing changes
     * until the link is used. Mail goes out before commit: a refused address leaves
     * no link behind.
     */
    async requestEmailChange(ctx: SignedIn, input: { newEmail: string; password: string }): Promise<void> {
      const mailer: Mailer | undefined = await deps.mailer();
      if (!mailer) throw mailNotConfigured("Changing your email address");
      const user = await self(ctx);
      const newEmail = input.newEmail.trim();
      if (newEmail.toLowerCase() === user.email.toLowerCase()) {
        throw new BadRequestError("That is already your email address.");
      }
      if (!user.passwordHash) {
        throw new BadRequestError(
          "Your account signs in with single sign-on: its email address comes from your provider. Change it there.",
        );
      }
      await rateLimits.consume("auth_email", newEmail.toLowerCase(), ctx);
      await proveCurrentPassword(ctx, user, input.password, "user.email_change_request");
      const publicUrl = await deps.publicUrl();
      await withScope(db, { userId: user.id }, async (tx) => {
        if (await emailTakenIn(tx, newEmail, user.id)) {
          throw new ConflictError("An account with this email already exists.");
        }
        await revokeUserTokens(tx, user.id, ["email_change"]);
        const token = await issueAuthToken(tx, {
          kind: "email_change",
          userId: user.id,
          email: newEmail,
          ttlMs: EMAIL_CHANGE_TTL_MS,
          data: { newEmail },
        });
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "user.email_change_request",
          targetType: "user",
          targetId: user.id,
          details: { from: user.email, to: newEmail },
        });
        await mailer.send({
          to: newEmail,
          subject: "Confirm your new Reef email address",
          text:
            `${user.name} asked to use this address (${newEmail}) for their Reef account instead of ${user.email}.\n\n` +
            `Confirm it (the link works once, for 24 hours):\n${linkUrl(publicUrl, "confirm-email", token)}\n\n` +
            "If you did not ask for this, ignore this email: nothing changes.\n",
        });
      });
    },

    /**
     * "Sign out everywhere": ends every other session of the user, and this one too
     * with `includeCurrent`. @returns how many were ended.
     */
    async revokeAllSessions(ctx: SignedIn, input: { includeCurrent: boolean }): Promise<number> {
      const { userId, sessionId } = ctx.actor;
      return withScope(db, { userId }, async (tx) => {
        const ended = await endSessionsIn(tx, userId, { except: input.includeCurrent ? undefined : sessionId });
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "session.revoke_all",
          targetType: "user",
          targetId: userId,
          details: { count: ended, includeCurrent: input.includeCurrent },
        });
        return ended;
      });
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
