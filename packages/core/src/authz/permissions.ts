import { ForbiddenError } from "@reef/contracts";
import { type Db, schema, type WorkspaceRole } from "@reef/db";

/** Every action a workspace role can be granted (rows of `role_permissions`). */
export type Action =
  | "workspace:read"
  | "workspace:update"
  | "workspace:delete"
  | "members:read"
  | "members:invite"
  | "members:update"
  | "members:remove"
  | "api_keys:read"
  | "api_keys:create"
  | "api_keys:revoke"
  | "audit:read"
  | "runtime:read"
  | "runtime:manage"
  | "providers:read"
  | "providers:manage"
  | "providers:personal"
  | "agents:read"
  | "agents:create"
  | "agents:manage"
  | "chat:use"
  | "usage:read"
  /** See every approval of the workspace (everyone sees their own runs' approvals). */
  | "approvals:read"
  /** Decide any approval of the workspace, not only your own runs'. */
  | "approvals:decide"
  /** See the workspace's schedules and triggers (their output only when shared, or your own). */
  | "schedules:read"
  /** Create schedules and triggers, and change, run or delete your own. */
  | "schedules:write"
  /** Change, pause, run or delete anyone's schedules and triggers. */
  | "schedules:manage"
  /** See the workspace's connectors (never their credentials). */
  | "connectors:read"
  /** Add, change, test and delete connectors, and choose which agents use them. */
  | "connectors:manage";

const RANK: Record<WorkspaceRole, number> = { owner: 4, admin: 3, member: 2, viewer: 1 };

/** True when `role` is at most as powerful as `than`: nobody grants more than they hold. */
export function roleAtMost(role: WorkspaceRole, than: WorkspaceRole): boolean {
  return RANK[role] <= RANK[than];
}

/** The permission table, read from the database once and then answered from memory. */
export interface Permissions {
  can(role: WorkspaceRole, action: Action): Promise<boolean>;
  /** Throws Forbidden unless `role` may do `action`. */
  require(role: WorkspaceRole, action: Action): Promise<void>;
}

export function createPermissions(deps: { db: Db }): Permissions {
  let table: Promise<Set<string>> | undefined;
  const load = () => {
    table ??= deps.db
      .select()
      .from(schema.rolePermissions)
      .then((rows) => new Set(rows.map((r) => `${r.role}:${r.action}`)))
      .catch((err: unknown) => {
        table = undefined;
        throw err;
      });
    return table;
  };
  const can = async (role: WorkspaceRole, action: Action) => (await load()).has(`${role}:${action}`);
  return {
    can,
    async require(role, action) {
      if (!(await can(role, action))) throw new ForbiddenError(`Your role (${role}) does not allow ${action}.`);
    },
  };
}
