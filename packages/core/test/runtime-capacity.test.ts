import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RuntimeCaps } from "../src/runtime/runtime-capacity.ts";
import type { RuntimeManagerDeps } from "../src/runtime/runtime-manager.ts";
import { FakeDriver } from "./fake-driver.ts";
import { runtimeTestKit, SYSTEM } from "./runtime-test-kit.ts";

// A database per test: capacity counts every runtime row.
let t: TestDatabase;
beforeEach(async () => {
  t = await createTestDatabase();
});
afterEach(() => t.drop());

const kit = runtimeTestKit(() => t);
const { user, workspace } = kit;

function manager(driver: FakeDriver, caps: RuntimeCaps, overrides: Partial<RuntimeManagerDeps> = {}) {
  return kit.manager(driver, { idleTimeoutMs: 60 * 60_000, caps: async () => caps, queuePollMs: 30, ...overrides });
}
type Manager = ReturnType<typeof manager>;

/** Drives a chat-style wake in the background, recording what it shows. */
function chatWake(m: Manager, wid: string, signal?: AbortSignal) {
  const events: Array<{ state: string; position?: number }> = [];
  const gen = m.ensureRunningWithProgress(SYSTEM, wid, signal);
  const result = (async () => {
    for (;;) {
      const next = await gen.next();
      if (next.done) return next.value;
      events.push({ state: next.value.state, ...("position" in next.value ? { position: next.value.position } : {}) });
    }
  })();
  result.catch(() => {});
  return { events, result };
}

async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("runtime capacity", () => {
  it("a full machine puts the next wakes in line with their position, and starts them as room frees", async () => {
    const driver = new FakeDriver();
    const m = manager(driver, { perUser: 0, total: 2 });
    const [a, b, c, d, e] = [
      await workspace(),
      await workspace(),
      await workspace(),
      await workspace(),
      await workspace(),
    ];
    await m.ensureRunning(SYSTEM, a);
    await m.ensureRunning(SYSTEM, b);
    const third = chatWake(m, c);
    await until(() => third.events.length > 0);
    const fourth = chatWake(m, d);
    await until(() => fourth.events.length > 0);
    expect(third.events).toEqual([{ state: "queued", position: 1 }]);
    expect(fourth.events).toEqual([{ state: "queued", position: 2 }]);
    expect((await m.get(c)).state).toBe("queued");
    // Nobody to show a position to (an API call): refused at once, with when to retry.
    await expect(m.ensureRunning(SYSTEM, e)).rejects.toMatchObject({
      code: "CAPACITY_FULL",
      status: 503,
      retryAfter: 30,
      details: { max: 2, used: 2, position: 3 },
    });
    expect((await m.get(e)).state).toBe("stopped");
    expect(driver.starts).toHaveLength(2);

    await m.stop(SYSTEM, a, "requested");
    const conn = await third.result;
    expect(conn.endpoint).toBeInstanceOf(URL);
    expect(third.events).toEqual([{ state: "queued", position: 1 }, { state: "starting" }]);
    await until(() => fourth.events.some((ev) => ev.position === 1));
    expect(driver.starts).toHaveLength(3);
    await m.stop(SYSTEM, b, "requested");
    await fourth.result;
    expect((await m.get(d)).state).toBe("running");
    const { rows } = await t.owner.query(
      "select details from audit_log where workspace_id = $1 and action = 'runtime.queue'",
      [c],
    );
    expect(rows[0].details).toEqual({ position: 1, maxRuntimes: 2 });
  });

  it("a wake that waited its whole turn fails clearly and leaves the line; so does one nobody waits for any more", async () => {
    const driver = new FakeDriver();
    const m = manager(driver, { perUser: 0, total: 1 }, { queueTimeoutMs: 300 });
    const [a, b, c] = [await workspace(), await workspace(), await workspace()];
    await m.ensureRunning(SYSTEM, a);
    const waited = chatWake(m, b);
    await expect(waited.result).rejects.toMatchObject({ code: "CAPACITY_FULL", details: { position: 1 } });
    expect((await m.get(b)).state).toBe("stopped");
    // The client went away while in line: its place is given up long before the wait would end.
    const patient = manager(driver, { perUser: 0, total: 1 }, { queueTimeoutMs: 60_000 });
    const client = new AbortController();
    const left = chatWake(patient, c, client.signal);
    await until(async () => (await m.get(c)).state === "queued");
    client.abort();
    await expect(left.result).rejects.toThrow(/abort/i);
    await until(async () => (await m.get(c)).state === "stopped", 2_000);
    expect(driver.starts).toHaveLength(1);
  });

  it("a person's cap counts the running gateways of the workspaces they own, and refuses at once", async () => {
    const driver = new FakeDriver();
    const m = manager(driver, { perUser: 2, total: 0 });
    const [alice, bob] = [await user(), await user()];
    const [a1, a2, a3] = [await workspace(alice), await workspace(alice), await workspace(alice)];
    const b1 = await workspace(bob);
    await m.ensureRunning(SYSTEM, a1);
    await m.ensureRunning(SYSTEM, a2);
    const asAlice = { actor: { kind: "user" as const, userId: alice, platformRole: "user" as const, sessionId: "s" } };
    await expect(m.ensureRunningWithProgress(asAlice, a3).next()).rejects.toMatchObject({
      code: "RUNTIME_LIMIT_REACHED",
      status: 429,
      message: expect.stringMatching(/^You already have 2 workspaces running.*\(2\)/),
      details: { max: 2, used: 2 },
    });
    // Bob shares nothing of Alice's allowance; a workspace Alice co-owns with him counts for her too.
    await m.ensureRunning(SYSTEM, b1);
    const shared = await workspace(bob);
    await t.owner.query("insert into workspace_members (workspace_id, user_id, role) values ($1, $2, 'owner')", [
      shared,
      alice,
    ]);
    await expect(m.ensureRunning(SYSTEM, shared)).rejects.toMatchObject({ code: "RUNTIME_LIMIT_REACHED" });
    await m.stop(SYSTEM, a1, "requested");
    await m.ensureRunning(SYSTEM, a3);
    expect((await m.get(a3)).state).toBe("running");
  });

  it("two replicas waking at once never run more gateways than the machine cap", async () => {
    const driver = new FakeDriver();
    const caps = { perUser: 0, total: 1 };
    const [m1, m2] = [manager(driver, caps), manager(driver, caps)];
    const [a, b] = [await workspace(), await workspace()];
    // Hold replica 1's claim open after it counted and took the last slot: its
    // audit append waits for this transaction (same audit chain head).
    const holder = await t.owner.connect();
    await holder.query("begin");
    await holder.query("insert into audit_chain_heads (chain, last_hash) values ($1, null)", [a]);
    const waiting = async () =>
      (await t.owner.query("select count(*)::int as n from pg_locks where not granted")).rows[0].n as number;
    const first = m1.ensureRunning(SYSTEM, a);
    first.catch(() => {});
    await until(async () => (await waiting()) >= 1);
    // Replica 2 decides meanwhile: it must not see a free slot that replica 1 has taken.
    let secondDone = false;
    const second = m2.ensureRunning(SYSTEM, b).finally(() => {
      secondDone = true;
    });
    second.catch(() => {});
    await until(async () => secondDone || (await waiting()) >= 2);
    await holder.query("rollback");
    holder.release();
    await first;
    await expect(second).rejects.toMatchObject({ code: "CAPACITY_FULL" });
    expect(driver.starts).toHaveLength(1);
  });

  it("the head of the line stops the least recently used idle gateway to make room", async () => {
    const driver = new FakeDriver();
    const m = manager(driver, { perUser: 0, total: 2 }, { evictIdleAfterMs: 60_000 });
    const [busy, idle, waiting] = [await workspace(), await workspace(), await workspace()];
    await m.ensureRunning(SYSTEM, busy);
    await m.ensureRunning(SYSTEM, idle);
    await t.owner.query("update runtimes set last_activity_at = now() - interval '1 hour' where workspace_id = $1", [
      idle,
    ]);
    await chatWake(m, waiting).result;
    expect((await m.get(idle)).state).toBe("stopped");
    expect((await m.get(busy)).state).toBe("running");
    expect((await m.get(waiting)).state).toBe("running");
    const { rows } = await t.owner.query(
      "select details from audit_log where workspace_id = $1 and action = 'runtime.stop'",
      [idle],
    );
    expect(rows[0].details.reason).toBe("making room for a waiting workspace");
  });
});
