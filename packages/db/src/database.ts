import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { APP_LOGIN_ROLE, ensureAppLogin } from "./app-role.ts";
import type { PostgresBinaries } from "./embedded/binaries.ts";
import { EmbeddedPostgres } from "./embedded/embedded-postgres.ts";
import { type MigrationStatus, migrationStatus, runMigrations } from "./migrate.ts";
import * as schema from "./schema/index.ts";
import { type Db, scopeTransactionsOn } from "./with-workspace.ts";

/** What the database layer reports about itself. Messages never carry secrets. */
export interface DbLogger {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

export interface OpenDatabaseOptions {
  /** An existing Postgres (owner credentials). Without it, the embedded server is used. */
  databaseUrl?: string | undefined;
  /** Connect the app with this URL instead of creating its login role. */
  appDatabaseUrl?: string | undefined;
  /** Where the embedded cluster lives; required without `databaseUrl`. */
  embedded?:
    | { dir: string; port: number; osUser?: string | undefined; binaries?: PostgresBinaries | undefined }
    | undefined;
  /**
   * Use an embedded cluster another Reef process is already running from the
   * same directory, if there is one, instead of requiring exclusive use.
   */
  attachToRunning?: boolean;
  /** Password of the app login role, derived from the root secret. */
  appRolePassword: string;
  /** Apply pending migrations before returning. */
  migrate: boolean;
  poolSize?: number;
  logger?: DbLogger;
  /**
   * Keep a small pool with the owner's credentials, for operator commands that
   * must see past RLS (`reef audit verify`, `reef audit export`). Never for the server.
   */
  keepOwnerPool?: boolean;
}

/** The application's handle on Postgres: connected as a role that RLS applies to. */
export interface Database {
  readonly db: Db;
  readonly pool: pg.Pool;
  /** Which migrations this database lacks (readiness). */
  migrationStatus(): Promise<MigrationStatus>;
  /** Cheap round trip (readiness). */
  ping(): Promise<void>;
  /** True when Reef started (and will stop) the embedded server. */
  readonly embedded: boolean;
  /** The owner's pool, only with `keepOwnerPool`. */
  readonly owner: pg.Pool | undefined;
  /**
   * How the app's pool connects (the app login role, never the owner): for a
   * library that needs its own connections, the job queue's LISTEN among them.
   */
  readonly appUrl: string;
  close(): Promise<void>;
}

const EMBEDDED_DB = "reef";

/** A Drizzle handle on `pool` with Reef's schema and column naming. */
export function createDb(pool: pg.Pool): Db {
  const casing = "snake_case";
  const db = drizzle(pool, { schema, casing });
  scopeTransactionsOn(db, pool, casing);
  return db;
}
const silent: DbLogger = { info() {}, warn() {}, debug() {} };

/**
 * Brings the database up for the app: starts or attaches to the embedded server
 * when no DATABASE_URL is given, applies migrations and ensures the app's login
 * role as the owner, then opens the app pool as that non-superuser role.
 */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const log = opts.logger ?? silent;
  let server: EmbeddedPostgres | undefined;
  let ownerUrl: string;
  if (opts.databaseUrl) {
    ownerUrl = opts.databaseUrl;
  } else {
    if (!opts.embedded) throw new Error("either DATABASE_URL or an embedded database directory is required");
    const embedded = new EmbeddedPostgres({
      ...opts.embedded,
      onLog: (line, level) => log[level](`postgres: ${line}`),
    });
    let conn = opts.attachToRunning ? await embedded.attach() : undefined;
    if (conn) {
      log.info(`using the embedded database already running on port ${conn.port}`);
    } else {
      const { created } = await embedded.start();
      conn = embedded.connection;
      server = embedded;
      log.info(
        created
          ? `initialised a new embedded database in ${embedded.dataDir}`
          : `started the embedded database from ${embedded.dataDir}`,
      );
      await ensureDatabase(conn, EMBEDDED_DB);
    }
    ownerUrl = connectionUrl(conn.user, conn.password, conn.host, conn.port, EMBEDDED_DB);
  }

  let pool: pg.Pool | undefined;
  let appUrl: string | undefined = opts.appDatabaseUrl;
  const ownerPool = opts.keepOwnerPool ? new pg.Pool({ connectionString: ownerUrl, max: 2 }) : undefined;
  try {
    const owner = new pg.Client({ connectionString: ownerUrl });
    try {
      await owner.connect();
      if (opts.migrate) {
        const applied = await runMigrations(owner);
        if (applied.length) log.info(`applied migrations: ${applied.join(", ")}`);
      }
      if (!appUrl) {
        const dbName = (await owner.query<{ db: string }>("select current_database() as db")).rows[0]?.db ?? "";
        await ensureAppLogin(owner, opts.appRolePassword, dbName);
        appUrl = withCredentials(ownerUrl, APP_LOGIN_ROLE, opts.appRolePassword);
      }
      // A bounded wait for a connection: a database that is unreachable without
      // refusing (a network partition) must fail requests, not hang them.
      pool = new pg.Pool({ connectionString: appUrl, max: opts.poolSize ?? 10, connectionTimeoutMillis: 10_000 });
    } finally {
      await owner.end().catch(() => {});
    }
    // An idle client can hear the server go away (a restart, or the embedded
    // server stopping just after pool.end(), which does not wait for sockets to
    // close); unhandled, that would crash the process.
    pool.on("error", (err) => log.warn(`idle database connection failed: ${err.message}`));
    ownerPool?.on("error", (err) => log.warn(`idle owner database connection failed: ${err.message}`));
    // A client checked out for a transaction has no pool listener: the server
    // going away between its statements (a fast shutdown, a failover) would be an
    // unhandled 'error' and crash the process. Its statement fails anyway, and the
    // pool drops the client on release, as it is no longer queryable.
    for (const p of [pool, ownerPool])
      p?.on("connect", (client) =>
        client.on("error", (err) => log.debug(`database connection in use failed: ${err.message}`)),
      );
    await assertRlsApplies(pool);
  } catch (err) {
    await pool?.end().catch(() => {});
    await ownerPool?.end().catch(() => {});
    await server?.stop();
    throw err;
  }

  const appPool = pool;
  return {
    db: createDb(appPool),
    pool: appPool,
    appUrl: appUrl ?? "",
    embedded: server !== undefined,
    owner: ownerPool,
    migrationStatus: () => migrationStatus(appPool),
    async ping() {
      await appPool.query("select 1");
    },
    async close() {
      await ownerPool?.end().catch(() => {});
      await appPool.end().catch((err: Error) => log.warn(`closing the pool failed: ${err.message}`));
      if (server) {
        await server.stop();
        log.info("stopped the embedded database");
      }
    },
  };
}

async function assertRlsApplies(pool: pg.Pool): Promise<void> {
  const res = await pool.query<{ name: string; rolsuper: boolean; rolbypassrls: boolean }>(
    "select rolname as name, rolsuper, rolbypassrls from pg_roles where rolname = current_user",
  );
  const role = res.rows[0];
  if (!role || role.rolsuper || role.rolbypassrls) {
    throw new Error(
      `the application database role ${role?.name ?? "?"} is a superuser or bypasses row-level security; Reef refuses to run with it`,
    );
  }
}

async function ensureDatabase(conn: { host: string; port: number; user: string; password: string }, name: string) {
  const client = new pg.Client({ ...conn, database: "postgres" });
  await client.connect();
  try {
    const found = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (found.rowCount === 0) await client.query(`create database ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

function connectionUrl(user: string, password: string, host: string, port: number, database: string): string {
  const url = new URL("postgres://localhost");
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(password);
  url.hostname = host;
  url.port = String(port);
  url.pathname = `/${database}`;
  return url.toString();
}

function withCredentials(base: string, user: string, password: string): string {
  const url = new URL(base);
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(password);
  return url.toString();
}
