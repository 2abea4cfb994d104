import { spawnSync } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gatewayFetch, ProcessDriver } from "@reef/runtime";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRuntimeManager } from "../src/runtime/runtime-manager.ts";
import { createSealer } from "../src/shared/sealing.ts";

// The manager driving real OpenClaw gateways through the process driver.
let t: TestDatabase;
let root: string;
const SYSTEM = { actor: { kind: "system" as const, name: "test" } };

beforeAll(async () => {
  t = await createTestDatabase();
  root = await mkdtemp(join(tmpdir(), "reef-manager-rt-"));
  spawnSync("chmod", ["755", root]);
});

function manager(driver: ProcessDriver, instanceId: string) {
  return createRuntimeManager({
    db: t.database.db,
    driver,
    sealer: createSealer(Buffer.alloc(32, 9), "runtime-token"),
    settingsFor: async () => ({ providers: [], agents: [] }),
    instanceId,
    idleTimeoutMs: 60_000,
    startTimeoutMs: 90_000,
    limits: { memoryMb: 2048, cpus: 1, pids: 1024 },
    restartBackoffMs: 100,
  });
}

async function pidOf(wid: string): Promise<number> {
  const { rows } = await t.owner.query("select handle from runtimes where workspace_id = $1", [wid]);
  return Number(rows[0].handle.pid);
}

const alive = (pid: number) => spawnSync("kill", ["-0", String(pid)]).status === 0;

describe("runtime manager with real gateways", () => {
  const wid = crypto.randomUUID();
  const driver = new ProcessDriver({ rootDir: join(tmpdir(), `reef-mgr-${process.pid}`) });
  let m: ReturnType<typeof manager>;
  beforeAll(() => {
    m = manager(driver, "first");
  });

  afterAll(async () => {
    await m.stopAll("test over");
    await t.drop();
  }, 60_000);

  it("wakes a stopped workspace on first use and serves it", async () => {
    await t.owner.query("insert into workspaces (id, name) values ($1, 'gw')", [wid]);
    const conn = await m.ensureRunning(SYSTEM, wid);
    const ready = await gatewayFetch(conn.endpoint, "/readyz");
    expect(ready.status).toBe(200);
    const models = await gatewayFetch(conn.endpoint, "/v1/models", {
      headers: { authorization: `Bearer ${conn.token}` },
    });
    expect(models.status).toBe(200);
    expect((await m.get(wid)).state).toBe("running");
  }, 120_000);

  it("restarts a gateway that was killed, once", async () => {
    const before = await pidOf(wid);
    process.kill(-before, "SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    await m.checkHealth();
    const after = await pidOf(wid);
    expect(after).not.toBe(before);
    expect(alive(after)).toBe(true);
    const view = await m.get(wid);
    expect(view).toMatchObject({ state: "running", restarts: 1 });
    // The crash is in the audit trail (checked below); a healthy restart clears the failure.
    expect(view.failureReason).toBeNull();
  }, 120_000);

  it("after a Reef restart the new manager adopts the running gateway instead of starting another", async () => {
    const pid = await pidOf(wid);
    const restarted = manager(new ProcessDriver({ rootDir: join(tmpdir(), `reef-mgr-${process.pid}`) }), "second");
    const { adopted } = await restarted.reconcile();
    expect(adopted).toEqual([wid]);
    const conn = await restarted.ensureRunning(SYSTEM, wid);
    expect((await gatewayFetch(conn.endpoint, "/readyz")).status).toBe(200);
    expect(await pidOf(wid)).toBe(pid);
  }, 60_000);

  it("stops a gateway left idle, and the process is gone", async () => {
    const pid = await pidOf(wid);
    await t.owner.query("update runtimes set last_activity_at = now() - interval '1 hour' where workspace_id = $1", [
      wid,
    ]);
    expect(await m.reapIdle()).toEqual([wid]);
    expect((await m.get(wid)).state).toBe("stopped");
    expect(alive(pid)).toBe(false);
    const { rows } = await t.owner.query("select action from audit_log where workspace_id = $1 order by id", [wid]);
    expect(rows.map((r) => r.action)).toEqual([
      "runtime.start",
      "runtime.ready",
      "runtime.crash",
      "runtime.start",
      "runtime.ready",
      "runtime.stop",
    ]);
  }, 60_000);
});
