import { AppError, UnauthorizedError } from "@reef/contracts";
import { type Db, extendScope, schema, type Tx, type WorkspaceRole, withScope } from "@reef/db";
import { and, eq } from "drizzle-orm";
import type { AuditService } from "../audit/audit-service.ts";
import { appendAudit } from "../audit/audit-service.ts";
import { consumeAuthToken, findLiveAuthToken, issueAuthToken } from "../identity/auth-tokens.ts";
import { userByEmail } from "../identity/email-link-service.ts";
import { holdPasswordGuess } from "../identity/password-proof.ts";
import { verifyPassword } from "../identity/passwords.ts";
import { asSignedIn, createAccountIn, type IssuedSession, type PublicUser, type SignIn } from "../identity/sign-in.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext } from "../shared/context.ts";

const { users, userIdentities, workspaceMembers } = schema;

/** An `identity_providers` row (its secret still sealed). */
export type IdentityProviderRow = typeof schema.identityProviders.$inferSelect;

/** What a provider vouched for, after Reef checked its signature, audience, state and nonce. */
export interface SsoProfile {
  /** OIDC `sub` or SAML NameID: stable per person at this provider. */
  subject: string;
  email: string;
  /** false only when the provider said outright that it has not verified the email. */
  emailVerified: boolean;
  name?: string | undefined;
  groups: string[];
}

/** Signed in, or the person must prove an existing account's password once to link it. */
export type SsoOutcome =
  | { kind: "session"; user: PublicUser; session: IssuedSession; created: boolean }
  | { kind: "link_required"; token: string; email: string };

/** How long the "prove your password to link" step may take. */
const LINK_TTL_MS = 10 * 60_000;
const RANK: Record<WorkspaceRole, number> = { viewer: 1, member: 2, admin: 3, owner: 4 };

/** A single sign-on that did not happen, with the sentence the sign-in page shows. */
export function ssoFailed(message: string): AppError {
  return new AppError("SSO_FAILED", message);
}

/** Audits a refused single sign-on (`auth.sso`, denied): the reason, and the email when the provider gave one. */
export async function auditSsoRefusal(
  audit: AuditService,
  ctx: RequestContext,
  provider: IdentityProviderRow,
  reason: string,
  email?: string,
): Promise<void> {
  await audit.recordEvent(ctx, {
    workspaceId: null,
    action: "auth.sso",
    outcome: "denied",
    targetType: "identity_provider",
    targetId: provider.id,
    details: { provider: provider.slug, reason, ...(email ? { email } : {}) },
  });
}

/** The role the provider's groups map to (the highest mapped), else its default role. */
export function mappedRole(provider: IdentityProviderRow, groups: readonly string[]): WorkspaceRole {
  let best: WorkspaceRole | undefined;
  for (const g of groups) {
    const role = provider.groupRoles[g];
    if (role && (!best || RANK[role] > RANK[best])) best = role;
  }
  return best ?? provider.defaultRole;
}

/** Whether the email's domain may sign in through this provider (an empty list allows any). */
export function domainAllowed(provider: IdentityProviderRow, email: string): boolean {
  if (provider.allowedDomains.length === 0) return true;
  const domain = email.slice(email.lastIndexOf("@") + 1).toLowerCase();
  return provider.allowedDomains.includes(domain);
}

/**
 * Turns a verified provider profile into a Reef sign-in: a known identity signs
 * in; a new email gets a just-in-time account placed by the provider's rules; an
 * email that already has a password account must prove that password once to
 * link (so a provider cannot take over an account by asserting its email).
 */
export function createSsoProvisioning(deps: { db: Db; audit: AuditService; signIn: SignIn; rateLimits?: RateLimits }) {
  const { db, audit, signIn, rateLimits } = deps;
  const methodOf = (p: IdentityProviderRow) => `${p.kind}:${p.slug}`;

  const refuse = (ctx: RequestContext, provider: IdentityProviderRow, reason: string, email?: string) =>
    auditSsoRefusal(audit, ctx, provider, reason, email);

  /** Keeps the role in the provider's workspace in step with the groups (never touching owners). */
  async function syncRole(
    tx: Tx,
    ctx: RequestContext,
    provider: IdentityProviderRow,
    userId: string,
    groups: string[],
  ) {
    if (!provider.groupClaim || !provider.defaultWorkspaceId) return;
    const workspaceId = provider.defaultWorkspaceId;
    await extendScope(tx, { workspaceId });
    const [m] = await tx
      .select()
      .from(workspaceMembers)
      .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)));
    const role = mappedRole(provider, groups);
    if (!m || m.role === "owner" || m.role === role) return;
    await tx
      .update(workspaceMembers)
      .set({ role })
      .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)));
    await appendAudit(tx, ctx, {
      workspaceId,
      action: "member.role_change",
      targetType: "user",
      targetId: userId,
      details: { from: m.role, to: role, via: `sso:${provider.slug}` },
    });
  }

  return {
    async signInWithProfile(
      ctx: RequestContext,
      provider: IdentityProviderRow,
      profile: SsoProfile,
    ): Promise<SsoOutcome> {
      const email = profile.email.trim();
      if (!email.includes("@")) {
        await refuse(ctx, provider, "no_email");
        throw ssoFailed(`${provider.name} did not send an email address for this account.`);
      }
      if (!profile.emailVerified) {
        await refuse(ctx, provider, "email_unverified", email);
        throw ssoFailed(`${provider.name} has not verified the email address ${email}.`);
      }
      if (!domainAllowed(provider, email)) {
        await refuse(ctx, provider, "domain_not_allowed", email);
        throw new AppError(
          "SSO_DOMAIN_NOT_ALLOWED",
          `Accounts at ${email.slice(email.indexOf("@") + 1)} may not sign in with ${provider.name}. Ask your administrator.`,
        );
      }
      const method = methodOf(provider);
      // 1. A known identity.
      const known = await withScope(db, { platform: true }, async (tx) => {
        const [row] = await tx
          .select({ user: users, identityId: userIdentities.id })
          .from(userIdentities)
          .innerJoin(users, eq(users.id, userIdentities.userId))
          .where(and(eq(userIdentities.providerId, provider.id), eq(userIdentities.subject, profile.subject)));
        return row;
      });
      if (known) {
        if (known.user.deactivatedAt) {
          await refuse(ctx, provider, "deactivated", email);
          throw new UnauthorizedError("This account has been deactivated. Ask an administrator.");
        }
        return withScope(db, { userId: known.user.id }, async (tx) => {
          await tx
            .update(userIdentities)
            .set({ email, lastLoginAt: new Date() })
            .where(eq(userIdentities.id, known.identityId));
          const out = await signIn.startSessionIn(tx, ctx, known.user, method);
          await syncRole(tx, asSignedIn(ctx, known.user, out.session.id), provider, known.user.id, profile.groups);
          return { ...out, created: false };
        });
      }
      // 2. An existing account with this email: link by proving its password, never silently.
      const existing = await userByEmail(db, email);
      if (existing) {
        if (!existing.passwordHash) {
          await refuse(ctx, provider, "email_taken_by_other_provider", email);
          throw ssoFailed(
            `An account for ${email} already signs in another way. Sign in with that, or ask an administrator.`,
          );
        }
        const token = await withScope(db, { userId: existing.id }, (tx) =>
          issueAuthToken(tx, {
            kind: "sso_link",
            userId: existing.id,
            providerId: provider.id,
            email,
            ttlMs: LINK_TTL_MS,
            data: { subject: profile.subject, groups: profile.groups },
          }),
        );
        return { kind: "link_required", token, email };
      }
      // 3. Just in time: a new account where the provider's rules put it.
      const userId = crypto.randomUUID();
      const home = provider.defaultWorkspaceId
        ? {
            kind: "join" as const,
            workspaceId: provider.defaultWorkspaceId,
            role: mappedRole(provider, profile.groups),
          }
        : { kind: "personal" as const };
      return withScope(db, { userId, lookup: { email: email.toLowerCase() } }, async (tx) => {
        const created = await createAccountIn(tx, ctx, {
          userId,
          email,
          name: (profile.name?.trim() || email.slice(0, email.indexOf("@"))).slice(0, 100),
          passwordHash: null,
          home,
          via: method,
        });
        if (!created) throw ssoFailed("An account with this email was created at the same moment. Try again.");
        await tx.insert(userIdentities).values({
          userId,
          providerId: provider.id,
          subject: profile.subject,
          email,
          lastLoginAt: new Date(),
        });
        const out = await signIn.startSessionIn(tx, ctx, created.user, method, { created: true });
        if (home.kind === "join") {
          await appendAudit(tx, asSignedIn(ctx, created.user, out.session.id), {
            workspaceId: home.workspaceId,
            action: "member.join",
            targetType: "user",
            targetId: userId,
            details: { role: home.role, via: method },
          });
        }
        return { ...out, created: true };
      });
    },

    /**
     * Links a provider identity to the existing account the link token names,
     * once its password is proven, and signs in. Wrong passwords leave the token usable.
     */
    async linkWithPassword(
      ctx: RequestContext,
      token: string,
      password: string,
      provider: (id: string) => Promise<IdentityProviderRow | undefined>,
    ) {
      const row = await withScope(db, {}, (tx) => findLiveAuthToken(tx, "sso_link", token));
      if (!row?.providerId) {
        throw ssoFailed("This link request is not valid or has expired. Sign in with your provider again.");
      }
      const userId = row.userId;
      // Guessing the account's password here is held back exactly like guessing it at sign-in.
      if (rateLimits) {
        await rateLimits.consume("login_ip", ctx.ip ?? "unknown", ctx);
        await holdPasswordGuess(rateLimits, ctx, row.email ?? userId);
      }
      const user = await withScope(
        db,
        { userId },
        async (tx) => (await tx.select().from(users).where(eq(users.id, userId)))[0],
      );
      if (!user || !(await verifyPassword(user.passwordHash, password))) {
        await audit.recordEvent(ctx, {
          workspaceId: null,
          action: "auth.sso_link",
          outcome: "failure",
          targetType: "user",
          targetId: userId,
          details: { reason: "wrong_password" },
        });
        throw new UnauthorizedError("The password is incorrect.");
      }
      // A proven password ends the run of guesses, as a successful sign-in does.
      await rateLimits?.reset("login_account", (row.email ?? userId).toLowerCase());
      const idp = await provider(row.providerId);
      if (!idp?.enabled) throw ssoFailed("This sign-in provider is no longer available.");
      const data = row.data as { subject?: string; groups?: string[] };
      return withScope(db, { userId }, async (tx) => {
        await consumeAuthToken(tx, "sso_link", token, { what: "This link request" });
        await tx.insert(userIdentities).values({
          userId,
          providerId: idp.id,
          subject: String(data.subject),
          email: row.email ?? user.email,
          lastLoginAt: new Date(),
        });
        const out = await signIn.startSessionIn(tx, ctx, user, methodOf(idp), { linked: true });
        await appendAudit(tx, asSignedIn(ctx, user, out.session.id), {
          workspaceId: null,
          action: "auth.sso_link",
          targetType: "identity_provider",
          targetId: idp.id,
          details: { provider: idp.slug },
        });
        await syncRole(tx, asSignedIn(ctx, user, out.session.id), idp, userId, data.groups ?? []);
        return out;
      });
    },
  };
}

export type SsoProvisioning = ReturnType<typeof createSsoProvisioning>;
