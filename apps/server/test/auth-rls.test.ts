/**
 * The sign-in tables under attack below HTTP (issue 17): on the app's own RLS-bound connection, a
 * transaction scoped as member A (alone, or inside the workspace A shares with B) tries to read, change
 * and delete B's and outsider C's second-factor seeds, recovery codes, sign-in tokens, SSO identities and
 * sessions, and any identity provider (platform scope only). Row-level security lets it touch none, a
 * lookup with a wrong or partial token hash finds nothing, and rows made out for B are refused. The same
 * checks run as the database owner (who bypasses RLS) do find B's rows: without the policies they would fail.
 */
import { createHash } from "node:crypto";
import { createDb, type Db, type Scope, withScope } from "@reef/db";
import { ApiClient, buildTestApp, joinWorkspace, signUp, type TestApp } from "@reef/testing";
import { type SQL, sql } from "drizzle-orm";
import { generate } from "otplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type Person = Awaited<ReturnType<typeof signUp>>;

let t: TestApp;
/** The app's own connection: the application role, subject to RLS. */
let appDb: Db;
/** The same queries through the superuser, who bypasses RLS: what the policies hide. */
let ownerDb: Db;
let a: Person;
let b: Person;
let c: Person;
let shared: string;
let providerId: string;
/** B's pending second-step challenge: an `auth_tokens` row of B's whose token the test knows. */
let bChallenge: string;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

async function enrolTotp(p: Person) {
  const setup = await p.client.post("/api/v1/me/two-factor/setup", { password: p.password });
  expect(setup.statusCode, setup.body).toBe(200);
  const secret = setup.json().secret as string;
  const code = await generate({ secret, epoch: Math.floor(Date.now() / 1000) });
  const confirm = await p.client.post("/api/v1/me/two-factor/confirm", { code });
  expect(confirm.statusCode, confirm.body).toBe(200);
  expect(confirm.json().recoveryCodes).toHaveLength(10);
}

/** Per table: the rows of `victim` (every row, for the platform-only providers) and a harmless self-assignment. */
const TARGETS: { table: string; where: (victim: string) => SQL; touch: string }[] = [
  { table: "user_totp", where: (v) => sql`user_id = ${v}`, touch: "last_step = last_step" },
  { table: "recovery_codes", where: (v) => sql`user_id = ${v}`, touch: "used_at = used_at" },
  { table: "auth_tokens", where: (v) => sql`user_id = ${v}`, touch: "attempts = attempts" },
  { table: "user_identities", where: (v) => sql`user_id = ${v}`, touch: "email = email" },
  { table: "sessions", where: (v) => sql`user_id = ${v}`, touch: "method = method" },
  { table: "identity_providers", where: () => sql`true`, touch: "name = name" },
];

type Reach = Record<string, { seen: number; updated: number; deleted: number }>;
const ROLLBACK = new Error("rolled back on purpose");

/**
 * What a transaction in `scope` on `db` can see, update and delete of `victim`'s rows. Always rolled
 * back, so it is as safe to run as the owner as it is as the app.
 */
async function reach(db: Db, scope: Scope, victim: string): Promise<Reach> {
  const out: Reach = {};
  await withScope(db, scope, async (tx) => {
    for (const { table, where, touch } of TARGETS) {
      const t = sql.identifier(table);
      const seen = await tx.execute<{ n: number }>(sql`select count(*)::int as n from ${t} where ${where(victim)}`);
      const updated = await tx.execute(sql`update ${t} set ${sql.raw(touch)} where ${where(victim)}`);
      const deleted = await tx.execute(sql`delete from ${t} where ${where(victim)}`);
      out[table] = { seen: seen.rows[0]?.n ?? -1, updated: updated.rowCount ?? -1, deleted: deleted.rowCount ?? -1 };
    }
    throw ROLLBACK;
  }).catch((err) => {
    if (err !== ROLLBACK) throw err;
  });
  return out;
}

const NOTHING = Object.fromEntries(TARGETS.map(({ table }) => [table, { seen: 0, updated: 0, deleted: 0 }]));

/** The Postgres error code of a refused statement (drizzle may wrap the driver's error). */
async function refusal(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    return String(e.cause?.code ?? e.code);
  }
  return "accepted";
}

beforeAll(async () => {
  t = await buildTestApp();
  appDb = t.db.database.db;
  ownerDb = createDb(t.db.owner);
  // The first account is the operator; A, B and C are plain accounts.
  await signUp(t.app, { name: "Operator" });
  [a, b, c] = [await signUp(t.app), await signUp(t.app), await signUp(t.app)];
  const team = await a.client.post("/api/v1/workspaces", { name: "Shared" });
  expect(team.statusCode, team.body).toBe(201);
  shared = team.json().id;
  await joinWorkspace(a.client, shared, b.email, b.client, "member");
  for (const p of [a, b, c]) await enrolTotp(p);

  const login = await new ApiClient(t.app).post("/api/v1/auth/login", { email: b.email, password: b.password });
  expect(login.json().next).toBe("two_factor");
  bChallenge = login.json().challenge;

  // An SSO provider and an identity at it for each person (fixtures: the SSO flows have tests of their own).
  const provider = await t.db.owner.query<{ id: string }>(
    `insert into identity_providers (kind, slug, name, config, secret_sealed)
     values ('oidc', 'corp', 'Corp', '{"issuer":"http://127.0.0.1:9","clientId":"x","scopes":["openid"]}', 'sealed')
     returning id`,
  );
  providerId = provider.rows[0]?.id ?? "";
  for (const p of [a, b, c]) {
    await t.db.owner.query(
      "insert into user_identities (user_id, provider_id, subject, email) values ($1, $2, $3, $4)",
      [p.user.id, providerId, `sub-${p.user.id}`, p.email],
    );
  }
}, 60_000);
afterAll(async () => {
  await t?.close();
});

describe("sign-in secrets under row-level security", () => {
  it("the app's connection is bound by RLS (no superuser, no BYPASSRLS)", async () => {
    const res = await appDb.execute<{ rolsuper: boolean; rolbypassrls: boolean }>(
      sql`select rolsuper, rolbypassrls from pg_roles where rolname = current_user`,
    );
    expect(res.rows).toEqual([{ rolsuper: false, rolbypassrls: false }]);
  });

  it("the check finds B's rows when RLS is not in the way (as the owner), and A's own rows as A", async () => {
    const asOwner = await reach(ownerDb, { userId: a.user.id }, b.user.id);
    for (const { table } of TARGETS) {
      expect(asOwner[table]?.seen, table).toBeGreaterThan(0);
      expect(asOwner[table]?.deleted, table).toBe(asOwner[table]?.seen);
    }
    const own = await reach(appDb, { userId: a.user.id }, a.user.id);
    for (const table of ["user_totp", "recovery_codes", "user_identities", "sessions"]) {
      expect(own[table]?.seen, table).toBeGreaterThan(0);
    }
    expect(own.identity_providers?.seen).toBe(0);
  });

  it("scoped as A, B's and C's rows cannot be read, changed or deleted; no provider is visible", async () => {
    for (const scope of [{ userId: a.user.id }, { userId: a.user.id, workspaceId: shared }, { workspaceId: shared }]) {
      for (const victim of [b, c]) {
        expect(await reach(appDb, scope, victim.user.id), JSON.stringify({ scope, victim: victim.email })).toEqual(
          NOTHING,
        );
      }
    }
    // The outsider, claiming the shared workspace, reaches no member's rows either.
    expect(await reach(appDb, { userId: c.user.id, workspaceId: shared }, b.user.id)).toEqual(NOTHING);
    // And the rows are all still there.
    const left = await t.db.owner.query<{ n: number }>(
      "select count(*)::int as n from recovery_codes where user_id = $1 and used_at is null",
      [b.user.id],
    );
    expect(left.rows[0]?.n).toBe(10);
  });

  it("a lookup finds B's token only by its exact hash", async () => {
    const hash = sha256(bChallenge);
    const tokensSeen = (lookup: string, scope: Scope = {}) =>
      withScope(appDb, { ...scope, lookup: { auth_token: lookup } }, async (tx) => {
        const res = await tx.execute<{ token_hash: string }>(
          sql`select token_hash from auth_tokens where user_id = ${b.user.id}`,
        );
        return res.rows.map((r) => r.token_hash);
      });
    expect(await tokensSeen(hash)).toEqual([hash]);
    const flipped = `${hash.slice(0, -1)}${hash.endsWith("0") ? "1" : "0"}`;
    for (const wrong of [hash.slice(0, 32), flipped, hash.toUpperCase(), bChallenge, `${hash}%`, "%"]) {
      expect(await tokensSeen(wrong), wrong).toEqual([]);
      expect(await tokensSeen(wrong, { userId: a.user.id, workspaceId: shared }), wrong).toEqual([]);
    }
    // Another kind of lookup with the right hash does not open auth tokens.
    const viaSession = await withScope(appDb, { lookup: { session: hash, invite: hash } }, (tx) =>
      tx.execute(sql`select 1 from auth_tokens`),
    );
    expect(viaSession.rows).toEqual([]);
  });

  it("rows made out for B while scoped as A are refused", async () => {
    const asA = { userId: a.user.id, workspaceId: shared };
    const RLS_REFUSED = "42501";
    expect(
      await refusal(() =>
        withScope(appDb, asA, (tx) =>
          tx.execute(sql`insert into user_totp (user_id, secret_sealed) values (${b.user.id}, 'attacker-seed')`),
        ),
      ),
    ).toBe(RLS_REFUSED);
    expect(
      await refusal(() =>
        withScope(appDb, asA, (tx) =>
          tx.execute(
            sql`insert into user_identities (user_id, provider_id, subject, email) values (${b.user.id}, ${providerId}, 'attacker', 'x@evil.test')`,
          ),
        ),
      ),
    ).toBe(RLS_REFUSED);
    expect(
      await refusal(() =>
        withScope(appDb, asA, (tx) =>
          tx.execute(
            sql`insert into recovery_codes (user_id, code_hash) values (${b.user.id}, ${sha256("aaaa-bbbb-cccc")})`,
          ),
        ),
      ),
    ).toBe(RLS_REFUSED);
    // Handing A's own identity to B (an update past the check) is refused too.
    expect(
      await refusal(() =>
        withScope(appDb, asA, (tx) =>
          tx.execute(sql`update user_identities set user_id = ${b.user.id} where user_id = ${a.user.id}`),
        ),
      ),
    ).toBe(RLS_REFUSED);
    const bIdentities = await t.db.owner.query("select subject from user_identities where user_id = $1", [b.user.id]);
    expect(bIdentities.rows).toEqual([{ subject: `sub-${b.user.id}` }]);
  });
});
