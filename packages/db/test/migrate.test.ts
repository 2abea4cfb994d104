import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase, testPostgres } from "@reef/testing";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { MIGRATIONS_FOLDER, MigrationError, migrationStatus, runMigrations } from "../src/index.ts";

let t: TestDatabase | undefined;
afterEach(async () => {
  await t?.drop();
  t = undefined;
});

async function folderWithExtra(tag: string, body: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "reef-migrations-"));
  await cp(MIGRATIONS_FOLDER, dir, { recursive: true });
  const journalPath = join(dir, "meta", "_journal.json");
  const journal = JSON.parse(await readFile(journalPath, "utf8"));
  const last = journal.entries.at(-1);
  journal.entries.push({ ...last, idx: last.idx + 1, when: last.when + 1000, tag });
  await writeFile(journalPath, JSON.stringify(journal));
  await writeFile(join(dir, `${tag}.sql`), body);
  return dir;
}

async function withOwner<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe("migrations", () => {
  it("a migrated database has nothing pending, and re-running applies nothing", async () => {
    t = await createTestDatabase();
    const status = await t.database.migrationStatus();
    expect(status.pending).toEqual([]);
    expect(status.total).toBeGreaterThanOrEqual(3);
    expect(await withOwner(t.ownerUrl, (c) => runMigrations(c))).toEqual([]);
  });

  it("a broken migration fails with its name and the database error, and applies nothing", async () => {
    t = await createTestDatabase();
    const folder = await folderWithExtra(
      "0099_broken",
      'CREATE TABLE "half_done" (id int);\n--> statement-breakpoint\nALTER TABLE "no_such_table" ADD COLUMN x int;',
    );
    const err = await withOwner(t.ownerUrl, (c) => runMigrations(c, folder)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as Error).message).toMatch(/migration 0099_broken failed: relation "no_such_table" does not exist/);
    const { rows } = await t.owner.query("select to_regclass('half_done') as t");
    expect(rows[0].t).toBeNull();
    expect((await migrationStatus(t.owner, folder)).pending).toEqual(["0099_broken"]);
  });

  it("readiness sees a pending migration until it is applied", async () => {
    t = await createTestDatabase();
    const folder = await folderWithExtra("0099_add_table", 'CREATE TABLE "later" (id int);');
    expect((await migrationStatus(t.database.pool, folder)).pending).toEqual(["0099_add_table"]);
    expect(await withOwner(t.ownerUrl, (c) => runMigrations(c, folder))).toEqual(["0099_add_table"]);
    expect((await migrationStatus(t.database.pool, folder)).pending).toEqual([]);
  });

  it("replicas migrating at once apply each migration exactly once", async () => {
    t = await createTestDatabase();
    const folder = await folderWithExtra("0099_once", 'CREATE TABLE "once" (id int);');
    const url = t.ownerUrl;
    const results = await Promise.all([1, 2, 3].map(() => withOwner(url, (c) => runMigrations(c, folder))));
    expect(results.flat()).toEqual(["0099_once"]);
  });
});

describe("upgrading an existing database", () => {
  it("0008 moves platform audit entries into their own trail, keeping ids and hashes", async () => {
    const conn = testPostgres();
    const name = `reef_upgrade_${Date.now()}`;
    const admin = new pg.Client({ ...conn, database: "postgres" });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = `postgres://${conn.user}:${encodeURIComponent(conn.password)}@${conn.host}:${conn.port}/${name}`;
    try {
      const before = await mkdtemp(join(tmpdir(), "reef-migrations-"));
      await cp(MIGRATIONS_FOLDER, before, { recursive: true });
      const journalPath = join(before, "meta", "_journal.json");
      const journal = JSON.parse(await readFile(journalPath, "utf8"));
      journal.entries = journal.entries.filter((e: { tag: string }) => e.tag < "0008");
      await writeFile(journalPath, JSON.stringify(journal));
      await withOwner(url, (c) => runMigrations(c, before));
      const ws = crypto.randomUUID();
      await withOwner(url, async (c) => {
        await c.query("insert into workspaces (id, name) values ($1, 'w')", [ws]);
        await c.query(
          `insert into audit_log (workspace_id, occurred_at, actor_type, action, outcome, prev_hash, hash) values
             (null, now(), 'anonymous', 'auth.login', 'failure', null, 'h1'),
             ($1, now(), 'user', 'workspace.rename', 'success', null, 'h2'),
             (null, now(), 'user', 'auth.login', 'success', 'h1', 'h3')`,
          [ws],
        );
      });
      expect(await withOwner(url, (c) => runMigrations(c))).toContain("0008_platform_audit_log");
      const moved = await withOwner(url, (c) =>
        c.query("select id::int, action, prev_hash, hash from platform_audit_log order by id"),
      );
      expect(moved.rows).toEqual([
        { id: 1, action: "auth.login", prev_hash: null, hash: "h1" },
        { id: 3, action: "auth.login", prev_hash: "h1", hash: "h3" },
      ]);
      const kept = await withOwner(url, (c) => c.query("select id::int, hash from audit_log"));
      expect(kept.rows).toEqual([{ id: 2, hash: "h2" }]);
      const next = await withOwner(url, (c) =>
        c.query(
          "insert into platform_audit_log (occurred_at, actor_type, action, outcome, hash) values (now(), 'system', 'x', 'success', 'h4') returning id::int",
        ),
      );
      expect(next.rows[0].id).toBeGreaterThan(3);
    } finally {
      const drop = new pg.Client({ ...conn, database: "postgres" });
      await drop.connect();
      await drop.query(`drop database if exists ${name} with (force)`);
      await drop.end();
    }
  });
});
