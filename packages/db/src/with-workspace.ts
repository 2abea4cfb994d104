import { sql } from "drizzle-orm";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
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
  return db.transaction(async (tx) => {
    await applySettings(tx, settings);
    return fn(tx);
  });
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
