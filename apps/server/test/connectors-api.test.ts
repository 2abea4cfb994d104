/**
 * The connectors API as workspace admins use it: the private-address policy
 * and the operator's switches, validation with stable codes, CRUD and paging,
 * connection tests against a real MCP server built with the official SDK (and
 * the ways a test fails), presets and their workflow lists, per-agent opt-in
 * across workspaces, who may do what, and that a connector's token never
 * comes back in a response or an audit entry.
 */
import http, { type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  addAgent,
  addStandInProvider,
  buildTestApp,
  joinWorkspace,
  type McpStandIn,
  signUp,
  startMcpStandIn,
  type TestApp,
} from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type Person = Awaited<ReturnType<typeof signUp>>;

let t: TestApp;
let operator: Person;
let admin: Person;
let member: Person;
let viewer: Person;
let other: Person;
let wid: string;
let base: string;
let mcp: McpStandIn;
let agentA: string;
let agentB: string;
let foreignAgent: string;
let htmlServer: Server;
let htmlUrl: string;
let deadUrl: string;
let engine: Server;
let engineBase: string;
const engineCalls: { path: string; headers: http.IncomingHttpHeaders }[] = [];
/** Everything a response or an audit row must never hold. */
const SECRETS: string[] = [];
const N8N_KEY = "n8n-api-key-0b9e7d1c5a3f";
const AP_KEY = "ap-api-key-6d2c8e0f1a4b";
const HEADER_VALUE = "x-secret-header-value-91ab";
const seen: string[] = [];

const join = (person: Person, role: string) => joinWorkspace(operator.client, wid, person.email, person.client, role);

/** Records every body a test saw, to search for secrets at the end. */
function keep<T extends { body: string }>(res: T): T {
  seen.push(res.body);
  return res;
}

function listen(handler: http.RequestListener): Promise<{ server: Server; base: string }> {
  const server = http.createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

/** n8n's and Activepieces' REST shapes, as far as Reef reads them. */
function engineHandler(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? "/", "http://x");
  engineCalls.push({ path: `${url.pathname}${url.search}`, headers: req.headers });
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (url.pathname === "/n8n/api/v1/workflows") {
    if (req.headers["x-n8n-api-key"] !== N8N_KEY) return json(401, { message: "unauthorized" });
    if (url.searchParams.get("cursor") === "page2") {
      return json(200, { data: [{ id: "w3", name: "Third", active: false, updatedAt: null }], nextCursor: null });
    }
    return json(200, {
      data: [
        {
          id: "w1",
          name: "Invoice bot",
          active: true,
          settings: { availableInMCP: true },
          updatedAt: "2025-01-02T00:00:00.000Z",
        },
        { id: "w2", name: "Digest", active: false, settings: {}, updatedAt: "2025-01-03T00:00:00.000Z" },
      ],
      nextCursor: "page2",
    });
  }
  if (url.pathname === "/ap/api/v1/flows") {
    if (req.headers.authorization !== `Bearer ${AP_KEY}`) return json(401, { message: "unauthorized" });
    if (url.searchParams.get("projectId") !== "proj123") return json(403, { message: "wrong project" });
    return json(200, {
      data: [
        { id: "f1", status: "ENABLED", updated: "2025-02-01T00:00:00.000Z", version: { displayName: "Lead intake" } },
        { id: "f2", status: "DISABLED", updated: "2025-02-02T00:00:00.000Z", version: { displayName: "Old flow" } },
      ],
      next: null,
      previous: null,
    });
  }
  json(404, { message: "not found" });
}

beforeAll(async () => {
  // Reef's defaults for connectors: on, and no private host allowed.
  t = await buildTestApp({ config: { schedulerEnabled: false } });
  operator = await signUp(t.app, { name: "Olga Operator" });
  wid = operator.workspaceId;
  base = `/api/v1/workspaces/${wid}/connectors`;
  admin = await signUp(t.app, { name: "Adam Admin" });
  member = await signUp(t.app, { name: "Mia Member" });
  viewer = await signUp(t.app, { name: "Vic Viewer" });
  other = await signUp(t.app, { name: "Otto Other" });
  await join(admin, "admin");
  await join(member, "member");
  await join(viewer, "viewer");
  const providerId = await addStandInProvider(
    operator.client,
    wid,
    { baseUrl: "http://127.0.0.1:9/v1" },
    "sk-unused-0123456789",
  );
  agentA = await addAgent(operator.client, wid, { name: "Ada", providerId, model: "m" });
  agentB = await addAgent(operator.client, wid, { name: "Bea", providerId, model: "m" });
  const otherProvider = await addStandInProvider(
    other.client,
    other.workspaceId,
    { baseUrl: "http://127.0.0.1:9/v1" },
    "sk-unused-9876543210",
  );
  foreignAgent = await addAgent(other.client, other.workspaceId, {
    name: "Foreign",
    providerId: otherProvider,
    model: "m",
  });

  mcp = await startMcpStandIn();
  SECRETS.push(mcp.token ?? "", N8N_KEY, AP_KEY, HEADER_VALUE);
  const html = await listen((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html><body>Welcome to my blog</body></html>");
  });
  htmlServer = html.server;
  htmlUrl = `${html.base}/mcp`;
  const dead = await listen(() => {});
  deadUrl = `${dead.base}/mcp`;
  await new Promise<void>((resolve) => dead.server.close(() => resolve()));
  const e = await listen(engineHandler);
  engine = e.server;
  engineBase = e.base;
}, 60_000);

afterAll(async () => {
  await mcp?.close();
  htmlServer?.close();
  engine?.close();
  await t?.close();
});

const generic = (extra: Record<string, unknown> = {}) => ({
  name: "Stand-in tools",
  kind: "mcp",
  url: mcp.url,
  bearerToken: mcp.token,
  ...extra,
});

describe("private addresses", () => {
  it("refuses a connector at 127.0.0.1 by default, and accepts it once the operator allows the host", async () => {
    const refused = keep(await admin.client.post(base, generic()));
    expect(refused.statusCode, refused.body).toBe(400);
    expect(refused.json()).toMatchObject({ code: "CONNECTOR_URL_NOT_ALLOWED", details: { field: "url" } });
    // A draft test reports the same, as a test result.
    const draft = keep(await admin.client.post(`${base}/test`, generic()));
    expect(draft.json()).toMatchObject({ ok: false, error: { code: "URL_NOT_ALLOWED" } });
    expect(mcp.requests).toHaveLength(0);

    // Only operators may allow hosts.
    expect(
      (await admin.client.patch("/api/v1/admin/settings", { connectorAllowedHosts: ["127.0.0.1"] })).statusCode,
    ).toBe(403);
    const allowed = await operator.client.patch("/api/v1/admin/settings", { connectorAllowedHosts: ["127.0.0.1"] });
    expect(allowed.statusCode, allowed.body).toBe(200);
    expect(allowed.json().connectorAllowedHosts).toEqual({ value: ["127.0.0.1"], source: "settings" });
    expect(allowed.json().connectorsEnabled).toEqual({ value: true, source: "default" });
    // Providers' allowed hosts are a separate list.
    expect(allowed.json().providerAllowedHosts.value).toEqual(["127.0.0.1"]);

    const created = keep(await admin.client.post(base, generic()));
    expect(created.statusCode, created.body).toBe(201);
    await admin.client.delete(`${base}/${created.json().id}`);
    const audit = await operator.client.get("/api/v1/admin/audit?action=platform.settings_update");
    expect(audit.statusCode).toBe(200);
    expect(audit.body).toContain("connectorAllowedHosts");
  });

  it("refuses URLs that are not plain http(s) addresses", async () => {
    const cases: [Record<string, unknown>, string, number][] = [
      [generic({ url: "ftp://127.0.0.1/mcp" }), "VALIDATION_FAILED", 400],
      [generic({ url: `http://user:pw@127.0.0.1:${new URL(mcp.url).port}/mcp` }), "CONNECTOR_INVALID", 400],
      [generic({ url: "http://10.1.2.3/mcp" }), "CONNECTOR_URL_NOT_ALLOWED", 400],
      [generic({ url: "http://[::1]:8080/mcp" }), "CONNECTOR_URL_NOT_ALLOWED", 400],
      [generic({ headers: { Authorization: "Bearer x" } }), "CONNECTOR_INVALID", 400],
      [generic({ apiKey: "k-0123456789" }), "CONNECTOR_INVALID", 400],
      [{ name: "Cat", kind: "catalog" }, "CONNECTOR_INVALID", 400],
      [{ name: "Cat", kind: "catalog", catalogEntryId: "nope" }, "CONNECTOR_INVALID", 400],
      [{ name: "AP", kind: "activepieces", instanceUrl: "http://127.0.0.1:1" }, "CONNECTOR_INVALID", 400],
      [{ name: "N8n", kind: "n8n" }, "CONNECTOR_INVALID", 400],
      [{ kind: "mcp", url: mcp.url }, "VALIDATION_FAILED", 400],
    ];
    for (const [body, code, status] of cases) {
      const res = keep(await admin.client.post(base, body));
      expect(res.statusCode, `${JSON.stringify(body)}: ${res.body}`).toBe(status);
      expect(res.json().code, JSON.stringify(body)).toBe(code);
    }
    expect((await admin.client.get(base)).json().items).toEqual([]);
  });
});

describe("connectors CRUD", () => {
  it("derives unique slugs, pages the list newest first, changes and deletes", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = keep(await admin.client.post(base, generic({ name: "Team Tools!" })));
      expect(res.statusCode, res.body).toBe(201);
      ids.push(res.json().id);
    }
    const slugs = await Promise.all(ids.map(async (id) => (await admin.client.get(`${base}/${id}`)).json().slug));
    expect(slugs).toEqual(["team-tools", "team-tools-2", "team-tools-3"]);
    const long = keep(
      await admin.client.post(base, generic({ name: "9 Very long connector name that goes on and on" })),
    );
    expect(long.json().slug).toBe("very-long-connector-name-that");
    expect(long.json().slug.length).toBeLessThanOrEqual(30);
    ids.push(long.json().id);

    const first = keep(await viewer.client.get(`${base}?limit=3`)).json();
    expect(first.items.map((c: { id: string }) => c.id)).toEqual([ids[3], ids[2], ids[1]]);
    expect(first.nextCursor).toBeTruthy();
    const second = keep(await viewer.client.get(`${base}?limit=3&cursor=${first.nextCursor}`)).json();
    expect(second.items.map((c: { id: string }) => c.id)).toEqual([ids[0]]);
    expect(second.nextCursor).toBeNull();
    expect((await viewer.client.get(`${base}?cursor=garbage`)).statusCode).toBe(400);

    const patched = keep(
      await admin.client.patch(`${base}/${ids[0]}`, { name: "Renamed", enabled: false, toolAllowlist: ["nonce"] }),
    );
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({
      name: "Renamed",
      slug: "team-tools",
      enabled: false,
      toolAllowlist: ["nonce"],
      hasBearerToken: true,
    });
    for (const id of ids) expect((await admin.client.delete(`${base}/${id}`)).statusCode).toBe(204);
    expect((await admin.client.get(`${base}/${ids[0]}`)).statusCode).toBe(404);
    expect((await admin.client.delete(`${base}/${ids[0]}`)).statusCode).toBe(404);
    const actions = await t.db.owner.query(
      "select action from audit_log where workspace_id = $1 and target_id = $2 order by id",
      [wid, ids[0]],
    );
    expect(actions.rows.map((r) => r.action)).toEqual(["connector.create", "connector.update", "connector.delete"]);
  });

  it("keeps credentials write-only: absent keeps, null clears, a hint shows the end", async () => {
    const created = keep(await admin.client.post(base, generic({ headers: { "X-Team": HEADER_VALUE } })));
    const c = created.json();
    expect(c).toMatchObject({
      hasBearerToken: true,
      headerNames: ["X-Team"],
      secretHint: `…${(mcp.token ?? "").slice(-4)}`,
    });
    const renamed = keep(await admin.client.patch(`${base}/${c.id}`, { name: "Still secret" })).json();
    expect(renamed).toMatchObject({ hasBearerToken: true, headerNames: ["X-Team"] });
    const cleared = keep(await admin.client.patch(`${base}/${c.id}`, { headers: null })).json();
    expect(cleared).toMatchObject({ hasBearerToken: true, headerNames: [] });
    // The token still works after the other headers went.
    expect(keep(await admin.client.post(`${base}/${c.id}/test`)).json().ok).toBe(true);
    // A move to another address needs the credentials again.
    const moved = keep(await admin.client.patch(`${base}/${c.id}`, { url: "http://127.0.0.1:1/mcp" }));
    expect(moved.statusCode).toBe(400);
    expect(moved.json().code).toBe("API_KEY_REQUIRED");
    const noToken = keep(await admin.client.patch(`${base}/${c.id}`, { bearerToken: null })).json();
    expect(noToken).toMatchObject({ hasBearerToken: false, secretHint: null });
    expect(keep(await admin.client.post(`${base}/${c.id}/test`)).json().error.code).toBe("AUTH_FAILED");
    await admin.client.delete(`${base}/${c.id}`);
  });
});

describe("test connection", () => {
  it("lists the stand-in's tools over streamable HTTP and SSE, and stores them", async () => {
    const c = keep(await admin.client.post(base, generic())).json();
    expect(c.tools).toBeNull();
    const res = keep(await admin.client.post(`${base}/${c.id}/test`));
    expect(res.statusCode, res.body).toBe(200);
    const result = res.json();
    expect(result).toMatchObject({ ok: true, error: null, server: { name: "reef-mcp-stand-in" } });
    expect(result.tools.map((x: { name: string }) => x.name).sort()).toEqual(["echo", "nonce"]);
    const after = keep(await viewer.client.get(`${base}/${c.id}`)).json();
    expect(after.tools.map((x: { name: string }) => x.name).sort()).toEqual(["echo", "nonce"]);
    expect(after.lastTestOk).toBe(true);
    expect(after.lastTestedAt).toBeTruthy();
    // The sealed token reached the server.
    expect(mcp.requests.some((r) => r.rpcMethod === "tools/list" && r.authorization === `Bearer ${mcp.token}`)).toBe(
      true,
    );

    const sse = keep(
      await admin.client.post(base, generic({ name: "SSE tools", url: mcp.sseUrl, transport: "sse" })),
    ).json();
    const sseResult = keep(await admin.client.post(`${base}/${sse.id}/test`)).json();
    expect(sseResult.ok, JSON.stringify(sseResult)).toBe(true);
    expect(sseResult.tools.map((x: { name: string }) => x.name).sort()).toEqual(["echo", "nonce"]);
  });

  it("explains failures: wrong token, nothing listening, not an MCP server", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [generic({ name: "Wrong token", bearerToken: "wrong-token-0000000000" }), "AUTH_FAILED"],
      [generic({ name: "Dead", url: deadUrl }), "UNREACHABLE"],
      [generic({ name: "Blog", url: htmlUrl }), "NOT_MCP"],
      [generic({ name: "Wrong path", url: mcp.url.replace("/mcp", "/nothing") }), "NOT_MCP"],
    ];
    for (const [body, code] of cases) {
      const c = keep(await admin.client.post(base, body)).json();
      const result = keep(await admin.client.post(`${base}/${c.id}/test`)).json();
      expect(result.ok, JSON.stringify(result)).toBe(false);
      expect(result.error.code, JSON.stringify(result)).toBe(code);
      expect(result.error.message.length).toBeGreaterThan(10);
      const stored = (await admin.client.get(`${base}/${c.id}`)).json();
      expect(stored.lastTestOk).toBe(false);
      expect(stored.lastTestError).toContain(code);
    }
  });

  it("tests a draft without storing anything", async () => {
    const before = (await t.db.owner.query("select count(*)::int as n from connectors")).rows[0].n;
    const res = keep(await admin.client.post(`${base}/test`, generic({ name: "Draft" })));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().ok).toBe(true);
    const wrong = keep(
      await admin.client.post(`${base}/test`, generic({ name: "Draft", bearerToken: "nope-nope-nope" })),
    );
    expect(wrong.json().error.code).toBe("AUTH_FAILED");
    expect((await t.db.owner.query("select count(*)::int as n from connectors")).rows[0].n).toBe(before);
  });
});

describe("who may do what", () => {
  it("members and viewers read; only owners and admins create, test, change and delete", async () => {
    const c = keep(await admin.client.post(base, generic({ name: "Roles" }))).json();
    for (const p of [member, viewer]) {
      expect((await p.client.get(base)).statusCode).toBe(200);
      expect((await p.client.get(`${base}/${c.id}`)).statusCode).toBe(200);
      expect((await p.client.post(base, generic())).statusCode).toBe(403);
      expect((await p.client.post(`${base}/test`, generic())).statusCode).toBe(403);
      expect((await p.client.post(`${base}/${c.id}/test`)).statusCode).toBe(403);
      expect((await p.client.patch(`${base}/${c.id}`, { name: "x" })).statusCode).toBe(403);
      expect((await p.client.request("PUT", `${base}/${c.id}/agents`, { agents: [] })).statusCode).toBe(403);
      expect((await p.client.delete(`${base}/${c.id}`)).statusCode).toBe(403);
    }
    // Another workspace's owner sees nothing.
    expect((await other.client.get(`${base}/${c.id}`)).statusCode).toBe(404);
    expect((await other.client.get(`/api/v1/workspaces/${other.workspaceId}/connectors/${c.id}`)).statusCode).toBe(404);
    expect((await operator.client.get(`${base}/${c.id}`)).statusCode).toBe(200);
  });
});

describe("agent opt-in", () => {
  it("replaces the list, refuses another workspace's agent and unknown tools", async () => {
    const c = keep(await admin.client.post(base, generic({ name: "Opt-in", toolAllowlist: ["nonce", "echo"] }))).json();
    const url = `${base}/${c.id}/agents`;
    const set = keep(
      await admin.client.request("PUT", url, {
        agents: [
          { agentId: agentA, tools: null },
          { agentId: agentB, tools: ["nonce"] },
        ],
      }),
    );
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json().agents).toHaveLength(2);
    expect(set.json().agents).toEqual(
      expect.arrayContaining([
        { agentId: agentA, tools: null },
        { agentId: agentB, tools: ["nonce"] },
      ]),
    );
    const replaced = keep(
      await admin.client.request("PUT", url, { agents: [{ agentId: agentB, tools: null }] }),
    ).json();
    expect(replaced.agents).toEqual([{ agentId: agentB, tools: null }]);

    const foreign = await admin.client.request("PUT", url, { agents: [{ agentId: foreignAgent, tools: null }] });
    expect(foreign.statusCode, foreign.body).toBe(404);
    // Another member's personal agent is as unknown to the admin as another workspace's.
    const personalProvider = (
      await member.client.post(`/api/v1/workspaces/${wid}/providers`, {
        name: "Mine",
        kind: "openai-compatible",
        baseUrl: "http://127.0.0.1:9/v1",
        apiKey: "sk-personal-0123456789",
        models: ["m"],
        personal: true,
      })
    ).json();
    const personalAgent = await addAgent(member.client, wid, {
      name: "Mine",
      providerId: personalProvider.id,
      model: "m",
    });
    const personal = await admin.client.request("PUT", url, { agents: [{ agentId: personalAgent, tools: null }] });
    expect(personal.statusCode, personal.body).toBe(404);
    const unknownTool = await admin.client.request("PUT", url, { agents: [{ agentId: agentA, tools: ["rm-rf"] }] });
    expect(unknownTool.json().code).toBe("CONNECTOR_INVALID");
    const twice = await admin.client.request("PUT", url, {
      agents: [
        { agentId: agentA, tools: null },
        { agentId: agentA, tools: null },
      ],
    });
    expect(twice.json().code).toBe("CONNECTOR_INVALID");
    // Nothing changed by the refused calls.
    expect((await viewer.client.get(`${base}/${c.id}`)).json().agents).toEqual([{ agentId: agentB, tools: null }]);
    const rows = await t.db.owner.query("select agent_id from agent_connectors where connector_id = $1", [c.id]);
    expect(rows.rows.map((r) => r.agent_id)).toEqual([agentB]);
    const audit = await t.db.owner.query(
      "select details from audit_log where action = 'connector.agents.set' and target_id = $1 order by id",
      [c.id],
    );
    expect(audit.rows).toHaveLength(2);
  });
});

describe("presets and workflows", () => {
  it("derives n8n's MCP URL and lists its workflows with the API key, cursor passed through", async () => {
    const n8n = keep(
      await admin.client.post(base, {
        name: "n8n",
        kind: "n8n",
        instanceUrl: `${engineBase}/n8n/`,
        bearerToken: "n8n-mcp-token-123456",
        apiKey: N8N_KEY,
      }),
    );
    expect(n8n.statusCode, n8n.body).toBe(201);
    expect(n8n.json()).toMatchObject({
      url: `${engineBase}/n8n/mcp-server/http`,
      instanceUrl: `${engineBase}/n8n`,
      hasApiKey: true,
    });
    const page = keep(await viewer.client.get(`${base}/${n8n.json().id}/workflows?limit=2`));
    expect(page.statusCode, page.body).toBe(200);
    expect(page.json()).toEqual({
      items: [
        { id: "w1", name: "Invoice bot", active: true, availableInMcp: true, updatedAt: "2025-01-02T00:00:00.000Z" },
        { id: "w2", name: "Digest", active: false, availableInMcp: null, updatedAt: "2025-01-03T00:00:00.000Z" },
      ],
      nextCursor: expect.any(String),
    });
    expect(engineCalls.at(-1)?.path).toBe("/n8n/api/v1/workflows?limit=2");
    // Reef's cursor wraps the engine's, which reaches n8n as it gave it.
    const cursor = page.json().nextCursor as string;
    const next = keep(await viewer.client.get(`${base}/${n8n.json().id}/workflows?cursor=${cursor}`)).json();
    expect(engineCalls.at(-1)?.path).toBe("/n8n/api/v1/workflows?limit=50&cursor=page2");
    expect(next).toMatchObject({ items: [{ id: "w3", name: "Third" }], nextCursor: null });

    const badKey = keep(await admin.client.patch(`${base}/${n8n.json().id}`, { apiKey: "wrong-key-0000000" }));
    expect(badKey.statusCode).toBe(200);
    const refused = keep(await viewer.client.get(`${base}/${n8n.json().id}/workflows`));
    expect(refused.statusCode).toBe(502);
    expect(refused.json().message).toContain("refused the API key");
  });

  it("takes Activepieces' MCP URL and lists the project's flows with the key as a bearer token", async () => {
    const url = `${engineBase}/ap/api/v1/projects/proj123/mcp-server/http`;
    const ap = keep(
      await admin.client.post(base, {
        name: "Activepieces",
        kind: "activepieces",
        url,
        bearerToken: "ap-mcp-token-0123456",
        apiKey: AP_KEY,
      }),
    );
    expect(ap.statusCode, ap.body).toBe(201);
    expect(ap.json()).toMatchObject({ url, instanceUrl: `${engineBase}/ap` });
    const flows = keep(await viewer.client.get(`${base}/${ap.json().id}/workflows`));
    expect(flows.statusCode, flows.body).toBe(200);
    expect(flows.json()).toEqual({
      items: [
        { id: "f1", name: "Lead intake", active: true, availableInMcp: null, updatedAt: "2025-02-01T00:00:00.000Z" },
        { id: "f2", name: "Old flow", active: false, availableInMcp: null, updatedAt: "2025-02-02T00:00:00.000Z" },
      ],
      nextCursor: null,
    });
    expect(engineCalls.at(-1)?.path).toBe("/ap/api/v1/flows?projectId=proj123&limit=50");
    // A generic connector has no workflows to list.
    const plain = keep(await admin.client.post(base, generic({ name: "Plain" }))).json();
    expect((await viewer.client.get(`${base}/${plain.id}/workflows`)).json().code).toBe("CONNECTOR_INVALID");
  });
});

describe("the operator's switch", () => {
  it("switched off: create, change, test and opt-in answer CONNECTORS_DISABLED; lists still work", async () => {
    const c = keep(await admin.client.post(base, generic({ name: "Before the switch" }))).json();
    const off = await operator.client.patch("/api/v1/admin/settings", { connectorsEnabled: false });
    expect(off.json().connectorsEnabled).toEqual({ value: false, source: "settings" });
    const calls = [
      () => admin.client.post(base, generic()),
      () => admin.client.post(`${base}/test`, generic()),
      () => admin.client.post(`${base}/${c.id}/test`),
      () => admin.client.patch(`${base}/${c.id}`, { name: "x" }),
      () => admin.client.request("PUT", `${base}/${c.id}/agents`, { agents: [] }),
    ];
    for (const call of calls) {
      const res = await call();
      expect(res.statusCode, res.body).toBe(403);
      expect(res.json().code).toBe("CONNECTORS_DISABLED");
    }
    expect((await viewer.client.get(base)).statusCode).toBe(200);
    expect((await viewer.client.get(`${base}/${c.id}`)).statusCode).toBe(200);
    const on = await operator.client.patch("/api/v1/admin/settings", { connectorsEnabled: null });
    expect(on.json().connectorsEnabled).toEqual({ value: true, source: "default" });
    expect((await admin.client.post(`${base}/${c.id}/test`)).json().ok).toBe(true);
  });

  it("the catalogue lists nothing without a file", async () => {
    const res = await viewer.client.get("/api/v1/connector-catalog");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ items: [] });
  });
});

describe("secrets", () => {
  it("no token, header value or API key appears in any response or audit entry", async () => {
    // Every list and connector as the admin sees them, on top of every body seen above.
    const list = keep(await admin.client.get(`${base}?limit=200`));
    for (const c of list.json().items) keep(await admin.client.get(`${base}/${c.id}`));
    const audit = await t.db.owner.query("select action, details from audit_log where action like 'connector.%'");
    expect(audit.rows.length).toBeGreaterThan(10);
    const auditText = JSON.stringify(audit.rows);
    const all = [...seen, auditText].join("\n");
    for (const secret of SECRETS) {
      expect(secret.length).toBeGreaterThan(8);
      expect(all.includes(secret), `found ${secret.slice(0, 6)}…`).toBe(false);
    }
    expect(all).not.toContain("n8n-mcp-token-123456");
    expect(all).not.toContain("ap-mcp-token-0123456");
    // The vault holds them sealed, not in clear.
    const rows = await t.db.owner.query("select headers_sealed, api_key_sealed from connectors");
    const stored = JSON.stringify(rows.rows);
    for (const secret of SECRETS) expect(stored.includes(secret)).toBe(false);
  });
});
