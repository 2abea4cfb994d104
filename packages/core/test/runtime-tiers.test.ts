import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RuntimeManagerDeps } from "../src/runtime/runtime-manager.ts";
import { FakeDriver } from "./fake-driver.ts";
import { runtimeTestKit, SYSTEM } from "./runtime-test-kit.ts";

// The idle tiers: paused after `pauseAfterMs` (frozen by the driver, resumed on the next use), stopped after
// `idleTimeoutMs`. The real drivers' pause and resume are tested against the driver contract in packages/runtime.
let t: TestDatabase;
beforeEach(async () => {
  t = await createTestDatabase();
});
afterEach(() => t.drop());

const kit = runtimeTestKit(() => t);
const { workspace, auditActions, agent } = kit;
const PAUSE_MS = 10 * 60_000;
const STOP_MS = 4 * 3_600_000;

async function running(overrides: Partial<RuntimeManagerDeps> = {}) {
  const wid = await workspace();
  const driver = new FakeDriver();
  const m = kit.manager(driver, { pauseAfterMs: PAUSE_MS, idleTimeoutMs: STOP_MS, ...overrides });
  const conn = await m.ensureRunning(SYSTEM, wid);
  return { wid, driver, m, conn };
}

/** Makes the workspace look unused for `minutes`. */
const idleFor = (wid: string, minutes: number) =>
  t.owner.query(
    `update runtimes set last_activity_at = now() - make_interval(mins => $2::int) where workspace_id = $1`,
    [wid, minutes],
  );
const storedHandle = async (wid: string) =>
  (await t.owner.query("select handle from runtimes where workspace_id = $1", [wid])).rows[0].handle;

describe("idle tiers", () => {
  it("pauses a gateway idle past the pause timeout; the next use resumes the same gateway without a start", async () => {
    const { wid, driver, m, conn } = await running();
    await idleFor(wid, 9);
    expect(await m.pauseIdle()).toEqual([]);
    await idleFor(wid, 11);
    expect(await m.pauseIdle()).toEqual([wid]);
    expect(await m.pauseIdle()).toEqual([]); // already paused: nothing twice
    expect(driver.isPaused({ state: await storedHandle(wid) })).toBe(true);
    const view = await m.get(wid);
    expect(view.state).toBe("running");
    expect(view.pausedAt).not.toBeNull();
    // Within the stop timeout: the stop tier leaves it paused.
    expect(await m.reapIdle()).toEqual([]);

    const again = await m.ensureRunning(SYSTEM, wid);
    expect(again.endpoint.toString()).toBe(conn.endpoint.toString());
    expect(driver.isPaused({ state: await storedHandle(wid) })).toBe(false);
    expect(driver.starts).toHaveLength(1);
    expect(driver.resumes).toBe(1);
    expect((await m.get(wid)).pausedAt).toBeNull();
    expect(await auditActions(wid)).toEqual(["runtime.start", "runtime.ready", "runtime.pause", "runtime.resume"]);
  });

  it("stops a gateway (paused or not) after the long timeout, and the next use starts a new one", async () => {
    const { wid, driver, m } = await running();
    await idleFor(wid, 11);
    await m.pauseIdle();
    await idleFor(wid, 4 * 60 + 1);
    expect(await m.reapIdle()).toEqual([wid]);
    const view = await m.get(wid);
    expect(view.state).toBe("stopped");
    expect(view.pausedAt).toBeNull();
    expect(driver.stops).toBe(1);
    await m.ensureRunning(SYSTEM, wid);
    expect(driver.starts).toHaveLength(2);
    expect(driver.resumes).toBe(0);
  });

  it("never pauses with the pause timeout at 0, nor on a driver that cannot pause", async () => {
    const off = await running({ pauseAfterMs: 0 });
    await idleFor(off.wid, 60);
    expect(await off.m.pauseIdle()).toEqual([]);
    const cannot = new FakeDriver();
    Object.assign(cannot, { pause: undefined, resume: undefined });
    const wid = await workspace();
    const m = kit.manager(cannot, { pauseAfterMs: 1 });
    await m.ensureRunning(SYSTEM, wid);
    await idleFor(wid, 60);
    expect(await m.pauseIdle()).toEqual([]);
    expect((await m.get(wid)).pausedAt).toBeNull();
  });

  it("leaves a workspace alone while an answer streams or a scheduled run runs, however long since the last message", async () => {
    const { wid, driver, m } = await running();
    const { agentId } = await agent(wid);
    const session = crypto.randomUUID();
    await t.owner.query("insert into chat_sessions (id, workspace_id, agent_id, user_id) values ($1, $2, $3, $4)", [
      session,
      wid,
      agentId,
      await kit.user(),
    ]);
    const { rows } = await t.owner.query(
      "insert into chat_messages (workspace_id, session_id, role, content, status) values ($1, $2, 'assistant', '', 'streaming') returning id",
      [wid, session],
    );
    await idleFor(wid, 5 * 60);
    expect(await m.pauseIdle()).toEqual([]);
    expect(await m.reapIdle()).toEqual([]);
    // An answer whose heartbeat stopped (its Reef died) does not hold the gateway up.
    await t.owner.query("update chat_messages set heartbeat_at = now() - interval '5 minutes' where id = $1", [
      rows[0].id,
    ]);
    const schedule = crypto.randomUUID();
    await t.owner.query(
      "insert into schedules (id, workspace_id, agent_id, name, kind, prompt) values ($1, $2, $3, 'nightly', 'cron', 'go')",
      [schedule, wid, agentId],
    );
    const run = await t.owner.query(
      "insert into schedule_runs (workspace_id, schedule_id, trigger, scheduled_for, status) values ($1, $2, 'schedule', now(), 'running') returning id",
      [wid, schedule],
    );
    expect(await m.pauseIdle()).toEqual([]);
    await t.owner.query("update schedule_runs set status = 'succeeded' where id = $1", [run.rows[0].id]);
    expect(await m.pauseIdle()).toEqual([wid]);
    expect(driver.pauses).toBe(1);
  });

  it("moves a gateway paused long enough out to swap, once; the next use resumes it and it counts as active again", async () => {
    const { wid, driver, m } = await running({ swapOutAfterMs: 30 * 60_000 });
    await idleFor(wid, 11);
    await m.pauseIdle();
    expect(await m.swapOutIdle()).toEqual([]); // paused only now
    await t.owner.query("update runtimes set paused_at = now() - interval '31 minutes' where workspace_id = $1", [wid]);
    expect(await m.swapOutIdle()).toEqual([wid]);
    expect(await m.swapOutIdle()).toEqual([]);
    expect((await m.get(wid)).swappedOutAt).not.toBeNull();
    const entries = await kit.audit(wid);
    expect(entries.find((e) => e.action === "runtime.swap_out")?.details).toEqual({ beforeMb: 954, afterMb: 238 });
    await m.ensureRunning(SYSTEM, wid);
    const view = await m.get(wid);
    expect([view.pausedAt, view.swappedOutAt]).toEqual([null, null]);
    expect(entries.length + 1).toBe((await kit.audit(wid)).length);
    expect((await kit.audit(wid)).at(-1)).toMatchObject({ action: "runtime.resume", details: { swappedOut: true } });
    expect(driver.starts).toHaveLength(1);
  });

  it("where the host has no swap, nothing is marked swapped out and the gateway stays paused", async () => {
    const { wid, driver, m } = await running({ swapOutAfterMs: 0 });
    driver.swap = undefined;
    await idleFor(wid, 11);
    await m.pauseIdle();
    await t.owner.query("update runtimes set paused_at = now() - interval '1 minute' where workspace_id = $1", [wid]);
    expect(await m.swapOutIdle()).toEqual([]);
    const view = await m.get(wid);
    expect(view.swappedOutAt).toBeNull();
    expect(view.pausedAt).not.toBeNull();
    expect(await auditActions(wid)).not.toContain("runtime.swap_out");
  });

  it("a decision on an approval reaching a paused gateway thaws it first (never a frozen endpoint)", async () => {
    const { wid, driver, m, conn } = await running();
    await idleFor(wid, 11);
    await m.pauseIdle();
    expect((await m.current(wid))?.endpoint.toString()).toBe(conn.endpoint.toString());
    expect(driver.isPaused({ state: await storedHandle(wid) })).toBe(false);
    expect((await m.get(wid)).pausedAt).toBeNull();
    // Dead while paused: nothing to send the decision to.
    await idleFor(wid, 11);
    await m.pauseIdle();
    driver.crash({ state: await storedHandle(wid) });
    expect(await m.current(wid)).toBeUndefined();
  });

  it("a wake on one replica resumes a gateway another replica paused", async () => {
    const { wid, driver, m, conn } = await running();
    await idleFor(wid, 11);
    await m.pauseIdle();
    const other = kit.manager(driver, { pauseAfterMs: PAUSE_MS, idleTimeoutMs: STOP_MS });
    // Concurrent first messages on both: one resume, no start.
    const [a, b] = await Promise.all([other.ensureRunning(SYSTEM, wid), m.ensureRunning(SYSTEM, wid)]);
    expect([a.endpoint.toString(), b.endpoint.toString()]).toEqual([
      conn.endpoint.toString(),
      conn.endpoint.toString(),
    ]);
    expect(driver.resumes).toBe(1);
    expect(driver.starts).toHaveLength(1);
  });

  it("a paused gateway killed behind Reef's back is handled like a crash: by the health sweep, or by the next use", async () => {
    const { wid, driver, m } = await running();
    await idleFor(wid, 11);
    await m.pauseIdle();
    driver.crash({ state: await storedHandle(wid) });
    await m.checkHealth();
    // Restarted once, as any crash is, and no longer paused.
    expect(driver.starts).toHaveLength(2);
    expect((await m.get(wid)).pausedAt).toBeNull();
    expect(await auditActions(wid)).toContain("runtime.crash");

    // Killed while paused, and a message arrives before any sweep: a fresh gateway answers it.
    await idleFor(wid, 11);
    await m.pauseIdle();
    driver.crash({ state: await storedHandle(wid) });
    const conn = await m.ensureRunning(SYSTEM, wid);
    expect(driver.starts).toHaveLength(3);
    expect(conn.endpoint.port).toBe("20003");
    const actions = await auditActions(wid);
    expect(actions.filter((a) => a === "runtime.crash")).toHaveLength(2);
    expect(actions.at(-1)).toBe("runtime.ready");
  });

  it("a restarted Reef adopts a paused gateway, and the next use resumes it", async () => {
    const { wid, driver, m } = await running();
    await idleFor(wid, 11);
    await m.pauseIdle();
    const after = kit.manager(driver, { pauseAfterMs: PAUSE_MS, idleTimeoutMs: STOP_MS });
    expect(await after.reconcile()).toEqual({ adopted: [wid], cleaned: [] });
    await after.ensureRunning(SYSTEM, wid);
    expect(driver.starts).toHaveLength(1);
    expect(driver.resumes).toBe(1);
  });
});
