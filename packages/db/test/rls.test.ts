import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { schema, withWorkspace } from "../src/index.ts";

const { workspaces } = schema;
let t: TestDatabase;
const a = crypto.randomUUID();
const b = crypto.randomUUID();

beforeAll(async () => {
  t = await createTestDatabase();
  // Arranged as the owner, so the fixture does not depend on the code under test.
  await t.owner.query("insert into workspaces (id, name) values ($1, 'alpha'), ($2, 'beta')", [a, b]);
});
afterAll(() => t.drop());

describe("row-level security", () => {
  it("the application role is neither superuser nor exempt from RLS", async () => {
    const { rows } = await t.database.pool.query(
      "select current_user as name, rolsuper, rolbypassrls from pg_roles where rolname = current_user",
    );
    expect(rows[0]).toMatchObject({ rolsuper: false, rolbypassrls: false });
    expect(rows[0].name).not.toBe("postgres");
  });

  it("a query that forgets its workspace sees no tenant rows", async () => {
    // Exactly the bug RLS exists for: no WHERE on workspace, no withWorkspace.
    const rows = await t.database.db.select().from(workspaces);
    expect(rows).toEqual([]);
    const { rows: raw } = await t.database.pool.query("select count(*)::int as n from workspaces");
    expect(raw[0].n).toBe(0);
  });

  it("withWorkspace sees its own workspace and nothing else, even without a filter", async () => {
    const rows = await withWorkspace(t.database.db, a, (tx) => tx.select().from(workspaces));
    expect(rows.map((r) => r.id)).toEqual([a]);
    const foreign = await withWorkspace(t.database.db, a, (tx) =>
      tx.select().from(workspaces).where(eq(workspaces.id, b)),
    );
    expect(foreign).toEqual([]);
  });

  it("cannot write into another workspace", async () => {
    await expect(
      withWorkspace(t.database.db, a, (tx) =>
        tx.insert(workspaces).values({ id: crypto.randomUUID(), name: "sneaky" }),
      ),
    ).rejects.toThrow();
    const updated = await withWorkspace(t.database.db, a, (tx) =>
      tx.update(workspaces).set({ name: "pwned" }).where(eq(workspaces.id, b)).returning(),
    );
    expect(updated).toEqual([]);
    const deleted = await withWorkspace(t.database.db, a, (tx) =>
      tx.delete(workspaces).where(eq(workspaces.id, b)).returning(),
    );
    expect(deleted).toEqual([]);
    const { rows } = await t.owner.query("select name from workspaces where id = $1", [b]);
    expect(rows[0].name).toBe("beta");
  });

  it("the tenant setting does not outlive its transaction on a pooled connection", async () => {
    const client = await t.database.pool.connect();
    try {
      await client.query("begin");
      await client.query("select set_config('app.workspace_id', $1, true)", [a]);
      expect((await client.query("select count(*)::int as n from workspaces")).rows[0].n).toBe(1);
      await client.query("commit");
      expect((await client.query("select count(*)::int as n from workspaces")).rows[0].n).toBe(0);
    } finally {
      client.release();
    }
  });

  it("a query that forgets its workspace filter inside a scope still returns only that workspace's rows", async () => {
    await t.owner.query(
      `insert into api_keys (workspace_id, name, role, prefix, key_hash) values
         ($1, 'key of alpha', 'viewer', 'reef_a', 'hash-a'), ($2, 'key of beta', 'viewer', 'reef_b', 'hash-b')`,
      [a, b],
    );
    // The bug: no `where workspace_id = …`. RLS is the second line of defence.
    const rows = await withWorkspace(t.database.db, a, (tx) => tx.select().from(schema.apiKeys));
    expect(rows.map((r) => r.name)).toEqual(["key of alpha"]);
    const byHash = await withWorkspace(t.database.db, a, (tx) =>
      tx.select().from(schema.apiKeys).where(eq(schema.apiKeys.keyHash, "hash-b")),
    );
    expect(byHash).toEqual([]);
  });

  it("rejects an id that is not a uuid before it reaches SQL", async () => {
    await expect(withWorkspace(t.database.db, "' or 1=1 --", async () => 1)).rejects.toThrow(/not a workspace id/);
  });

  it("every table in the public schema has RLS enabled and forced", async () => {
    const { rows } = await t.owner.query<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
      `select c.relname, c.relrowsecurity, c.relforcerowsecurity
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind = 'r'`,
    );
    expect(rows.length).toBeGreaterThan(0);
    const unprotected = rows.filter((r) => !r.relrowsecurity || !r.relforcerowsecurity).map((r) => r.relname);
    expect(unprotected).toEqual([]);
  });

  it("the application role cannot create tables or change the schema", async () => {
    await expect(t.database.pool.query("create table intruder (id int)")).rejects.toThrow(/permission denied/);
    await expect(t.database.pool.query("alter table workspaces disable row level security")).rejects.toThrow(
      /must be owner/,
    );
    await expect(t.database.db.execute(sql`drop table workspaces`)).rejects.toThrow();
  });
});
