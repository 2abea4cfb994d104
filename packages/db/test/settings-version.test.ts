import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { type SQL, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withWorkspace } from "../src/index.ts";

// The runtime manager trusts its cached gateway settings while the runtime row's settings_version stands still
// (runtime-settings-cache.ts). These writes are what that trust rests on: each must move it, as the app writes them.
let t: TestDatabase;
const a = crypto.randomUUID();
const b = crypto.randomUUID();

beforeAll(async () => {
  t = await createTestDatabase();
  await t.owner.query("insert into workspaces (id, name) values ($1, 'alpha'), ($2, 'beta')", [a, b]);
  await t.owner.query("insert into runtimes (workspace_id, driver) values ($1, 'process'), ($2, 'process')", [a, b]);
});
afterAll(() => t.drop());

const version = async (wid: string) =>
  Number((await t.owner.query("select settings_version as v from runtimes where workspace_id = $1", [wid])).rows[0].v);

/** Runs `statement` as the application in workspace `wid`'s scope and says how far each version moved. */
async function moves(wid: string, statement: SQL) {
  const before = [await version(a), await version(b)];
  await withWorkspace(t.database.db, wid, async (tx) => {
    await tx.execute(statement);
  });
  return { a: (await version(a)) - (before[0] ?? 0), b: (await version(b)) - (before[1] ?? 0) };
}

describe("gateway settings version", () => {
  const provider = crypto.randomUUID();
  const agent = crypto.randomUUID();
  const connector = crypto.randomUUID();

  it("moves on every write to providers, agents, connectors and their grants, in that workspace only", async () => {
    expect(
      await moves(
        a,
        sql`insert into providers (id, workspace_id, name, kind, base_url) values (${provider}, ${a}, 'p', 'openai', 'https://api.example')`,
      ),
    ).toEqual({ a: 1, b: 0 });
    expect(
      await moves(
        a,
        sql`insert into agents (id, workspace_id, name, provider_id, model) values (${agent}, ${a}, 'ada', ${provider}, 'm')`,
      ),
    ).toEqual({ a: 1, b: 0 });
    expect(await moves(a, sql`update agents set tools = '[\"web\"]' where id = ${agent}`)).toEqual({ a: 1, b: 0 });
    expect(await moves(a, sql`update providers set models = '["x"]' where id = ${provider}`)).toEqual({ a: 1, b: 0 });
    expect(
      await moves(
        a,
        sql`insert into connectors (id, workspace_id, name, slug, kind, transport, url) values (${connector}, ${a}, 'c', 'c', 'custom', 'http', 'https://mcp.example')`,
      ),
    ).toEqual({ a: 1, b: 0 });
    expect(
      await moves(
        a,
        sql`insert into agent_connectors (workspace_id, agent_id, connector_id) values (${a}, ${agent}, ${connector})`,
      ),
    ).toEqual({ a: 1, b: 0 });
    expect(await moves(a, sql`update connectors set enabled = false where id = ${connector}`)).toEqual({ a: 1, b: 0 });
    expect(await moves(a, sql`delete from agent_connectors where agent_id = ${agent}`)).toEqual({ a: 1, b: 0 });
    expect(await moves(a, sql`delete from agents where id = ${agent}`)).toEqual({ a: 1, b: 0 });
  });

  it("cannot be moved, or read, from another workspace's scope", async () => {
    // b's scope writing a's rows changes nothing (RLS), so a's version stays where it is.
    expect(await moves(b, sql`update providers set models = '["y"]' where id = ${provider}`)).toEqual({ a: 0, b: 0 });
    const seen = await withWorkspace(t.database.db, b, (tx) =>
      tx.execute(sql`select settings_version from runtimes where workspace_id = ${a}`),
    );
    expect(seen.rows).toEqual([]);
  });

  it("deleting a workspace with agents still works (the trigger finds its runtime row gone)", async () => {
    const c = crypto.randomUUID();
    await t.owner.query("insert into workspaces (id, name) values ($1, 'gamma')", [c]);
    await t.owner.query("insert into runtimes (workspace_id, driver) values ($1, 'process')", [c]);
    const p = crypto.randomUUID();
    await withWorkspace(t.database.db, c, async (tx) => {
      await tx.execute(
        sql`insert into providers (id, workspace_id, name, kind, base_url) values (${p}, ${c}, 'p', 'openai', 'https://api.example')`,
      );
      await tx.execute(sql`insert into agents (workspace_id, name, provider_id, model) values (${c}, 'x', ${p}, 'm')`);
    });
    await t.owner.query("delete from workspaces where id = $1", [c]);
    expect((await t.owner.query("select count(*)::int as n from agents where workspace_id = $1", [c])).rows[0].n).toBe(
      0,
    );
  });
});
