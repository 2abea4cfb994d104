import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readMigrationFiles } from "drizzle-orm/migrator";
import type pg from "pg";

/** The migrations that ship with Reef. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../migrations", import.meta.url));

// Same table drizzle-kit's own migrator uses, so either tool sees the same history.
const TABLE = "drizzle.__drizzle_migrations";
// Serialises migrations across replicas starting at once.
const MIGRATION_LOCK = 7_420_001;

interface Migration {
  tag: string;
  when: number;
  hash: string;
  statements: string[];
}

/** Raised when a migration fails; names the migration and the statement. */
export class MigrationError extends Error {
  readonly tag: string;
  constructor(tag: string, statement: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const excerpt = statement.trim().split("\n").slice(0, 3).join(" ").slice(0, 200);
    super(`migration ${tag} failed: ${reason} (in statement: ${excerpt})`, { cause });
    this.name = "MigrationError";
    this.tag = tag;
  }
}

function loadMigrations(folder: string): Migration[] {
  let journal: { entries: { tag: string; when: number }[] };
  try {
    journal = JSON.parse(readFileSync(`${folder}/meta/_journal.json`, "utf8"));
  } catch (err) {
    throw new Error(`cannot read the migration journal in ${folder}: ${(err as Error).message}`);
  }
  const files = readMigrationFiles({ migrationsFolder: folder });
  return journal.entries.map((entry, i) => {
    const file = files[i];
    if (!file) throw new Error(`migration ${entry.tag} is listed in the journal but missing`);
    return { tag: entry.tag, when: entry.when, hash: file.hash, statements: file.sql };
  });
}

/** A client or a pool: anything that runs a query. */
export type Queryable = Pick<pg.ClientBase, "query">;

async function lastApplied(client: Queryable): Promise<number | undefined> {
  const exists = await client.query<{ ok: boolean }>("select to_regclass($1) is not null as ok", [TABLE]);
  if (!exists.rows[0]?.ok) return undefined;
  const res = await client.query<{ created_at: string }>(
    `select created_at from ${TABLE} order by created_at desc limit 1`,
  );
  const value = res.rows[0]?.created_at;
  return value === undefined ? undefined : Number(value);
}

/** Which shipped migrations the database has and has not applied. */
export interface MigrationStatus {
  total: number;
  pending: string[];
}

export async function migrationStatus(client: Queryable, folder = MIGRATIONS_FOLDER): Promise<MigrationStatus> {
  const migrations = loadMigrations(folder);
  const last = await lastApplied(client);
  const pending = migrations.filter((m) => last === undefined || last < m.when).map((m) => m.tag);
  return { total: migrations.length, pending };
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so
 * concurrent replicas apply each exactly once and a failure leaves nothing half done.
 * Must run as the schema owner, not the application role.
 * @returns the tags applied by this call.
 */
export async function runMigrations(client: pg.ClientBase, folder = MIGRATIONS_FOLDER): Promise<string[]> {
  const migrations = loadMigrations(folder);
  await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
  try {
    await client.query("create schema if not exists drizzle");
    await client.query(
      `create table if not exists ${TABLE} (id serial primary key, hash text not null, created_at bigint)`,
    );
    const last = await lastApplied(client);
    const pending = migrations.filter((m) => last === undefined || last < m.when);
    if (pending.length === 0) return [];
    await client.query("begin");
    try {
      for (const m of pending) {
        for (const statement of m.statements) {
          if (!statement.trim()) continue;
          try {
            await client.query(statement);
          } catch (err) {
            throw new MigrationError(m.tag, statement, err);
          }
        }
        await client.query(`insert into ${TABLE} (hash, created_at) values ($1, $2)`, [m.hash, m.when]);
      }
      await client.query("commit");
    } catch (err) {
      await client.query("rollback");
      throw err;
    }
    return pending.map((m) => m.tag);
  } finally {
    await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK]);
  }
}
