/**
 * Operator-set resource caps over HTTP: workspaces per person, running gateways
 * per person and on the whole machine. Gateways that hold the room are rows the
 * test writes (no real gateway is started here: the wake is refused before any
 * start); the queue and its positions are tested in packages/core with a fake driver.
 */
import {
  type ApiClient,
  buildTestApp,
  type LlmStandIn,
  readEvents,
  signUp,
  startLlmStandIn,
  type TestApp,
} from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
let operator: Awaited<ReturnType<typeof signUp>>;
let llm: LlmStandIn;
let base = "";
beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: "sk-test-0123456789abcdef0123",
    models: ["stand-in-model"],
    reply: (text) => `Re: ${text}`,
  });
  t = await buildTestApp({ config: { maxWorkspacesPerUser: 3, maxRuntimesPerUser: 1, maxRuntimes: 2 } });
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  const address = t.app.server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  operator = await signUp(t.app);
});
afterAll(async () => {
  await t.close();
  await llm.close();
});

/** Browser-like headers (session cookie and CSRF token) for a streamed request to the real port. */
function headersOf(client: ApiClient): Record<string, string> {
  return {
    "content-type": "application/json",
    cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
    "x-csrf-token": client.cookies.get("reef_csrf") ?? "",
  };
}

/** Makes a workspace's runtime look like a running gateway (it holds a slot). */
async function holdSlot(wid: string) {
  await t.db.owner.query(
    "insert into runtimes (workspace_id, driver, state, started_at) values ($1, 'process', 'running', now()) on conflict (workspace_id) do update set state = 'running'",
    [wid],
  );
}
async function freeSlots() {
  await t.db.owner.query("update runtimes set state = 'stopped' where state = 'running'");
}

describe("resource caps", () => {
  it("a person at the workspace cap is refused with LIMIT_REACHED, also when creating many at once", async () => {
    const alice = await signUp(t.app);
    for (const name of ["Two", "Three"])
      expect((await alice.client.post("/api/v1/workspaces", { name })).statusCode).toBe(201);
    const refused = await alice.client.post("/api/v1/workspaces", { name: "Four" });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({
      code: "LIMIT_REACHED",
      message: expect.stringMatching(/already own 3 workspaces.*\(3\)/),
      details: { limit: "workspacesPerUser", max: 3, used: 3 },
    });
    // Concurrent requests (as a script would send them) cannot slip past the count.
    const bob = await signUp(t.app);
    const burst = await Promise.all(
      Array.from({ length: 8 }, (_, i) => bob.client.post("/api/v1/workspaces", { name: `Burst ${i}` })),
    );
    expect(burst.filter((r) => r.statusCode === 201)).toHaveLength(2);
    expect(burst.filter((r) => r.statusCode === 409)).toHaveLength(6);
    const { rows } = await t.db.owner.query(
      "select count(*)::int as n from workspace_members where user_id = $1 and role = 'owner'",
      [bob.user.id],
    );
    expect(rows[0].n).toBe(3);
    // Deleting one makes room again.
    expect(
      (await alice.client.delete(`/api/v1/workspaces/${alice.workspaceId}`, { confirmName: "x" })).statusCode,
    ).toBe(400);
    const name = (await alice.client.get(`/api/v1/workspaces/${alice.workspaceId}`)).json().name;
    expect(
      (await alice.client.delete(`/api/v1/workspaces/${alice.workspaceId}`, { confirmName: name })).statusCode,
    ).toBe(204);
    expect((await alice.client.post("/api/v1/workspaces", { name: "Four" })).statusCode).toBe(201);
  });

  it("operators change the caps in the platform settings; others cannot", async () => {
    const before = (await operator.client.get("/api/v1/admin/settings")).json();
    expect(before.caps).toEqual({
      maxWorkspacesPerUser: { value: 3, source: "default" },
      maxRuntimesPerUser: { value: 1, source: "default" },
      maxRuntimes: { value: 2, source: "default" },
    });
    const carol = await signUp(t.app);
    expect((await carol.client.patch("/api/v1/admin/settings", { maxWorkspacesPerUser: 0 })).statusCode).toBe(403);
    const raised = await operator.client.patch("/api/v1/admin/settings", { maxWorkspacesPerUser: 4 });
    expect(raised.statusCode, raised.body).toBe(200);
    expect(raised.json().caps.maxWorkspacesPerUser).toEqual({ value: 4, source: "settings" });
    for (const name of ["a", "b", "c"])
      expect((await carol.client.post("/api/v1/workspaces", { name })).statusCode).toBe(201);
    expect((await carol.client.post("/api/v1/workspaces", { name: "d" })).json().code).toBe("LIMIT_REACHED");
    const bad = await operator.client.patch("/api/v1/admin/settings", { maxRuntimes: -1 });
    expect(bad.statusCode).toBe(400);
    const reset = await operator.client.patch("/api/v1/admin/settings", { maxWorkspacesPerUser: null });
    expect(reset.json().caps.maxWorkspacesPerUser).toEqual({ value: 3, source: "default" });
  });

  it("a wake over a person's gateway cap answers 429, over the machine's 503, both with Retry-After", async () => {
    const dave = await signUp(t.app);
    const second = (await dave.client.post("/api/v1/workspaces", { name: "Second" })).json().id as string;
    await holdSlot(second);
    const mine = await dave.client.post(`/api/v1/workspaces/${dave.workspaceId}/runtime/start`);
    expect(mine.statusCode).toBe(429);
    expect(mine.headers["retry-after"]).toBe("60");
    expect(mine.json()).toMatchObject({
      code: "RUNTIME_LIMIT_REACHED",
      message: expect.stringMatching(/^You already have 1 workspaces running/),
      details: { limit: "runtimesPerUser", max: 1, used: 1 },
    });
    // Another person fills the machine (2): a third person's wake finds no room.
    const erin = await signUp(t.app);
    await holdSlot(erin.workspaceId);
    const frank = await signUp(t.app);
    const full = await frank.client.post(`/api/v1/workspaces/${frank.workspaceId}/runtime/start`);
    expect(full.statusCode).toBe(503);
    expect(full.headers["retry-after"]).toBe("30");
    expect(full.json()).toMatchObject({
      code: "CAPACITY_FULL",
      message: expect.stringMatching(/as many workspaces as this server allows \(2\)/),
      details: { limit: "runtimes", max: 2, used: 2, position: 1 },
    });
    expect((await frank.client.get(`/api/v1/workspaces/${frank.workspaceId}/runtime`)).json().state).toBe("stopped");

    // In a chat, the same wake waits in line and the stream says where. Leaving the page keeps the place (the answer
    // outlives the page); Stop gives it up.
    const wid = frank.workspaceId;
    const provider = await frank.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "Stand-in",
      kind: "openai-compatible",
      baseUrl: llm.baseUrl,
      apiKey: "sk-test-0123456789abcdef0123",
    });
    expect(provider.statusCode, provider.body).toBe(201);
    const agent = await frank.client.post(`/api/v1/workspaces/${wid}/agents`, {
      name: "Ada",
      providerId: provider.json().id,
      model: "stand-in-model",
    });
    expect(agent.statusCode, agent.body).toBe(201);
    const sid = (await frank.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.json().id })).json().id;
    const res = await fetch(`${base}/api/v1/workspaces/${wid}/sessions/${sid}/messages`, {
      method: "POST",
      headers: headersOf(frank.client),
      body: JSON.stringify({ text: "hello" }),
    });
    expect(res.status).toBe(200);
    const events = await readEvents(res, { stopWhen: (ev) => ev.event === "runtime" && ev.data.state === "queued" });
    expect(events.at(-1)).toMatchObject({ event: "runtime", data: { state: "queued", position: 1 } });
    const runtime = async () => (await frank.client.get(`/api/v1/workspaces/${wid}/runtime`)).json().state;
    await new Promise((r) => setTimeout(r, 300));
    expect(await runtime()).toBe("queued");
    const stop = await frank.client.post(`/api/v1/workspaces/${wid}/sessions/${sid}/abort`);
    expect(stop.json()).toEqual({ aborted: true });
    for (let i = 0; i < 100 && (await runtime()) !== "stopped"; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await runtime()).toBe("stopped");
    await freeSlots();
  });
});
