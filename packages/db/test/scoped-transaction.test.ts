import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { eq, sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type Db, schema, withScope, withWorkspace } from "../src/index.ts";
import { MAX_NAMED_PER_CONNECTION } from "../src/named-statements.ts";

const { workspaces } = schema;
let t: TestDatabase;
// One connection, so every transaction below and every check after it share it.
let pool: pg.Pool;
let db: Db;
const a = crypto.randomUUID();
const b = crypto.randomUUID();
let statements: string[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  await t.owner.query("insert into workspaces (id, name) values ($1, 'alpha'), ($2, 'beta')", [a, b]);
  pool = new pg.Pool({ connectionString: t.database.appUrl, max: 1 });
  const seen = new WeakSet<pg.PoolClient>();
  pool.on("acquire", (client) => {
    if (seen.has(client)) return;
    seen.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0] as string | { text: string };
      statements.push(typeof first === "string" ? first : first.text);
      return query(...args);
    };
  });
  db = createDb(pool);
});
afterAll(async () => {
  await pool.end();
  await t.drop();
});

const settingsIn = (scope: Parameters<typeof withScope>[1]) =>
  withScope(db, scope, async (tx) => {
    const { rows } = await tx.execute<{ platform: string; email: string; workspace: string }>(
      // Unset is null on a fresh connection and '' once any transaction has set it: both mean "not in scope".
      sql`select coalesce(current_setting('app.platform_scope', true), '') as platform, coalesce(current_setting('app.lookup_email', true), '') as email, coalesce(current_setting('app.workspace_id', true), '') as workspace`,
    );
    return rows[0];
  });

describe("scoped transactions", () => {
  it("a transaction takes its scope in the same round trip as its begin", async () => {
    statements = [];
    const rows = await withWorkspace(db, a, (tx) => tx.select({ id: workspaces.id }).from(workspaces));
    expect(rows).toEqual([{ id: a }]);
    // begin + scope, the select, commit: the scope costs no round trip of its own.
    expect(statements).toHaveLength(3);
    expect(statements[0]).toMatch(/^begin; select set_config\('app\.workspace_id', '[0-9a-f-]{36}', true\)$/);
    expect(statements[2]).toBe("commit");
  });

  it("a looked-up value cannot widen the scope it is inlined into", async () => {
    // What a person can type into the e-mail field of a sign-in form, aimed at the quoting.
    for (const email of [
      "x', true), set_config('app.platform_scope', 'on",
      "x\\', true), set_config('app.platform_scope', 'on', true) --",
      "o'brien\\\\@example.test",
    ]) {
      const seen = await settingsIn({ lookup: { email } });
      expect(seen).toEqual({ platform: "", email, workspace: "" });
    }
  });

  it("a value that is not printable ASCII is bound as a parameter and arrives unchanged", async () => {
    statements = [];
    const email = "zoë+ünïcode@exämple.test";
    expect(await settingsIn({ lookup: { email } })).toEqual({ platform: "", email, workspace: "" });
    expect(statements[0]).toBe("begin");
  });

  it("a transaction that fails leaves neither a transaction nor its scope on the pooled connection", async () => {
    await expect(
      withWorkspace(db, a, async (tx) => {
        await tx.insert(workspaces).values({ id: b, name: "duplicate" });
      }),
    ).rejects.toThrow();
    // Same (only) connection: not stuck in an aborted transaction, and the tenant setting is gone.
    const { rows } = await pool.query(
      "select coalesce(current_setting('app.workspace_id', true), '') as workspace, now() = statement_timestamp() as own",
    );
    expect(rows[0]).toEqual({ workspace: "", own: true });
    expect(await withWorkspace(db, b, (tx) => tx.select({ id: workspaces.id }).from(workspaces))).toEqual([{ id: b }]);
  });

  it("an error thrown by the caller rolls back what the transaction wrote", async () => {
    await expect(
      withWorkspace(db, a, async (tx) => {
        await tx.update(workspaces).set({ name: "renamed" });
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    const { rows } = await t.owner.query("select name from workspaces where id = $1", [a]);
    expect(rows[0].name).toBe("alpha");
  });

  const prepared = async () => {
    const { rows } = await pool.query<{ statement: string }>("select statement from pg_prepared_statements");
    return rows.map((r) => r.statement);
  };
  const nameOf = (id: string) =>
    withWorkspace(db, id, (tx) => tx.select({ name: workspaces.name }).from(workspaces).where(eq(workspaces.id, id)));

  it("a statement run again on a connection is parsed and planned once, whatever its values", async () => {
    const before = await prepared();
    expect(await nameOf(a)).toEqual([{ name: "alpha" }]);
    const after = await prepared();
    // Kept by the (only) connection under a name, with its values as parameters.
    const added = after.filter((s) => !before.includes(s));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^select "name" from "workspaces" where "workspaces"."id" = \$1/);
    // The same shape with other values reuses it (a wrong reuse would answer alpha again).
    expect(await nameOf(b)).toEqual([{ name: "beta" }]);
    expect(await prepared()).toHaveLength(after.length);
  });

  it("a connection keeps a bounded number of statements: past the cap, new shapes run unnamed", async () => {
    const shapes = MAX_NAMED_PER_CONNECTION + 20;
    await withWorkspace(db, a, async (tx) => {
      for (let i = 0; i < shapes; i++) {
        const { rows } = await tx.execute<{ n: number }>(sql`select ${sql.raw(String(i))}::int + ${1}::int as n`);
        expect(rows[0]?.n).toBe(i + 1);
      }
    });
    expect((await prepared()).length).toBeLessThanOrEqual(MAX_NAMED_PER_CONNECTION);
  });
});
