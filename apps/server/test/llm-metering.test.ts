import { servicesOf } from "@reef/server";
import { buildTestApp, type LlmStandIn, signUp, startLlmStandIn, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The LLM proxy as Reef's main server serves it to gateways on another network
// (containers, pods), and what metering feeds: usage, the calls list, budgets
// set by operators, and the chat quota. No gateway: the calls a gateway would
// make are made here with the credentials its start minted.

const KEY = "sk-metering-canary-0123456789";

let t: TestApp;
let standIn: LlmStandIn;
let base: string;
let operator: Awaited<ReturnType<typeof signUp>>;

beforeAll(async () => {
  standIn = await startLlmStandIn({ apiKey: KEY, models: ["alpha"] });
  t = await buildTestApp({ config: { runtimeCallbackUrl: "http://reef.test:7420" } });
  operator = await signUp(t.app, { email: "operator@example.test" });
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  const address = t.app.server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});
afterAll(async () => {
  await t.close();
  await standIn.close();
});

/** A workspace with a provider on the stand-in and an agent, and the credentials a start of its runtime would mint. */
async function workspaceWithRuntime() {
  const owner = await signUp(t.app);
  const wid = owner.workspaceId;
  const provider = (
    await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "Stand-in",
      kind: "openai-compatible",
      baseUrl: standIn.baseUrl,
      apiKey: KEY,
      models: ["alpha"],
    })
  ).json();
  const agent = (
    await owner.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "A", providerId: provider.id, model: "alpha" })
  ).json();
  const services = servicesOf(t.app);
  const settings = await services.agents.gatewaySettings(wid);
  const outbound = await services.outbound.forStart(wid, settings);
  return { owner, wid, provider, agent, settings, outbound };
}

function complete(url: string, credential: string, text: string, stream = false) {
  return fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "alpha", stream, messages: [{ role: "user", content: text }] }),
  });
}

describe("LLM calls through Reef's main server", () => {
  it("gives gateways settings without keys, and an outbound URL on the main server", async () => {
    const { settings, outbound, provider } = await workspaceWithRuntime();
    expect(JSON.stringify(settings)).not.toContain(KEY);
    expect(settings.providers[0]).not.toHaveProperty("apiKey");
    expect(outbound.url).toBe("http://reef.test:7420/internal");
    expect(Object.keys(outbound.credentials)).toEqual([provider.id]);
  });

  it("forwards calls by credential alone, and usage, the calls list and the daily view read what was metered", async () => {
    const { owner, wid, provider, outbound } = await workspaceWithRuntime();
    const credential = outbound.credentials[provider.id] as string;
    const url = `${base}/internal/llm/${provider.id}/chat/completions`;
    const before = standIn.requests.length;
    const streamed = await complete(url, credential, "hello there", true);
    expect(streamed.status).toBe(200);
    const sse = await streamed.text();
    expect(sse).toContain('"content":"hello "');
    expect(sse).toContain("data: [DONE]");
    // A call no person typed (compaction, memory): metered all the same.
    const background = await complete(url, credential, "summarise the conversation");
    expect(background.status).toBe(200);
    const models = await fetch(`${base}/internal/llm/${provider.id}/models`, {
      headers: { authorization: `Bearer ${credential}` },
    });
    expect(models.status).toBe(200);
    expect(standIn.requests.length - before).toBe(2);
    await servicesOf(t.app).outbound.flush();

    const calls = (await owner.client.get(`/api/v1/workspaces/${wid}/usage/calls?limit=2`)).json();
    expect(calls.items.map((c: { endpoint: string }) => c.endpoint)).toEqual(["models", "chat.completions"]);
    expect(calls.items[1]).toMatchObject({ providerName: "Stand-in", model: "alpha", outcome: "ok", httpStatus: 200 });
    const older = (
      await owner.client.get(`/api/v1/workspaces/${wid}/usage/calls?limit=2&cursor=${calls.nextCursor}`)
    ).json();
    expect(older.items).toHaveLength(1);
    expect(older.nextCursor).toBeNull();
    const received = standIn.requests.slice(before);
    const prompt = received.reduce((n, r) => n + (JSON.stringify(r.body.messages).length >> 2), 0);
    const usage = (await owner.client.get(`/api/v1/workspaces/${wid}/usage`)).json();
    expect(usage).toMatchObject({ messages: 0, promptTokens: prompt, completionTokens: 11 });
    const today = (await owner.client.get(`/api/v1/workspaces/${wid}/usage/daily?days=3`)).json().items.at(-1);
    expect(today).toMatchObject({ calls: 3, messages: 0, promptTokens: prompt, completionTokens: 11 });
    // Nothing the gateway or the workspace reads carries the key.
    expect(JSON.stringify([calls, usage, today])).not.toContain(KEY);
  });

  it("refuses an unknown credential, and a credential used for another provider", async () => {
    const a = await workspaceWithRuntime();
    const b = await workspaceWithRuntime();
    const before = standIn.requests.length;
    const unknown = await complete(`${base}/internal/llm/${a.provider.id}/chat/completions`, "reef-llm-nope", "x");
    expect(unknown.status).toBe(401);
    const crossed = await complete(
      `${base}/internal/llm/${a.provider.id}/chat/completions`,
      b.outbound.credentials[b.provider.id] as string,
      "x",
    );
    expect(crossed.status).toBe(401);
    expect(standIn.requests.length).toBe(before);
    const trail = (
      await b.owner.client.get(`/api/v1/workspaces/${b.wid}/audit?action=llm_proxy.credential_refused`)
    ).json();
    expect(trail.items).toHaveLength(1);
    expect(trail.items[0].details).toMatchObject({ reason: "foreign", providerId: a.provider.id });
    expect(JSON.stringify(trail)).not.toContain(b.outbound.credentials[b.provider.id]);
  });

  it("lets operators set a workspace's token budget; over it, the proxy answers 429 and the next message QUOTA_EXCEEDED", async () => {
    const { owner, wid, provider, agent, outbound } = await workspaceWithRuntime();
    const credential = outbound.credentials[provider.id] as string;
    const url = `${base}/internal/llm/${provider.id}/chat/completions`;
    // Only platform operators set budgets.
    const denied = await owner.client.patch(`/api/v1/admin/workspaces/${wid}`, { monthlyTokenBudget: 10 });
    expect(denied.statusCode).toBe(403);
    const set = await operator.client.patch(`/api/v1/admin/workspaces/${wid}`, { monthlyTokenBudget: 10 });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toEqual({ id: wid, monthlyTokenBudget: 10 });
    const listed = (await operator.client.get("/api/v1/admin/workspaces?limit=200")).json().items;
    expect(listed.find((w: { id: string }) => w.id === wid)).toMatchObject({ monthlyTokenBudget: 10 });
    const audited = (
      await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=workspace.token_budget_set`)
    ).json();
    expect(audited.items[0].details).toEqual({ from: null, to: 10 });
    expect((await owner.client.get(`/api/v1/workspaces/${wid}/usage`)).json().limits.tokens).toBe(10);

    expect((await complete(url, credential, "use up the budget with this question")).status).toBe(200);
    await servicesOf(t.app).outbound.flush();
    const over = await complete(url, credential, "and one more", true);
    expect(over.status).toBe(429);
    const body = await over.json();
    expect(body.error.message).toMatch(/monthly token budget is used up/);
    const session = (await owner.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id })).json();
    const next = await owner.client.post(`/api/v1/workspaces/${wid}/sessions/${session.id}/messages`, { text: "hi" });
    expect(next.statusCode).toBe(429);
    expect(next.json()).toMatchObject({ code: "QUOTA_EXCEEDED", details: { limit: "tokens", max: 10 } });
    expect(next.json().message).toMatch(/monthly token budget/);

    // Back to the platform default (unlimited here): calls go through again.
    await operator.client.patch(`/api/v1/admin/workspaces/${wid}`, { monthlyTokenBudget: null });
    expect((await complete(url, credential, "thanks")).status).toBe(200);
    await servicesOf(t.app).outbound.flush();
    const outcomes = (await owner.client.get(`/api/v1/workspaces/${wid}/usage/calls`))
      .json()
      .items.map((c: { outcome: string }) => c.outcome);
    expect(outcomes).toEqual(["ok", "budget", "ok"]);
  });
});
