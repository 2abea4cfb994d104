import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "./fake-driver.ts";
import { runtimeTestKit, SYSTEM } from "./runtime-test-kit.ts";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.drop());
const kit = runtimeTestKit(() => t);

describe("the runtime manager's current connection (how approvals reach a gateway)", () => {
  it("is the running gateway's, from any replica, and never starts one", async () => {
    const wid = await kit.workspace();
    const driver = new FakeDriver();
    const replicaA = kit.manager(driver);
    const replicaB = kit.manager(driver);
    expect(await replicaB.current(wid)).toBeUndefined();
    expect(await replicaB.running()).not.toContain(wid);
    expect(driver.starts).toHaveLength(0);

    const conn = await replicaA.ensureRunning(SYSTEM, wid);
    expect(await replicaB.current(wid)).toEqual(conn);
    expect(await replicaB.running()).toContain(wid);

    await replicaA.stop(SYSTEM, wid, "requested");
    expect(await replicaB.current(wid)).toBeUndefined();
    expect(await replicaB.running()).not.toContain(wid);
    expect(driver.starts).toHaveLength(1);
  });
});
