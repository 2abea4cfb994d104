import { createServer } from "node:net";
import { buildTestApp, type LlmStandIn, signUp, startLlmStandIn, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === "object" && address ? address.port : 0;
}

const KEY = "sk-test-providers-0123456789abcd";
let t: TestApp;
let llm: LlmStandIn;
let owner: Awaited<ReturnType<typeof signUp>>;
let member: Awaited<ReturnType<typeof signUp>>;
let viewer: Awaited<ReturnType<typeof signUp>>;
let wid: string;

async function join(role: string) {
  const p = await signUp(t.app);
  const { token } = (await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: p.email, role })).json();
  expect((await p.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
  return p;
}

beforeAll(async () => {
  llm = await startLlmStandIn({ apiKey: KEY, models: ["alpha", "beta"] });
  t = await buildTestApp();
  owner = await signUp(t.app);
  wid = owner.workspaceId;
  member = await join("member");
  viewer = await join("viewer");
});
afterAll(async () => {
  await t.close();
  await llm.close();
});

const stand = () => ({ name: "Stand-in", kind: "openai-compatible", baseUrl: llm.baseUrl, apiKey: KEY });

describe("providers", () => {
  let providerId: string;

  it("adds a provider, fetches its models, and never returns the key", async () => {
    const res = await owner.client.post(`/api/v1/workspaces/${wid}/providers`, stand());
    expect(res.statusCode, res.body).toBe(201);
    const p = res.json();
    providerId = p.id;
    expect(p).toMatchObject({
      kind: "openai-compatible",
      models: ["alpha", "beta"],
      personal: false,
      apiKey: "••••abcd",
    });
    expect(res.body).not.toContain(KEY);
    const list = await viewer.client.get(`/api/v1/workspaces/${wid}/providers?limit=1`);
    expect(list.json().items.map((i: { id: string }) => i.id)).toEqual([providerId]);
    expect(list.body).not.toContain(KEY);
    const audit = await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=provider.create`);
    expect(audit.json().items).toHaveLength(1);
    expect(audit.body).not.toContain(KEY);
  });

  it("refuses incomplete providers with the field at fault", async () => {
    const noKey = await owner.client.post(`/api/v1/workspaces/${wid}/providers`, { name: "O", kind: "openai" });
    expect(noKey.statusCode).toBe(400);
    expect(noKey.json()).toMatchObject({ code: "VALIDATION_FAILED", details: { field: "apiKey" } });
    const noUrl = await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "C",
      kind: "openai-compatible",
    });
    expect(noUrl.json()).toMatchObject({ code: "VALIDATION_FAILED", details: { field: "baseUrl" } });
    const badUrl = await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      ...stand(),
      baseUrl: "file:///etc",
    });
    expect(badUrl.statusCode).toBe(400);
    const dup = await owner.client.post(`/api/v1/workspaces/${wid}/providers`, { ...stand(), name: "stand-IN" });
    expect(dup.statusCode).toBe(409);
  });

  it("tests the connection and says why it fails in plain words", async () => {
    const ok = await owner.client.post(`/api/v1/workspaces/${wid}/providers/${providerId}/test`);
    expect(ok.json()).toMatchObject({ ok: true, reason: null, models: ["alpha", "beta"] });
    await owner.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, { apiKey: "sk-wrong-key-000000" });
    const bad = (await owner.client.post(`/api/v1/workspaces/${wid}/providers/${providerId}/test`)).json();
    expect(bad).toMatchObject({ ok: false, reason: "bad_key" });
    expect(bad.message).toMatch(/rejected the API key/);
    await owner.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, {
      apiKey: KEY,
      baseUrl: `http://127.0.0.1:${await closedPort()}/v1`,
    });
    const down = (await owner.client.post(`/api/v1/workspaces/${wid}/providers/${providerId}/test`)).json();
    expect(down).toMatchObject({ ok: false, reason: "unreachable" });
    // Says it could not connect, never how (a socket error would tell what listens there).
    expect(down.message).toMatch(/^Could not connect to .*Check the base URL\.$/);
    // A new base URL needs the key again: the stored one never goes to a URL it was not entered for.
    await owner.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, {
      apiKey: KEY,
      baseUrl: llm.baseUrl.replace(/\/v1$/, "/nope"),
    });
    const wrongPath = (await owner.client.post(`/api/v1/workspaces/${wid}/providers/${providerId}/test`)).json();
    expect(wrongPath).toMatchObject({ ok: false, reason: "not_found" });
    await owner.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, {
      apiKey: KEY,
      baseUrl: llm.baseUrl,
    });
    // Failed tests are in the audit trail, as failures, without the key.
    const audit = await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=provider.test`);
    expect(audit.json().items.map((e: { outcome: string }) => e.outcome)).toContain("failure");
    expect(audit.body).not.toContain("sk-wrong-key");
  });

  it("members keep personal providers nobody else sees; only admins manage shared ones", async () => {
    const shared = await member.client.post(`/api/v1/workspaces/${wid}/providers`, { ...stand(), name: "Mine" });
    expect(shared.statusCode).toBe(403);
    const personal = await member.client.post(`/api/v1/workspaces/${wid}/providers`, {
      ...stand(),
      name: "Stand-in",
      personal: true,
    });
    expect(personal.statusCode, personal.body).toBe(201);
    const pid = personal.json().id;
    const ownerList = (await owner.client.get(`/api/v1/workspaces/${wid}/providers`)).json();
    expect(ownerList.items.map((i: { id: string }) => i.id)).not.toContain(pid);
    for (const [method, suffix] of [
      ["GET", ""],
      ["PATCH", ""],
      ["DELETE", ""],
      ["POST", "/test"],
    ] as const) {
      const res = await owner.client.request(
        method,
        `/api/v1/workspaces/${wid}/providers/${pid}${suffix}`,
        method === "PATCH" ? { name: "x" } : undefined,
      );
      expect(res.statusCode, `${method} ${suffix}`).toBe(404);
    }
    expect(
      (await member.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, { name: "x" })).statusCode,
    ).toBe(403);
    expect(
      (await viewer.client.post(`/api/v1/workspaces/${wid}/providers`, { ...stand(), personal: true })).statusCode,
    ).toBe(403);

    // An agent on a personal provider is personal too.
    const agent = await member.client.post(`/api/v1/workspaces/${wid}/agents`, {
      name: "Own",
      providerId: pid,
      model: "alpha",
    });
    expect(agent.statusCode, agent.body).toBe(201);
    expect(agent.json().personal).toBe(true);
    expect((await owner.client.get(`/api/v1/workspaces/${wid}/agents/${agent.json().id}`)).statusCode).toBe(404);
    expect(
      (await owner.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.json().id })).statusCode,
    ).toBe(404);
    // Nobody else may build an agent on it.
    expect(
      (await owner.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "Steal", providerId: pid, model: "alpha" }))
        .statusCode,
    ).toBe(400);
  });
});

describe("agents", () => {
  let providerId: string;
  beforeAll(async () => {
    providerId = (await owner.client.get(`/api/v1/workspaces/${wid}/providers`))
      .json()
      .items.find((p: { personal: boolean }) => !p.personal).id;
  });

  it("checks the model is one the provider offers", async () => {
    const res = await owner.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "A", providerId, model: "gamma" });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      code: "VALIDATION_FAILED",
      details: { field: "model", models: ["alpha", "beta"] },
    });
  });

  it("only admins grant tools; members edit only their own agents; viewers read", async () => {
    const withTools = { name: "Web", providerId, model: "alpha", tools: ["web"] };
    expect((await member.client.post(`/api/v1/workspaces/${wid}/agents`, withTools)).statusCode).toBe(403);
    const denied = await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=access.denied`);
    expect(denied.json().items[0].details).toMatchObject({ action: "agents:manage", role: "member" });
    const admins = await owner.client.post(`/api/v1/workspaces/${wid}/agents`, withTools);
    expect(admins.statusCode).toBe(201);
    expect(admins.json().tools).toEqual(["web"]);

    const mine = (
      await member.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "M", providerId, model: "alpha" })
    ).json();
    expect(
      (await member.client.patch(`/api/v1/workspaces/${wid}/agents/${mine.id}`, { temperature: 0.2 })).json()
        .temperature,
    ).toBeCloseTo(0.2);
    expect(
      (await member.client.patch(`/api/v1/workspaces/${wid}/agents/${admins.json().id}`, { name: "x" })).statusCode,
    ).toBe(403);
    expect(
      (await member.client.patch(`/api/v1/workspaces/${wid}/agents/${mine.id}`, { tools: ["shell"] })).statusCode,
    ).toBe(403);
    expect((await viewer.client.get(`/api/v1/workspaces/${wid}/agents`)).json().items.length).toBeGreaterThanOrEqual(2);
    expect(
      (await viewer.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "V", providerId, model: "alpha" }))
        .statusCode,
    ).toBe(403);
    expect((await viewer.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: mine.id })).statusCode).toBe(403);
  });

  it("a provider in use cannot be deleted; deleting its agents frees it", async () => {
    const p = (await owner.client.post(`/api/v1/workspaces/${wid}/providers`, { ...stand(), name: "Temp" })).json();
    const agent = (
      await owner.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "T", providerId: p.id, model: "beta" })
    ).json();
    const blocked = await owner.client.delete(`/api/v1/workspaces/${wid}/providers/${p.id}`);
    expect(blocked.statusCode).toBe(409);
    expect(blocked.json().message).toMatch(/1 agent uses this provider/);
    expect((await owner.client.delete(`/api/v1/workspaces/${wid}/agents/${agent.id}`)).statusCode).toBe(204);
    expect((await owner.client.delete(`/api/v1/workspaces/${wid}/providers/${p.id}`)).statusCode).toBe(204);
  });
});

describe("shell and files never meet other members' personal keys", () => {
  // Every key an agent's providers use sits in the workspace gateway's config, which shell and file tools can read.
  it("refuses the grant while others have personal providers, and a personal provider while an agent has them", async () => {
    const o = await signUp(t.app);
    const w = o.workspaceId;
    const m = await signUp(t.app);
    const { token } = (
      await o.client.post(`/api/v1/workspaces/${w}/invites`, { email: m.email, role: "member" })
    ).json();
    expect((await m.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
    const shared = (
      await o.client.post(`/api/v1/workspaces/${w}/providers`, { ...stand(), name: "Shared", models: ["alpha"] })
    ).json();
    const agent = (
      await o.client.post(`/api/v1/workspaces/${w}/agents`, { name: "Plain", providerId: shared.id, model: "alpha" })
    ).json();
    const secret = "sk-personal-of-member-0123456789";
    const personal = await m.client.post(`/api/v1/workspaces/${w}/providers`, {
      ...stand(),
      name: "Member's own key",
      apiKey: secret,
      models: ["alpha"],
      personal: true,
    });
    expect(personal.statusCode, personal.body).toBe(201);
    // The owner's own personal key does not block them; the member's does.
    const ownKey = await o.client.post(`/api/v1/workspaces/${w}/providers`, {
      ...stand(),
      name: "Owner's own key",
      models: ["alpha"],
      personal: true,
    });
    expect(ownKey.statusCode, ownKey.body).toBe(201);

    const refusals = [
      await o.client.patch(`/api/v1/workspaces/${w}/agents/${agent.id}`, { tools: ["shell"] }),
      await o.client.patch(`/api/v1/workspaces/${w}/agents/${agent.id}`, { tools: ["web", "files"] }),
      await o.client.post(`/api/v1/workspaces/${w}/agents`, {
        name: "Coder",
        providerId: shared.id,
        model: "alpha",
        tools: ["files"],
      }),
    ];
    for (const res of refusals) {
      expect(res.statusCode, res.body).toBe(409);
      expect(res.json()).toMatchObject({
        code: "HOST_ACCESS_EXPOSES_KEYS",
        details: { members: 1, personalProviders: 1 },
      });
      expect(res.json().message).toMatch(/other members have personal providers \(1 member, 1 provider\)/);
      // Who and which key is not said.
      for (const s of [m.email, m.user.id, personal.json().id, "Member's own key", secret]) {
        expect(res.body).not.toContain(s);
      }
    }
    expect((await o.client.get(`/api/v1/workspaces/${w}/agents/${agent.id}`)).json().tools).toEqual([]);
    // Web reaches no local file: still allowed.
    const web = await o.client.patch(`/api/v1/workspaces/${w}/agents/${agent.id}`, { tools: ["web"] });
    expect(web.statusCode, web.body).toBe(200);

    // Once the member's key is gone the grant goes through, and then no new personal key can come in.
    expect((await m.client.delete(`/api/v1/workspaces/${w}/providers/${personal.json().id}`)).statusCode).toBe(204);
    const granted = await o.client.patch(`/api/v1/workspaces/${w}/agents/${agent.id}`, { tools: ["shell", "web"] });
    expect(granted.statusCode, granted.body).toBe(200);
    const late = await m.client.post(`/api/v1/workspaces/${w}/providers`, {
      ...stand(),
      name: "Too late",
      models: ["alpha"],
      personal: true,
    });
    expect(late.statusCode, late.body).toBe(409);
    expect(late.json()).toMatchObject({ code: "HOST_ACCESS_EXPOSES_KEYS", details: { agentsWithHostAccess: 1 } });
    expect(late.json().message).toMatch(/1 agent has shell or file tools/);
    const mine = (await m.client.get(`/api/v1/workspaces/${w}/providers`)).json().items;
    expect(mine.map((p: { name: string }) => p.name)).not.toContain("Too late");
    // Other workspaces are not affected by this one's grants.
    const elsewhere = await m.client.post(`/api/v1/workspaces/${m.workspaceId}/providers`, {
      ...stand(),
      name: "Mine elsewhere",
      models: ["alpha"],
      personal: true,
    });
    expect(elsewhere.statusCode, elsewhere.body).toBe(201);
  });
});

describe("quotas", () => {
  it("refuses a message once the month's allowance is used, with a stable code, and stores nothing", async () => {
    const q = await buildTestApp({ config: { quotaMonthlyMessages: 1 } });
    try {
      const o = await signUp(q.app);
      const w = o.workspaceId;
      const p = (await o.client.post(`/api/v1/workspaces/${w}/providers`, { ...stand(), models: ["alpha"] })).json();
      const agent = (
        await o.client.post(`/api/v1/workspaces/${w}/agents`, { name: "Q", providerId: p.id, model: "alpha" })
      ).json();
      // Workspaces that chat have several agents in every test.
      await o.client.post(`/api/v1/workspaces/${w}/agents`, { name: "Q2", providerId: p.id, model: "alpha" });
      const s = (await o.client.post(`/api/v1/workspaces/${w}/sessions`, { agentId: agent.id })).json();
      await q.db.owner.query(
        "insert into usage_monthly (workspace_id, month, messages) values ($1, date_trunc('month', now() at time zone 'utc')::date, 1)",
        [w],
      );
      const res = await o.client.post(`/api/v1/workspaces/${w}/sessions/${s.id}/messages`, { text: "one more" });
      expect(res.statusCode).toBe(429);
      expect(res.json()).toMatchObject({ code: "QUOTA_EXCEEDED", details: { limit: "messages", used: 1, max: 1 } });
      expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
      expect((await o.client.get(`/api/v1/workspaces/${w}/sessions/${s.id}/messages`)).json().items).toEqual([]);
      expect((await o.client.get(`/api/v1/workspaces/${w}/usage`)).json()).toMatchObject({
        messages: 1,
        limits: { messages: 1 },
      });
      // Per-day usage: messages people sent, and LLM calls metered at the proxy, by UTC day, zero days included.
      await q.db.owner.query(
        `insert into chat_messages (workspace_id, session_id, role, content, created_at) values ($1, $2, 'user', 'a', now() - interval '2 days'), ($1, $2, 'user', 'b', now())`,
        [w, s.id],
      );
      // The tokens a message stores are for display: usage counts the calls (background ones too).
      await q.db.owner.query(
        `insert into chat_messages (workspace_id, session_id, role, content, prompt_tokens, completion_tokens, created_at) values ($1, $2, 'assistant', 'x', 99, 99, now())`,
        [w, s.id],
      );
      await q.db.owner.query(
        `insert into llm_calls (workspace_id, provider_id, model, endpoint, prompt_tokens, completion_tokens, outcome) values ($1, $2, 'alpha', 'chat.completions', 7, 5, 'ok'), ($1, $2, 'alpha', 'chat.completions', 3, 0, 'ok')`,
        [w, p.id],
      );
      const daily = (await o.client.get(`/api/v1/workspaces/${w}/usage/daily?days=7`)).json().items;
      expect(daily).toHaveLength(7);
      expect(daily.at(-1)).toMatchObject({
        day: new Date().toISOString().slice(0, 10),
        messages: 1,
        calls: 2,
        promptTokens: 10,
        completionTokens: 5,
      });
      expect(daily.at(-3)).toMatchObject({ messages: 1, calls: 0, promptTokens: 0 });
      expect(daily.at(-2)).toMatchObject({ messages: 0 });
      expect((await o.client.get(`/api/v1/workspaces/${w}/usage/daily?days=500`)).statusCode).toBe(400);
    } finally {
      await q.close();
    }
  });
});

describe("an answer cut off by a Reef that died", () => {
  it("is shown as cut off once its heartbeat stops, and until then blocks a second turn on every replica", async () => {
    const p = (await owner.client.post(`/api/v1/workspaces/${wid}/providers`, { ...stand(), name: "HB" })).json();
    const agent = (
      await owner.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "HB", providerId: p.id, model: "alpha" })
    ).json();
    const s = (await owner.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id })).json();
    const url = `/api/v1/workspaces/${wid}/sessions/${s.id}/messages`;
    // Another replica is streaming an answer in this session: its heartbeat is fresh.
    const [row] = (
      await t.db.owner.query(
        `insert into chat_messages (workspace_id, session_id, role, content, status) values ($1, $2, 'assistant', 'Half an ans', 'streaming') returning id`,
        [wid, s.id],
      )
    ).rows;
    const busy = await owner.client.post(url, { text: "again" });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().code).toBe("CONFLICT");
    expect((await owner.client.get(url)).json().items[0]).toMatchObject({ status: "streaming" });

    // That replica died a minute ago: no heartbeat since.
    await t.db.owner.query("update chat_messages set heartbeat_at = now() - interval '1 minute' where id = $1", [
      row.id,
    ]);
    const items = (await owner.client.get(url)).json().items;
    expect(items[0]).toMatchObject({ id: Number(row.id), status: "interrupted", content: "Half an ans" });
    expect(items[0].error).toMatch(/cut off because Reef stopped/);
  });
});
