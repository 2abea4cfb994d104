import { randomBytes } from "node:crypto";
import type { GatewaySettings } from "@reef/runtime";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRuntimeManager, type RuntimeManagerDeps } from "../src/runtime/runtime-manager.ts";
import { createSealer } from "../src/shared/sealing.ts";
import { FakeDriver } from "./fake-driver.ts";

// A database per test: the manager's sweeps (health, idle, reconcile) see every row.
let t: TestDatabase;
beforeEach(async () => {
  t = await createTestDatabase();
});
afterEach(() => t.drop());

let settings: GatewaySettings = { providers: [], agents: [] };

function manager(driver: FakeDriver, overrides: Partial<RuntimeManagerDeps> = {}) {
  return createRuntimeManager({
    db: t.database.db,
    driver,
    sealer: createSealer(Buffer.alloc(32, 3), "runtime-token"),
    settingsFor: async () => settings,
    instanceId: `reef-${randomBytes(3).toString("hex")}`,
    idleTimeoutMs: 60_000,
    startTimeoutMs: 5_000,
    limits: { memoryMb: 1024, cpus: 1, pids: 256 },
    restartBackoffMs: 10,
    ...overrides,
  });
}

async function workspace(): Promise<string> {
  const id = crypto.randomUUID();
  await t.owner.query("insert into workspaces (id, name) values ($1, 'w')", [id]);
  return id;
}

async function auditActions(wid: string): Promise<string[]> {
  const { rows } = await t.owner.query("select action from audit_log where workspace_id = $1 order by id", [wid]);
  return rows.map((r) => r.action);
}

const SYSTEM = { actor: { kind: "system" as const, name: "test" } };

describe("runtime manager", () => {
  it("wakes a stopped workspace once for many concurrent callers, across two replicas", async () => {
    const wid = await workspace();
    const driver = new FakeDriver({ startDelayMs: 300 });
    const [a, b] = [manager(driver), manager(driver)];
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).ensureRunning(SYSTEM, wid)));
    expect(driver.starts).toHaveLength(1);
    expect(new Set(results.map((r) => r.endpoint.toString())).size).toBe(1);
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    expect(driver.starts[0]?.token).toBe(results[0]?.token);
    expect((await a.get(wid)).state).toBe("running");
    expect(await auditActions(wid)).toEqual(["runtime.start", "runtime.ready"]);
    const { rows } = await t.owner.query("select token_sealed from runtimes where workspace_id = $1", [wid]);
    expect(rows[0].token_sealed).not.toContain(results[0]?.token);
  });

  it("stops idle runtimes and wakes them again on the next request", async () => {
    const wid = await workspace();
    const driver = new FakeDriver();
    const m = manager(driver, { idleTimeoutMs: 100 });
    await m.ensureRunning(SYSTEM, wid);
    await t.owner.query("update runtimes set last_activity_at = now() - interval '1 hour' where workspace_id = $1", [
      wid,
    ]);
    expect(await m.reapIdle()).toContain(wid);
    expect((await m.get(wid)).state).toBe("stopped");
    expect(driver.stops).toBe(1);
    await m.ensureRunning(SYSTEM, wid);
    expect(driver.starts).toHaveLength(2);
    expect(await auditActions(wid)).toEqual([
      "runtime.start",
      "runtime.ready",
      "runtime.stop",
      "runtime.start",
      "runtime.ready",
    ]);
  });

  it("restarts a crashed runtime once, then marks it failed with the reason", async () => {
    const wid = await workspace();
    const driver = new FakeDriver();
    const m = manager(driver);
    await m.ensureRunning(SYSTEM, wid);
    const handle = async () =>
      (await t.owner.query("select handle from runtimes where workspace_id = $1", [wid])).rows[0].handle;
    driver.crash({ state: await handle() });
    await m.checkHealth();
    expect(driver.starts).toHaveLength(2);
    expect((await m.get(wid)).state).toBe("running");
    driver.crash({ state: await handle() }, 1);
    await m.checkHealth();
    const view = await m.get(wid);
    expect(view.state).toBe("failed");
    expect(view.failureReason).toMatch(/exited unexpectedly \(code 1\) again after a restart/);
    expect(driver.starts).toHaveLength(2);
    expect(await auditActions(wid)).toEqual([
      "runtime.start",
      "runtime.ready",
      "runtime.crash",
      "runtime.start",
      "runtime.ready",
      "runtime.failed",
    ]);
  });

  it("kills a gateway above its memory limit where the driver cannot cap it, and restarts it", async () => {
    const wid = await workspace();
    const driver = new FakeDriver();
    const m = manager(driver, { enforceMemoryLimit: true });
    await m.ensureRunning(SYSTEM, wid);
    const first = String((await m.handle(wid))?.state.id);
    driver.rss.set(first, 900 * 1024 * 1024);
    await m.checkHealth();
    expect(driver.starts).toHaveLength(1);
    driver.rss.set(first, 1500 * 1024 * 1024);
    await m.checkHealth();
    expect(driver.live.get(first)?.alive).toBe(false);
    expect(driver.starts).toHaveLength(2);
    const { rows } = await t.owner.query(
      "select details from audit_log where workspace_id = $1 and action = 'runtime.crash'",
      [wid],
    );
    expect(rows[0].details.reason).toBe("the gateway used 1500 MB, above its 1024 MB limit");
    // Without enforcement (container drivers have engine limits), the same figure is left alone.
    const other = await workspace();
    const lenient = manager(driver);
    await lenient.ensureRunning(SYSTEM, other);
    driver.rss.set(String((await lenient.handle(other))?.state.id), 1500 * 1024 * 1024);
    await lenient.checkHealth();
    expect((await lenient.get(other)).state).toBe("running");
  });

  it("a failed start is reported, audited, and retried on the next request", async () => {
    const wid = await workspace();
    const driver = new FakeDriver();
    driver.failStarts = 1;
    const m = manager(driver);
    await expect(m.ensureRunning(SYSTEM, wid)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect((await m.get(wid)).failureReason).toMatch(/code 78/);
    await m.ensureRunning(SYSTEM, wid);
    expect((await m.get(wid)).state).toBe("running");
  });

  it("restarts the runtime when the workspace's settings change", async () => {
    const wid = await workspace();
    const driver = new FakeDriver();
    const m = manager(driver);
    const first = await m.ensureRunning(SYSTEM, wid);
    settings = { providers: [], agents: [], toolProfile: "full" };
    const second = await m.ensureRunning(SYSTEM, wid);
    settings = { providers: [], agents: [] };
    expect(second.endpoint.toString()).not.toBe(first.endpoint.toString());
    expect(driver.stops).toBe(1);
    expect(await auditActions(wid)).toContain("runtime.restart");
  });

  it("after a Reef restart, adopts runtimes still running and cleans up the rest", async () => {
    const [alive, dead, stuck] = [await workspace(), await workspace(), await workspace()];
    const driver = new FakeDriver();
    const before = manager(driver);
    await before.ensureRunning(SYSTEM, alive);
    await before.ensureRunning(SYSTEM, dead);
    const { rows } = await t.owner.query("select handle from runtimes where workspace_id = $1", [dead]);
    driver.crash({ state: rows[0].handle });
    // A start that a crashed process claimed long ago.
    await t.owner.query(
      "insert into runtimes (workspace_id, driver, state, claimed_by, claimed_at) values ($1, 'fake', 'starting', 'gone', now() - interval '1 hour')",
      [stuck],
    );
    const after = manager(driver);
    const result = await after.reconcile();
    expect(result.adopted).toContain(alive);
    expect(result.cleaned).toEqual(expect.arrayContaining([dead, stuck]));
    expect((await after.get(alive)).state).toBe("running");
    expect((await after.get(dead)).state).toBe("stopped");
    expect((await after.get(stuck)).state).toBe("stopped");
    // The adopted runtime is served without a new start.
    const starts = driver.starts.length;
    await after.ensureRunning(SYSTEM, alive);
    expect(driver.starts.length).toBe(starts);
  });
});
