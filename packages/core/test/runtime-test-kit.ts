import { randomBytes } from "node:crypto";
import type { RuntimeDriver } from "@reef/runtime";
import type { TestDatabase } from "@reef/testing";
import { createRuntimeManager, type RuntimeManagerDeps } from "../src/runtime/runtime-manager.ts";
import { createSealer } from "../src/shared/sealing.ts";

/** The caller for wakes and stops no person asked for. */
export const SYSTEM = { actor: { kind: "system" as const, name: "test" } };

/** An audit entry as the runtime tests read it back. */
export interface AuditEntry {
  action: string;
  details: Record<string, unknown>;
}

/**
 * Helpers for the runtime manager tests, bound to the test's current database
 * (`db` is read on every call, so a file may give each test a fresh one).
 */
export function runtimeTestKit(db: () => TestDatabase) {
  /** A manager on `driver` with small timeouts; each call is another replica (its own instance id). */
  function manager(driver: RuntimeDriver, overrides: Partial<RuntimeManagerDeps> = {}) {
    return createRuntimeManager({
      db: db().database.db,
      driver,
      sealer: createSealer(Buffer.alloc(32, 3), "runtime-token"),
      settingsFor: async () => ({ providers: [], agents: [] }),
      instanceId: `reef-${randomBytes(3).toString("hex")}`,
      idleTimeoutMs: 60_000,
      startTimeoutMs: 5_000,
      limits: { memoryMb: 1024, cpus: 1, pids: 256 },
      restartBackoffMs: 10,
      ...overrides,
    });
  }

  /** A user, for workspaces to belong to. */
  async function user(): Promise<string> {
    const id = crypto.randomUUID();
    await db().owner.query("insert into users (id, email, name) values ($1, $2, 'u')", [id, `${id}@example.com`]);
    return id;
  }

  /** Makes `userId` a member of workspace `wid` with `role`. */
  async function join(wid: string, userId: string, role: string): Promise<void> {
    await db().owner.query("insert into workspace_members (workspace_id, user_id, role) values ($1, $2, $3)", [
      wid,
      userId,
      role,
    ]);
  }

  /** A workspace, owned by `owner` when given. */
  async function workspace(owner?: string): Promise<string> {
    const id = crypto.randomUUID();
    await db().owner.query("insert into workspaces (id, name) values ($1, 'w')", [id]);
    if (owner) await join(id, owner, "owner");
    return id;
  }

  /** An agent in workspace `wid`, on a provider of its own that nothing answers at. */
  async function agent(wid: string): Promise<{ providerId: string; agentId: string }> {
    const providerId = crypto.randomUUID();
    const agentId = crypto.randomUUID();
    await db().owner.query(
      "insert into providers (id, workspace_id, name, kind, base_url) values ($1, $2, 'Acme', 'openai-compatible', 'http://127.0.0.1:9')",
      [providerId, wid],
    );
    await db().owner.query(
      "insert into agents (id, workspace_id, name, provider_id, model) values ($1, $2, 'a', $3, 'm')",
      [agentId, wid, providerId],
    );
    return { providerId, agentId };
  }

  /** The workspace's audit entries, oldest first. */
  async function audit(wid: string): Promise<AuditEntry[]> {
    const { rows } = await db().owner.query(
      "select action, details from audit_log where workspace_id = $1 order by id",
      [wid],
    );
    return rows;
  }

  /** The actions of the workspace's audit entries, oldest first. */
  async function auditActions(wid: string): Promise<string[]> {
    return (await audit(wid)).map((a) => a.action);
  }

  return { manager, user, join, workspace, agent, audit, auditActions };
}
