import type { WorkspaceRole } from "@reef/db";
import { type Db, extendScope, schema, type Tx, withScope } from "@reef/db";
import { and, eq, isNotNull, isNull, ne, sql } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { hashToken, newToken } from "../shared/tokens.ts";
import { issueAuthToken } from "./auth-tokens.ts";

const { users, sessions, userTotp, platformState, workspaces, workspaceMembers } = schema;

/** A `users` row as stored (with its password hash: never sent to a client; see {@link toPublicUser}). */
export type UserRow = typeof users.$inferSelect;

/** A user as the API shows them: no password hash, no flags. */
export interface PublicUser {
  id: string;
  email: string;
  name: string;
  platformRole: "super_admin" | "user";
  createdAt: string;
}

/** The API's view of a user row. */
export function toPublicUser(u: UserRow): PublicUser {
  return { id: u.id, email: u.email, name: u.name, platformRole: u.platformRole, createdAt: u.createdAt.toISOString() };
}

/** A session token for the cookie; shown to the client once and stored only as a hash. */
export interface IssuedSession {
  token: string;
  expiresAt: Date;
  id: string;
}

/**
 * How a session was signed in, kept on it (and shown in the session list):
 * `password`, `magic_link`, `signup`, `oidc:<slug>`, `saml:<slug>`, with `+totp`
 * when a second factor was given.
 */
export type SignInMethod = string;

/** Whether a session's sign-in satisfies a two-factor requirement: a second factor, or the IdP's own sign-in. */
export function methodHasSecondFactor(method: string | null | undefined): boolean {
  if (!method) return false;
  return method.endsWith("+totp") || method.startsWith("oidc:") || method.startsWith("saml:");
}

/** The platform's sign-in policy in force (platform settings over configuration), read per sign-in. */
export interface SignInPolicy {
  requireSso(): Promise<boolean>;
  requireTwoFactor(): Promise<boolean>;
}

/** A finished sign-in (cookie to set), or the second-factor step it still needs. */
export type SignInOutcome =
  | { kind: "session"; user: PublicUser; session: IssuedSession }
  | { kind: "challenge"; next: "two_factor" | "two_factor_enrol"; challenge: string };

/** How long a second-factor step may take. */
export const CHALLENGE_TTL_MS = 10 * 60_000;

/** Inserts a session for `userId` in `tx` (user scope), lasting `ttlMs`. @returns its token, shown once. */
export async function issueSession(
  tx: Tx,
  userId: string,
  ctx: RequestContext,
  method: SignInMethod,
  ttlMs: number,
): Promise<IssuedSession> {
  const token = newToken("rs_");
  const expiresAt = new Date(Date.now() + ttlMs);
  const [row] = await tx
    .insert(sessions)
    .values({
      userId,
      tokenHash: hashToken(token),
      ip: ctx.ip ?? null,
      userAgent: ctx.userAgent?.slice(0, 512) ?? null,
      expiresAt,
      method,
    })
    .returning({ id: sessions.id });
  if (!row) throw new Error("session insert returned nothing");
  return { token, expiresAt, id: row.id };
}

/**
 * Ends a user's live sessions in `tx` (user scope), but for `except` (the one a
 * person acting on their own account keeps). @returns how many were ended.
 */
export async function endSessionsIn(
  tx: Tx,
  userId: string,
  opts: { except?: string | undefined } = {},
): Promise<number> {
  const ended = await tx
    .update(sessions)
    .set({ revokedAt: new Date() })
    .where(
      and(
        eq(sessions.userId, userId),
        isNull(sessions.revokedAt),
        opts.except === undefined ? undefined : ne(sessions.id, opts.except),
      ),
    )
    .returning({ id: sessions.id });
  return ended.length;
}

/** The context of a request once `userId` has signed in on `sessionId` (so its audit names them). */
export function asSignedIn(ctx: RequestContext, user: UserRow, sessionId: string): RequestContext {
  return { ...ctx, actor: { kind: "user", userId: user.id, platformRole: user.platformRole, sessionId } };
}

/** Whether the user has a confirmed authenticator (read in the user's scope). */
export async function hasConfirmedTotp(tx: Tx, userId: string): Promise<boolean> {
  const [row] = await tx
    .select({ userId: userTotp.userId })
    .from(userTotp)
    .where(and(eq(userTotp.userId, userId), isNotNull(userTotp.confirmedAt)));
  return row !== undefined;
}

/**
 * Completing sign-ins: every way in (password, magic link, second factor, SSO)
 * ends here, so sessions, their method and the `auth.login` audit entry are made
 * one way.
 */
export function createSignIn(deps: { db: Db; sessionTtlMs: number; policy: SignInPolicy }) {
  const { db } = deps;
  const signIn = {
    policy: deps.policy,

    /** Issues the session and audits `auth.login` in `tx` (already in the user's scope). */
    async startSessionIn(tx: Tx, ctx: RequestContext, user: UserRow, method: SignInMethod, details = {}) {
      const session = await issueSession(tx, user.id, ctx, method, deps.sessionTtlMs);
      await appendAudit(tx, asSignedIn(ctx, user, session.id), {
        workspaceId: null,
        action: "auth.login",
        targetType: "user",
        targetId: user.id,
        details: { method, ...details },
      });
      return { kind: "session" as const, user: toPublicUser(user), session };
    },

    /** A session for `user` right away (SSO sign-ins, where the IdP did the strong part). */
    async startSession(ctx: RequestContext, user: UserRow, method: SignInMethod, details = {}) {
      return withScope(db, { userId: user.id }, (tx) => signIn.startSessionIn(tx, ctx, user, method, details));
    },

    /**
     * After a password or magic link: a session, or the second-factor step the
     * account needs (its authenticator, or enrolling one when policy requires it).
     */
    async afterFirstFactor(
      ctx: RequestContext,
      user: UserRow,
      method: "password" | "magic_link",
    ): Promise<SignInOutcome> {
      const required = await deps.policy.requireTwoFactor();
      return withScope(db, { userId: user.id }, async (tx) => {
        const enrolled = await hasConfirmedTotp(tx, user.id);
        if (!enrolled && !required) return signIn.startSessionIn(tx, ctx, user, method);
        const next = enrolled ? ("two_factor" as const) : ("two_factor_enrol" as const);
        const challenge = await issueAuthToken(tx, {
          kind: "two_factor",
          userId: user.id,
          ttlMs: CHALLENGE_TTL_MS,
          data: { method, next },
        });
        return { kind: "challenge" as const, next, challenge };
      });
    },
  };
  return signIn;
}

export type SignIn = ReturnType<typeof createSignIn>;

/** Where a new account goes: its own personal workspace, or into an existing one with a role. */
export type NewAccountHome = { kind: "personal" } | { kind: "join"; workspaceId: string; role: WorkspaceRole };

/**
 * Creates a user (and their personal workspace, or their membership) in `tx`,
 * which must be scoped to `userId` (and to the joined workspace). The very first
 * account on the platform becomes its super_admin, claimed atomically.
 */
export async function createAccountIn(
  tx: Tx,
  ctx: RequestContext,
  a: { userId: string; email: string; name: string; passwordHash: string | null; home: NewAccountHome; via: string },
) {
  const [taken] = await tx
    .select({ id: users.id })
    .from(users)
    .where(sql`lower(${users.email}) = ${a.email.toLowerCase()}`);
  if (taken) return undefined;
  const [inserted] = await tx
    .insert(users)
    .values({ id: a.userId, email: a.email, name: a.name, passwordHash: a.passwordHash, platformRole: "user" })
    .returning();
  if (!inserted) throw new Error("user insert returned nothing");
  // Claimed with a conditional update, so of two simultaneous first sign-ups only one wins.
  const [first] = await tx
    .update(platformState)
    .set({ firstUserId: a.userId })
    .where(and(eq(platformState.id, 1), isNull(platformState.firstUserId)))
    .returning({ id: platformState.id });
  const platformRole = first ? ("super_admin" as const) : ("user" as const);
  const user = first
    ? (await tx.update(users).set({ platformRole }).where(eq(users.id, a.userId)).returning())[0]
    : inserted;
  if (!user) throw new Error("user update returned nothing");
  const asUser: RequestContext = { ...ctx, actor: { kind: "user", userId: a.userId, platformRole, sessionId: "" } };
  let workspace: { id: string; name: string; role: WorkspaceRole };
  if (a.home.kind === "join") {
    await extendScope(tx, { workspaceId: a.home.workspaceId });
    await tx.insert(workspaceMembers).values({ workspaceId: a.home.workspaceId, userId: a.userId, role: a.home.role });
    const [ws] = await tx.select().from(workspaces).where(eq(workspaces.id, a.home.workspaceId));
    if (!ws) throw new Error("joined workspace not found");
    workspace = { id: ws.id, name: ws.name, role: a.home.role };
  } else {
    const workspaceId = crypto.randomUUID();
    await extendScope(tx, { workspaceId });
    const [ws] = await tx
      .insert(workspaces)
      .values({ id: workspaceId, name: `${user.name}'s workspace`, personal: true })
      .returning();
    if (!ws) throw new Error("workspace insert returned nothing");
    await tx.insert(workspaceMembers).values({ workspaceId, userId: a.userId, role: "owner" });
    workspace = { id: ws.id, name: ws.name, role: "owner" };
    await appendAudit(tx, asUser, {
      workspaceId,
      action: "workspace.create",
      targetType: "workspace",
      targetId: workspaceId,
      details: { personal: true },
    });
  }
  await appendAudit(tx, asUser, {
    workspaceId: null,
    action: "user.signup",
    targetType: "user",
    targetId: a.userId,
    details: { platformRole, via: a.via },
  });
  return { user, workspace };
}
