import { AppError } from "@reef/contracts";
import { type AuthTokenKind, type Db, extendScope, schema, type Tx, withScope } from "@reef/db";
import { and, eq, gt, isNull, lt, or, sql } from "drizzle-orm";
import { hashToken, newToken } from "../shared/tokens.ts";

const { authTokens } = schema;

/** An `auth_tokens` row (the token itself is never stored, only its hash). */
export type AuthTokenRow = typeof authTokens.$inferSelect;

/** What a new single-use token carries. `binding`: a secret the asking browser holds (cookie), checked at use. */
export interface NewAuthToken {
  kind: AuthTokenKind;
  ttlMs: number;
  userId?: string | null | undefined;
  providerId?: string | null | undefined;
  email?: string | null | undefined;
  binding?: string | undefined;
  data?: Record<string, unknown> | undefined;
}

const PREFIX: Record<AuthTokenKind, string> = {
  magic_link: "rml_",
  password_reset: "rpr_",
  email_change: "rec_",
  two_factor: "r2f_",
  sso_state: "rss_",
  sso_link: "rsl_",
};

/** The same refusal for every way a link can fail, with a sentence saying which. */
export function linkInvalid(message: string): AppError {
  return new AppError("LINK_INVALID", message);
}

/**
 * Issues a single-use token inside `tx` (any scope: the row is made visible to
 * the transaction through its own lookup). @returns the token, shown once.
 */
export async function issueAuthToken(tx: Tx, t: NewAuthToken): Promise<string> {
  const token = newToken(PREFIX[t.kind]);
  const tokenHash = hashToken(token);
  await extendScope(tx, { lookup: { auth_token: tokenHash } });
  await tx.insert(authTokens).values({
    kind: t.kind,
    tokenHash,
    userId: t.userId ?? null,
    providerId: t.providerId ?? null,
    email: t.email ?? null,
    bindingHash: t.binding ? hashToken(t.binding) : null,
    data: t.data ?? {},
    expiresAt: new Date(Date.now() + t.ttlMs),
  });
  return token;
}

/**
 * Uses a token once, in `tx`: marks it used and returns its row, or throws
 * LINK_INVALID saying whether it is unknown, used, expired or from another
 * browser. A binding mismatch leaves the token usable by the right browser.
 */
export async function consumeAuthToken(
  tx: Tx,
  kind: AuthTokenKind,
  token: string,
  opts: { binding?: string | undefined; what?: string } = {},
): Promise<AuthTokenRow> {
  const what = opts.what ?? "This link";
  const tokenHash = hashToken(token);
  await extendScope(tx, { lookup: { auth_token: tokenHash } });
  const bindingHash = opts.binding ? hashToken(opts.binding) : null;
  const [used] = await tx
    .update(authTokens)
    .set({ usedAt: new Date() })
    .where(
      and(
        eq(authTokens.tokenHash, tokenHash),
        eq(authTokens.kind, kind),
        isNull(authTokens.usedAt),
        gt(authTokens.expiresAt, new Date()),
        bindingHash
          ? or(isNull(authTokens.bindingHash), eq(authTokens.bindingHash, bindingHash))
          : isNull(authTokens.bindingHash),
      ),
    )
    .returning();
  if (used) return used;
  const [row] = await tx
    .select()
    .from(authTokens)
    .where(and(eq(authTokens.tokenHash, tokenHash), eq(authTokens.kind, kind)));
  if (!row) throw linkInvalid(`${what} is not valid. Ask for a new one.`);
  if (row.usedAt) throw linkInvalid(`${what} has already been used. Ask for a new one.`);
  if (row.expiresAt.getTime() <= Date.now()) throw linkInvalid(`${what} has expired. Ask for a new one.`);
  throw linkInvalid(`${what} was requested in a different browser. Open it in the browser you asked from.`);
}

/**
 * Reads a token of `kind` in `tx` without using it: for steps that use it up
 * only once something else is proven (a right code or password), so a wrong
 * guess leaves it usable. @returns the row when it is unused, unexpired and
 * names a user; otherwise undefined (the caller says why in its own words).
 */
export async function findLiveAuthToken(
  tx: Tx,
  kind: AuthTokenKind,
  token: string,
): Promise<(AuthTokenRow & { userId: string }) | undefined> {
  const tokenHash = hashToken(token);
  await extendScope(tx, { lookup: { auth_token: tokenHash } });
  const [row] = await tx
    .select()
    .from(authTokens)
    .where(and(eq(authTokens.tokenHash, tokenHash), eq(authTokens.kind, kind)));
  if (!row?.userId || row.usedAt || row.expiresAt.getTime() <= Date.now()) return undefined;
  return row as AuthTokenRow & { userId: string };
}

/** Counts a failed attempt against a token (a wrong second-factor code); @returns the attempts so far. */
export async function countTokenAttempt(tx: Tx, tokenId: string): Promise<number> {
  const [row] = await tx
    .update(authTokens)
    .set({ attempts: sql`${authTokens.attempts} + 1` })
    .where(eq(authTokens.id, tokenId))
    .returning({ attempts: authTokens.attempts });
  return row?.attempts ?? 0;
}

/** Ends a user's unused tokens of some kinds (a new reset link replaces the old; a password change ends them all). */
export async function revokeUserTokens(tx: Tx, userId: string, kinds: AuthTokenKind[]): Promise<void> {
  for (const kind of kinds) {
    await tx
      .update(authTokens)
      .set({ usedAt: new Date() })
      .where(and(eq(authTokens.userId, userId), eq(authTokens.kind, kind), isNull(authTokens.usedAt)));
  }
}

/** Deletes tokens expired for a day (housekeeping; platform scope). @returns how many. */
export async function purgeExpiredAuthTokens(db: Db): Promise<number> {
  return withScope(db, { platform: true }, async (tx) => {
    const gone = await tx
      .delete(authTokens)
      .where(lt(authTokens.expiresAt, new Date(Date.now() - 86_400_000)))
      .returning({ id: authTokens.id });
    return gone.length;
  });
}
