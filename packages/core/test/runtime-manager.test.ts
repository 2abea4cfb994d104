import type { GatewaySettings } from "@reef/runtime";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RuntimeManagerDeps } from "../src/runtime/runtime-manager.ts";
import { FakeDriver } from "./fake-driver.ts";
import { runtimeTestKit, SYSTEM } from "./runtime-test-kit.ts";

// A database per test: the manager's sweeps (health, idle, reconcile) see every row.
let t: TestDatabase;
beforeEach(async () => {
  t = await createTestDatabase();
});
afterEach(() => t.drop());

let settings: GatewaySettings = { providers: [], agents: [] };

const kit = runtimeTestKit(() => t);
const { workspace, auditActions } = kit;
const manager = (driver: FakeDriver, overrides: Partial<RuntimeManagerDeps> = {}) =>
  kit.manager(driver, { settingsFor: async () => settings, ...overrides });

/** A workspace whose gateway one manager has started, on a fresh fake driver. */
async function running(overrides: Partial<RuntimeManagerDeps> = {}) {
  const wid = await workspace();
  const driver = new FakeDriver();
  const m = manager(driver, overrides);
  const conn = await m.ensureRunning(SYSTEM, wid);
  return { wid, driver, m, conn };
}

/** The driver handle the workspace's runtime row holds. */
async function storedHandle(wid: string) {
  return (await t.owner.query("select handle from runtimes where workspace_id = $1", [wid])).rows[0].handle;
}

/** What the audit log shows when a gateway crashed and was started again. */
const CRASHED_AND_RESTARTED = ["runtime.start", "runtime.ready", "runtime.crash", "runtime.start", "runtime.ready"];

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
    const { wid, driver, m } = await running({ idleTimeoutMs: 100 });
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
    const { wid, driver, m } = await running();
    driver.crash({ state: await storedHandle(wid) });
    await m.checkHealth();
    expect(driver.starts).toHaveLength(2);
    expect((await m.get(wid)).state).toBe("running");
    driver.crash({ state: await storedHandle(wid) }, 1);
    await m.checkHealth();
    const view = await m.get(wid);
    expect(view.state).toBe("failed");
    expect(view.failureReason).toMatch(/exited unexpectedly \(code 1\) again after a restart/);
    expect(driver.starts).toHaveLength(2);
    expect(await auditActions(wid)).toEqual([...CRASHED_AND_RESTARTED, "runtime.failed"]);
  });

  it("a health sweep that saw the old gateway exit leaves alone a runtime a person started meanwhile", async () => {
    const { wid, driver, m } = await running();
    driver.crash({ state: { id: "rt-1" } });
    // The sweep reads the row (running, rt-1) and polls rt-1: held there.
    const polled = driver.pauseNextPoll();
    const sweep = m.checkHealth();
    await polled.reached;
    // Meanwhile a person's chat finds the gateway dead and wakes a fresh one.
    expect(await m.reportUnreachable(wid)).toBe(true);
    const mine = await m.ensureRunning(SYSTEM, wid);
    // The sweep now learns that rt-1 exited: old news.
    polled.release();
    await sweep;
    const { rows } = await t.owner.query("select state, handle, restarts from runtimes where workspace_id = $1", [wid]);
    expect(rows[0]).toMatchObject({ state: "running", handle: { id: "rt-2" }, restarts: 0 });
    expect(driver.starts).toHaveLength(2);
    expect(driver.live.get("rt-2")?.alive).toBe(true);
    expect((await m.ensureRunning(SYSTEM, wid)).token).toBe(mine.token);
    expect(await auditActions(wid)).toEqual(CRASHED_AND_RESTARTED);
  });

  it("a health sweep does not take over a start in progress, on this replica or another", async () => {
    const driver = new FakeDriver();
    const [m, other] = [manager(driver), manager(driver)];
    for (const sweeper of [m, other]) {
      const wid = await workspace();
      const first = await m.ensureRunning(SYSTEM, wid);
      const old = await m.handle(wid);
      if (!old) throw new Error("no handle");
      driver.crash(old);
      const polled = driver.pauseNextPoll();
      const sweep = sweeper.checkHealth();
      await polled.reached;
      // A person's start is under way (claimed, gateway not up yet) when the sweep learns the old one exited.
      expect(await m.reportUnreachable(wid)).toBe(true);
      const started = driver.pauseNextStart();
      const user = m.ensureRunning(SYSTEM, wid);
      await started.reached;
      polled.release();
      await sweep;
      started.release();
      const conn = await user;
      expect(conn.token).not.toBe(first.token);
      // The person's gateway is the one the row names, with the token they were given, and no other was started.
      const starts = driver.starts.length;
      expect((await m.get(wid)).state).toBe("running");
      expect((await other.ensureRunning(SYSTEM, wid)).token).toBe(conn.token);
      expect(driver.starts.length).toBe(starts);
      expect(driver.live.get(String((await m.handle(wid))?.state.id))?.alive).toBe(true);
      expect(await auditActions(wid)).toEqual(CRASHED_AND_RESTARTED);
    }
    expect(driver.starts).toHaveLength(4);
  });

  it("forgets past crashes once a runtime has been healthy for a while", async () => {
    const { wid, driver, m } = await running({ restartCountResetMs: 60_000 });
    driver.crash({ state: await storedHandle(wid) });
    await m.checkHealth();
    expect((await m.get(wid)).restarts).toBe(1);
    // Not yet healthy for long: the count stays.
    await m.checkHealth();
    expect((await m.get(wid)).restarts).toBe(1);
    await t.owner.query("update runtimes set started_at = now() - interval '2 minutes' where workspace_id = $1", [wid]);
    await m.checkHealth();
    expect((await m.get(wid)).restarts).toBe(0);
    // A crash weeks later is a first crash again: restarted, not failed.
    driver.crash({ state: await storedHandle(wid) });
    await m.checkHealth();
    expect((await m.get(wid)).state).toBe("running");
    expect(driver.starts).toHaveLength(3);
  });

  it("kills a gateway above its memory limit where the driver cannot cap it, and restarts it", async () => {
    const { wid, driver, m } = await running({ enforceMemoryLimit: true });
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

  it("restarts the runtime when a write changes the workspace's settings, reading them only then", async () => {
    let reads = 0;
    let policy = "p1";
    const {
      wid,
      driver,
      m,
      conn: first,
    } = await running({
      settingsFor: async () => {
        reads++;
        return settings;
      },
      settingsPolicyKey: async () => policy,
    });
    // Warm messages reuse what was read for the start: no settings read per message.
    await m.ensureRunning(SYSTEM, wid);
    await m.ensureRunning(SYSTEM, wid);
    expect(reads).toBe(1);
    settings = { providers: [], agents: [], toolProfile: "full" };
    // What a write to agents, providers or connectors does (their triggers; see settings-version.test.ts).
    await t.owner.query("update runtimes set settings_version = settings_version + 1 where workspace_id = $1", [wid]);
    const second = await m.ensureRunning(SYSTEM, wid);
    settings = { providers: [], agents: [] };
    expect(second.endpoint.toString()).not.toBe(first.endpoint.toString());
    expect(driver.stops).toBe(1);
    expect(reads).toBe(2);
    expect(await auditActions(wid)).toContain("runtime.restart");
    // The operator's policy changing reads them again too (here back to the first settings: another restart).
    policy = "p2";
    const third = await m.ensureRunning(SYSTEM, wid);
    expect(reads).toBe(3);
    expect(third.endpoint.toString()).not.toBe(second.endpoint.toString());
    // Another replica keeps its own cache but compares against the same version: it restarts nothing.
    const other = manager(driver, { settingsPolicyKey: async () => policy });
    expect((await other.ensureRunning(SYSTEM, wid)).endpoint.toString()).toBe(third.endpoint.toString());
    expect(driver.stops).toBe(2);
  });

  it("a message's look-ahead readies a running gateway but starts no stopped one; a wake joining it does", async () => {
    const wid = await workspace();
    const driver = new FakeDriver();
    const m = manager(driver);
    const idle = await m.readyIfRunning(SYSTEM, wid);
    expect(idle?.view.state).toBe("stopped");
    await new Promise((r) => setTimeout(r, 50));
    expect(idle?.connection()).toBeUndefined();
    expect(driver.starts).toHaveLength(0);
    expect(await auditActions(wid)).toEqual([]);

    // The turn's own wake, asked for while the look-ahead is still deciding, starts it all the same.
    const [, conn] = await Promise.all([m.readyIfRunning(SYSTEM, wid), m.ensureRunning(SYSTEM, wid)]);
    expect(driver.starts).toHaveLength(1);

    const warm = await m.readyIfRunning(SYSTEM, wid);
    expect(warm?.view.state).toBe("running");
    await new Promise((r) => setTimeout(r, 50));
    expect(warm?.connection()).toEqual(conn);
    expect(driver.starts).toHaveLength(1);
    expect(await auditActions(wid)).toEqual(["runtime.start", "runtime.ready"]);
  });

  it("after a Reef restart, adopts runtimes still running and cleans up the rest", async () => {
    const [alive, dead, stuck] = [await workspace(), await workspace(), await workspace()];
    const driver = new FakeDriver();
    const before = manager(driver);
    await before.ensureRunning(SYSTEM, alive);
    await before.ensureRunning(SYSTEM, dead);
    driver.crash({ state: await storedHandle(dead) });
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
