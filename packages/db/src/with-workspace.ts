import { sql } from "drizzle-orm";
import { type NodePgDatabase, NodePgSession, NodePgTransaction } from "drizzle-orm/node-postgres";
import { PgDialect } from "drizzle-orm/pg-core";
import pg from "pg";
import { namingStatements } from "./named-statements.ts";
import type * as schema from "./schema/index.ts";

export type Db = NodePgDatabase<typeof schema>;
/** A transaction handle carrying an RLS scope. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the rows visible to a transaction are keyed on; see the policies in `schema/`. */
export interface Scope {
  /** Tenant rows of this workspace. */
  workspaceId?: string;
  /** Rows of this user: their sessions, memberships, workspace names. */
  userId?: string;
  /** Operator views of platform metadata (users, workspaces, members; never tenant content). */
  platform?: boolean;
  /** The one row a presented secret names: session token hash, API key hash, invite token hash, email, LLM credential hash, sign-in flow token hash. */
  lookup?: Partial<
    Record<
      "session" | "api_key" | "invite" | "email" | "llm_credential" | "connector_credential" | "auth_token",
      string
    >
  >;
}

/** True when `value` is a canonical UUID: ids from paths are checked before they reach SQL. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * Runs `fn` in a transaction whose row-level-security scope is `scope`. Settings
 * are transaction-local, so a pooled connection never carries one request's
 * scope into another.
 */
export async function withScope<T>(db: Db, scope: Scope, fn: (tx: Tx) => Promise<T>): Promise<T> {
  for (const [name, id] of [
    ["workspace", scope.workspaceId],
    ["user", scope.userId],
  ] as const) {
    if (id !== undefined && !isUuid(id)) throw new TypeError(`not a ${name} id: ${JSON.stringify(id)}`);
  }
  const settings: [string, string][] = [];
  if (scope.workspaceId) settings.push(["app.workspace_id", scope.workspaceId]);
  if (scope.userId) settings.push(["app.user_id", scope.userId]);
  if (scope.platform) settings.push(["app.platform_scope", "on"]);
  for (const [kind, value] of Object.entries(scope.lookup ?? {})) {
    if (value) settings.push([`app.lookup_${kind}`, value]);
  }
  const direct = pools.get(db);
  if (direct) return scopedTransaction(direct, settings, fn);
  return db.transaction(async (tx) => {
    await applySettings(tx, settings);
    return fn(tx);
  });
}

/** What {@link scopedTransaction} needs of a handle made by `createDb`: its pool, and drizzle's view of the schema. */
interface Direct {
  pool: pg.Pool;
  dialect: PgDialect;
  schema: ConstructorParameters<typeof NodePgSession>[2];
}
const pools = new WeakMap<Db, Direct>();

/**
 * Lets {@link withScope} open `db`'s transactions itself, on `pool` (the pool `db`
 * was made on, with the same casing), so the transaction starts and takes its
 * scope in one round trip: drizzle's `transaction()` sends its own `begin` first,
 * and every request paid a round trip for it.
 */
export function scopeTransactionsOn(db: Db, pool: pg.Pool, casing: "snake_case"): void {
  pools.set(db, {
    pool,
    dialect: new PgDialect({ casing }),
    schema: { fullSchema: db._.fullSchema, schema: db._.schema ?? {}, tableNamesMap: db._.tableNamesMap },
  });
}

// Values inlined into the opening statement: printable ASCII only (ids, hashes, e-mail addresses as
// signed-in users type them), quoted by pg's escapeLiteral. Anything else takes the parameterised path.
const INLINE = /^[\x20-\x7e]*$/;

/**
 * drizzle's node-postgres transaction (begin, `fn`, commit, or rollback on a
 * throw; savepoints inside, as before), with `begin` and the scope sent as one
 * simple-protocol query, and the statements inside prepared once per connection
 * (see `namingStatements`). A connection whose rollback failed is discarded, not
 * returned to the pool.
 */
async function scopedTransaction<T>(
  direct: Direct,
  settings: [string, string][],
  fn: (tx: Tx) => Promise<T>,
): Promise<T> {
  const inline = settings.every(([k, v]) => INLINE.test(k) && INLINE.test(v));
  const opening = inline
    ? `begin${settings.length ? `; select ${settings.map(([k, v]) => `set_config(${pg.escapeLiteral(k)}, ${pg.escapeLiteral(v)}, true)`).join(", ")}` : ""}`
    : "begin";
  const client = await direct.pool.connect();
  let broken: Error | undefined;
  const tx = new NodePgTransaction(
    direct.dialect,
    new NodePgSession(namingStatements(client), direct.dialect, direct.schema),
    direct.schema,
  ) as unknown as Tx;
  try {
    // Inside the try: a failure after `begin` leaves a transaction to roll back.
    await client.query(opening);
    if (!inline) await applySettings(tx, settings);
    const result = await fn(tx);
    await client.query("commit");
    return result;
  } catch (err) {
    await client.query("rollback").catch((e: unknown) => {
      broken = e instanceof Error ? e : new Error(String(e));
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

async function applySettings(tx: Tx, settings: [string, string][]): Promise<void> {
  if (settings.length === 0) return;
  const calls = settings.map(([k, v]) => sql`set_config(${k}, ${v}, true)`);
  await tx.execute(sql`select ${sql.join(calls, sql`, `)}`);
}

/**
 * Widens the scope of a transaction already inside {@link withScope}, once a
 * lookup has established who is acting (a session's user, an API key's workspace).
 */
export async function extendScope(tx: Tx, scope: Pick<Scope, "workspaceId" | "userId" | "lookup">): Promise<void> {
  const settings: [string, string][] = [];
  for (const [kind, value] of Object.entries(scope.lookup ?? {})) {
    if (value) settings.push([`app.lookup_${kind}`, value]);
  }
  if (scope.workspaceId) {
    if (!isUuid(scope.workspaceId)) throw new TypeError("not a workspace id");
    settings.push(["app.workspace_id", scope.workspaceId]);
  }
  if (scope.userId) {
    if (!isUuid(scope.userId)) throw new TypeError("not a user id");
    settings.push(["app.user_id", scope.userId]);
  }
  await applySettings(tx, settings);
}

/** {@link withScope} for one workspace's tenant rows. */
export function withWorkspace<T>(db: Db, workspaceId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (!isUuid(workspaceId)) return Promise.reject(new TypeError(`not a workspace id: ${JSON.stringify(workspaceId)}`));
  return withScope(db, { workspaceId }, fn);
}
