import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmbeddedPostgres } from "@reef/db";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReef, tempDataDir } from "./reef-process.ts";

// A second, independent Postgres server standing in for a managed database.
let external: EmbeddedPostgres;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "reef-external-pg-"));
  external = new EmbeddedPostgres({ dir, port: 0 });
  await external.start();
});
afterAll(async () => {
  await external.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("reef start with DATABASE_URL", () => {
  it("uses the given server, migrates it, and connects as a role RLS applies to", async () => {
    const { user, password, host, port } = external.connection;
    const databaseUrl = `postgres://${user}:${encodeURIComponent(password)}@${host}:${port}/postgres`;
    const dataDir = await tempDataDir();
    const reef = await startReef({ REEF_DATA_DIR: dataDir, DATABASE_URL: databaseUrl });
    expect((await fetch(`${reef.url}/readyz`)).status).toBe(200);
    expect(await readdir(dataDir)).not.toContain("postgres");
    expect(reef.output()).not.toContain(password);

    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const tables = await client.query("select to_regclass('public.workspaces') is not null as ok");
    expect(tables.rows[0].ok).toBe(true);
    const sessions = await client.query(
      "select usename, r.rolsuper, r.rolbypassrls from pg_stat_activity a join pg_roles r on r.rolname = a.usename where datname = 'postgres' and usename <> $1",
      [user],
    );
    expect(sessions.rows.length).toBeGreaterThan(0);
    for (const row of sessions.rows)
      expect(row).toMatchObject({ usename: "reef_app_user", rolsuper: false, rolbypassrls: false });
    await client.end();

    reef.child.kill("SIGINT");
    expect(await reef.exited).toBe(0);
    // Reef never stops a server it did not start.
    const still = new pg.Client({ connectionString: databaseUrl });
    await still.connect();
    await still.end();
  });
});
