import { GatewayIntegrityError, type JsonObject, type RuntimeHandle, type RuntimeSpec } from "@reef/runtime";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeDriver } from "./fake-driver.ts";
import { runtimeTestKit, SYSTEM } from "./runtime-test-kit.ts";

/**
 * A driver whose runtimes' endpoints another tenant can take over (as a
 * loopback port can be, once the gateway that held it is gone).
 */
class ContestedDriver extends FakeDriver {
  readonly hijacked = new Set<string>();
  hijackNextStart = false;
  verified = 0;

  override async start(spec: RuntimeSpec, signal: AbortSignal): Promise<{ endpoint: URL; state: JsonObject }> {
    if (this.hijackNextStart) {
      this.hijackNextStart = false;
      this.starts.push(spec);
      throw new GatewayIntegrityError("another process (uid 65534) listens on the gateway's port 20001", {
        port: 20001,
        uid: 65534,
      });
    }
    return super.start(spec, signal);
  }

  async verify(handle: RuntimeHandle): Promise<void> {
    this.verified++;
    if (this.hijacked.has(String(handle.state.id))) {
      throw new GatewayIntegrityError("another process listens on the gateway's port", { port: 1, uid: 65534 });
    }
  }
}

let t: TestDatabase;
beforeEach(async () => {
  t = await createTestDatabase();
});
afterEach(() => t.drop());

const { manager, workspace, audit, auditActions } = runtimeTestKit(() => t);

describe("runtime manager: an endpoint taken over by another process", () => {
  it("is checked before every use: the token never goes there, and a fresh gateway with a fresh token answers", async () => {
    const wid = await workspace();
    const driver = new ContestedDriver();
    const m = manager(driver);
    const first = await m.ensureRunning(SYSTEM, wid);
    driver.hijacked.add("rt-1");
    const second = await m.ensureRunning(SYSTEM, wid);
    expect(driver.verified).toBe(1);
    expect(second.token).not.toBe(first.token);
    expect(second.endpoint.toString()).not.toBe(first.endpoint.toString());
    expect(driver.live.get("rt-1")?.alive).toBe(false);
    expect(await auditActions(wid)).toEqual([
      "runtime.start",
      "runtime.ready",
      "runtime.integrity_failure",
      "runtime.start",
      "runtime.ready",
    ]);
  });

  it("a start that finds a stranger on its port fails, is audited, and keeps no token", async () => {
    const wid = await workspace();
    const driver = new ContestedDriver();
    driver.hijackNextStart = true;
    const m = manager(driver);
    await expect(m.ensureRunning(SYSTEM, wid)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    const { rows } = await t.owner.query("select state, token_sealed from runtimes where workspace_id = $1", [wid]);
    expect(rows[0]).toEqual({ state: "failed", token_sealed: null });
    const entries = await audit(wid);
    expect(entries.at(-1)).toMatchObject({ action: "runtime.integrity_failure", details: { port: 20001, uid: 65534 } });
    // The next use starts afresh.
    await expect(m.ensureRunning(SYSTEM, wid)).resolves.toBeDefined();
  });

  it("the health sweep and a restarted Reef find it too, and neither adopts it", async () => {
    const wid = await workspace();
    const driver = new ContestedDriver();
    const m = manager(driver);
    await m.ensureRunning(SYSTEM, wid);
    driver.hijacked.add("rt-1");
    await m.checkHealth();
    expect((await m.get(wid)).state).toBe("failed");
    expect(await auditActions(wid)).toContain("runtime.integrity_failure");

    const wid2 = await workspace();
    await m.ensureRunning(SYSTEM, wid2);
    driver.hijacked.add("rt-2");
    const after = manager(driver);
    const { adopted } = await after.reconcile();
    expect(adopted).not.toContain(wid2);
    expect((await after.get(wid2)).state).toBe("stopped");
  });
});
