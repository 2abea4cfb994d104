import { randomBytes } from "node:crypto";
import { APP_LOGIN_ROLE, type Database, openDatabase } from "@reef/db";
import { ensureAppLogin } from "@reef/db/app-role";
import pg from "pg";
import { inject } from "vitest";

export const TEMPLATE_DB = "reef_template";
export const TEST_APP_PASSWORD = "reef-test-app-password";

declare module "vitest" {
  export interface ProvidedContext {
    reefPostgres: { host: string; port: number; user: string; password: string; appPassword: string };
  }
}

export function ensureAppLoginForTests(owner: pg.ClientBase): Promise<void> {
  return ensureAppLogin(owner, TEST_APP_PASSWORD, TEMPLATE_DB);
}

/** A fresh, migrated database cloned from the run's template. */
export interface TestDatabase {
  name: string;
  /** Superuser URL: for arranging fixtures that bypass RLS on purpose. */
  ownerUrl: string;
  /** URL of the application's (RLS-bound) login role. */
  appUrl: string;
  /** The app's handle, connected as the application role. */
  database: Database;
  /** A superuser pool for fixtures and assertions. */
  owner: pg.Pool;
  /**
   * Another app handle on the same database, with pools of its own: a second
   * Reef replica's (closed by `drop()` if still open).
   */
  openAnother(): Promise<Database>;
  /** Closes the pools and drops the database. */
  drop(): Promise<void>;
}

function url(user: string, password: string, host: string, port: number, db: string): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${db}`;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const conn = inject("reefPostgres");
  const name = `reef_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ ...conn, database: "postgres" });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const ownerUrl = url(conn.user, conn.password, conn.host, conn.port, name);
  const appUrl = url(APP_LOGIN_ROLE, conn.appPassword, conn.host, conn.port, name);
  const open = () =>
    openDatabase({ databaseUrl: ownerUrl, appDatabaseUrl: appUrl, appRolePassword: conn.appPassword, migrate: false });
  const database = await open();
  const others: Database[] = [];
  const owner = new pg.Pool({ connectionString: ownerUrl, max: 3 });
  // `drop()` force-terminates the database's backends; a pooled client still
  // closing then hears "terminating connection" (57P01). That is the teardown
  // working, not a failure; anything else still surfaces.
  owner.on("error", (err: Error & { code?: string }) => {
    if (err.code !== "57P01") throw err;
  });
  return {
    name,
    ownerUrl,
    appUrl,
    database,
    owner,
    async openAnother() {
      const another = await open();
      others.push(another);
      return another;
    },
    async drop() {
      await database.close();
      for (const another of others) await another.close().catch(() => {});
      await owner.end();
      const admin = new pg.Client({ ...conn, database: "postgres" });
      await admin.connect();
      try {
        await admin.query(`drop database if exists ${name} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

/** Connection facts of the run's server, for tests that need a database of their own. */
export function testPostgres() {
  return inject("reefPostgres");
}
