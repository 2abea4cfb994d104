import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
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
