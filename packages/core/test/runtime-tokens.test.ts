import { randomBytes, randomUUID } from "node:crypto";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRuntimeManager } from "../src/runtime/runtime-manager.ts";
import { createRuntimeTokenSealer, resealRuntimeTokens } from "../src/runtime/runtime-tokens.ts";
import { createSealer } from "../src/shared/sealing.ts";
import { FakeDriver } from "./fake-driver.ts";

const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
const SYSTEM = { actor: { kind: "system" as const, name: "test" } };

describe("sealer across a root-key rotation", () => {
  it("opens what a previous key sealed, seals with the current one, and reseals only what is old", () => {
    const before = createSealer(oldKey, "p");
    const during = createSealer({ current: newKey, previous: [oldKey] }, "p");
    const after = createSealer({ current: newKey, previous: [] }, "p");
    const sealedBefore = before.seal("token", "ws-1");
    expect(during.open(sealedBefore, "ws-1")).toBe("token");
    expect(() => after.open(sealedBefore, "ws-1")).toThrow();
    expect(() => during.open(sealedBefore, "ws-2")).toThrow();
    // Another purpose derives another key from the same root.
    expect(() => createSealer({ current: oldKey, previous: [] }, "q").open(sealedBefore, "ws-1")).toThrow();

    const resealed = during.reseal(sealedBefore, "ws-1");
    expect(resealed).toBeDefined();
    expect(after.open(resealed ?? "", "ws-1")).toBe("token");
    expect(during.reseal(resealed ?? "", "ws-1")).toBeUndefined();
    expect(after.open(during.seal("t2", "ws-1"), "ws-1")).toBe("t2");
    expect(() => after.reseal(sealedBefore, "ws-1")).toThrow();
  });
});

describe("gateway tokens across a root-key rotation", () => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await createTestDatabase();
  });
  afterEach(() => t.drop());

  const manager = (driver: FakeDriver, keyring: { current: Buffer; previous: Buffer[] }) =>
    createRuntimeManager({
      db: t.database.db,
      driver,
      sealer: createRuntimeTokenSealer(keyring),
      settingsFor: async () => ({ providers: [], agents: [] }),
      instanceId: `reef-${randomBytes(3).toString("hex")}`,
      idleTimeoutMs: 60_000,
      startTimeoutMs: 5_000,
      limits: { memoryMb: 1024, cpus: 1, pids: 256 },
    });
  async function workspace(): Promise<string> {
    const id = randomUUID();
    await t.owner.query("insert into workspaces (id, name) values ($1, 'w')", [id]);
    return id;
  }

  it("a running gateway stays reachable through the rotation, without a restart", async () => {
    const [w1, w2] = [await workspace(), await workspace()];
    const driver = new FakeDriver();
    const first = manager(driver, { current: oldKey, previous: [] });
    const c1 = await first.ensureRunning(SYSTEM, w1);
    const c2 = await first.ensureRunning(SYSTEM, w2);
    const sealedBefore = (await t.owner.query("select token_sealed from runtimes where workspace_id = $1", [w1]))
      .rows[0].token_sealed;

    // Restarted with the new key and the old one as previous: same gateways, same tokens.
    const during = manager(driver, { current: newKey, previous: [oldKey] });
    expect((await during.ensureRunning(SYSTEM, w1)).token).toBe(c1.token);

    expect(await resealRuntimeTokens(t.database.db, { current: newKey, previous: [oldKey] })).toEqual({
      resealed: 2,
      unreadable: 0,
    });
    expect(await resealRuntimeTokens(t.database.db, { current: newKey, previous: [oldKey] })).toEqual({
      resealed: 0,
      unreadable: 0,
    });
    const sealedAfter = (await t.owner.query("select token_sealed from runtimes where workspace_id = $1", [w1])).rows[0]
      .token_sealed;
    expect(sealedAfter).not.toBe(sealedBefore);

    // The old key gone: both gateways still answer with their tokens, nothing was restarted.
    const after = manager(driver, { current: newKey, previous: [] });
    expect((await after.ensureRunning(SYSTEM, w1)).token).toBe(c1.token);
    expect((await after.ensureRunning(SYSTEM, w2)).token).toBe(c2.token);
    expect(driver.starts).toHaveLength(2);
    expect(driver.stops).toBe(0);
  });

  it("a token no configured key opens restarts that gateway instead of failing every request", async () => {
    const wid = await workspace();
    const driver = new FakeDriver();
    const before = await manager(driver, { current: oldKey, previous: [] }).ensureRunning(SYSTEM, wid);
    expect(await resealRuntimeTokens(t.database.db, { current: newKey, previous: [] })).toEqual({
      resealed: 0,
      unreadable: 1,
    });
    const after = await manager(driver, { current: newKey, previous: [] }).ensureRunning(SYSTEM, wid);
    expect(after.token).not.toBe(before.token);
    expect(driver.starts).toHaveLength(2);
    expect(driver.stops).toBe(1);
    const { rows } = await t.owner.query(
      "select action, details->>'reason' as reason from audit_log where workspace_id = $1 order by id",
      [wid],
    );
    expect(rows).toContainEqual({ action: "runtime.restart", reason: "token unreadable" });
  });
});
