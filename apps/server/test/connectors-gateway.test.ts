/**
 * MCP connectors end to end: real Postgres, a real sandboxed OpenClaw gateway,
 * the LLM stand-in and a real MCP server (the official SDK's, on 127.0.0.1).
 * A workspace adds the server as a connector with a bearer token and opts one
 * of its two agents in; the model calls the server's tool through the gateway
 * and Reef's MCP proxy, and the tool's nonce reaches the answer and its trace.
 * The other agent cannot call it, the gateway never holds the token (it is in
 * no log, response, audit entry, process env or command line, or file of the
 * runtime), and once the operator no longer allows the server's address the
 * proxy refuses the calls before they leave Reef.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { buildApp } from "@reef/server";
import {
  addConnector,
  allowConnectorHosts,
  chatOnce,
  createTestDatabase,
  filesContaining,
  type HttpClient,
  hostOf,
  httpClient,
  joinWorkspace,
  type LlmStandIn,
  listenLocal,
  type McpStandIn,
  optIn,
  ownerWithAgents,
  processGroupHolding,
  recordingLogger,
  signUp,
  startMcpStandIn,
  startToolCallingStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
  toolOf,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PROVIDER_KEY = `sk-canary-${randomBytes(12).toString("hex")}`;
let db: TestDatabase;
let app: FastifyInstance;
let base = "";
let dataDir = "";
let llm: LlmStandIn;
/** The connector every test uses, and one whose address the operator stops allowing. */
let docs: McpStandIn;
let files: McpStandIn;
const logLines: string[] = [];
const responses: string[] = [];

let h: HttpClient;
let wid = "";
let ada = "";
let bea = "";
let docsId = "";
let docsSlug = "";
let filesSlug = "";
/** Another workspace's connector (to the same server). */
let foreignId = "";

beforeAll(async () => {
  docs = await startMcpStandIn();
  files = await startMcpStandIn();
  llm = await startToolCallingStandIn(PROVIDER_KEY);
  db = await createTestDatabase();
  const config = testAppConfig({
    runtimeIdleTimeoutMinutes: 60,
    // The operator's default: both stand-ins' addresses (127.0.0.1 is private) are allowed.
    connectorAllowedHosts: [hostOf(docs.url), hostOf(files.url)],
  });
  dataDir = config.dataDir;
  app = await buildApp({ config, database: db.database, logger: recordingLogger(logLines) });
  base = await listenLocal(app);

  ({
    owner: h,
    wid,
    ada,
    bea,
  } = await ownerWithAgents(app, base, llm, PROVIDER_KEY, {
    onBody: (text) => responses.push(text),
  }));

  const mcpConnector = (name: string, server: McpStandIn) => ({
    name,
    kind: "mcp",
    url: server.url,
    bearerToken: server.token,
  });
  ({ id: docsId, slug: docsSlug } = await addConnector(h, wid, mcpConnector("Docs", docs)));
  const second = await addConnector(h, wid, mcpConnector("Files", files));
  filesSlug = second.slug;
  // Only Ada is opted in, to both.
  for (const id of [docsId, second.id]) await optIn(h, wid, id, [ada]);

  const other = await signUp(app);
  const ho = httpClient(base, other.client, { onBody: (text) => responses.push(text) });
  foreignId = (await addConnector(ho, other.workspaceId, mcpConnector("Theirs", docs))).id;
}, 90_000);

afterAll(async () => {
  await stopTestApp(app, db);
  await llm?.close();
  await docs?.close();
  await files?.close();
}, 120_000);

const chat = (agentId: string, text: string) => chatOnce(h, wid, agentId, text);

function runtimeDir() {
  return join(dataDir, "runtimes", wid);
}

function gatewayConfig(): Record<string, any> {
  return JSON.parse(readFileSync(join(runtimeDir(), "state/openclaw.json"), "utf8"));
}

describe.runIf(process.getuid?.() === 0)("MCP connectors through a real gateway", () => {
  it("the opted-in agent calls the connector's tool: its nonce reaches the answer and the execution trace", async () => {
    const { answer, sid } = await chat(ada, `please call ${toolOf(docsSlug, "nonce")}`);
    expect(answer).toContain(docs.nonce);
    expect(docs.calls.map((c) => c.tool)).toEqual(["nonce"]);
    const page = await h.json("GET", `/api/v1/workspaces/${wid}/sessions/${sid}/messages?limit=100`);
    expect(page.status).toBe(200);
    const last = page.body.items.at(-1) as { role: string; trace: { name: string; output?: string }[] };
    expect(last.role).toBe("assistant");
    expect(JSON.stringify(last.trace)).toContain(docs.nonce);
    // OpenClaw keeps MCP tools behind its tool search: the model reached this one through `tool_call`.
    expect(last.trace.map((s) => s.name)).toContain("tool_call");
  }, 240_000);

  it("the server saw only Reef's proxy, with the connector's real token; the gateway holds only its proxy credential", async () => {
    expect(docs.requests.length).toBeGreaterThan(0);
    expect(docs.requests.every((r) => r.authorization === `Bearer ${docs.token}`)).toBe(true);
    const config = gatewayConfig();
    const server = config.mcp.servers[docsSlug];
    expect(server).toMatchObject({ transport: "streamable-http" });
    expect(server.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/mcp/${docsId}$`));
    expect(server.headers.Authorization).toMatch(/^Bearer reef-mcp-[A-Za-z0-9_-]{43}$/);
    // Bea is denied every tool of both connectors.
    expect(config.agents.entries[bea].tools.deny).toEqual(
      expect.arrayContaining([`${docsSlug}__*`, `${filesSlug}__*`]),
    );
    expect(config.agents.entries[ada].tools.deny ?? []).not.toContain(`${docsSlug}__*`);
  });

  it("an agent not opted in cannot call the tool", async () => {
    const before = docs.calls.length;
    const { answer } = await chat(bea, `now call ${toolOf(docsSlug, "nonce")} for Bea`);
    expect(answer).not.toContain(docs.nonce);
    expect(answer).toMatch(/Unknown tool/i);
    expect(docs.calls.length).toBe(before);
  }, 120_000);

  it("an admin opts the other agent in: its very next message calls the tool; opted out again, the next is refused", async () => {
    // The change comes from an invited admin, not the owner who set the connector up.
    const person = await signUp(app);
    const admin = httpClient(base, person.client, { onBody: (text) => responses.push(text) });
    await joinWorkspace(h, wid, person.email, admin, "admin");
    const running = async () =>
      (await db.owner.query("select state from runtimes where workspace_id = $1", [wid])).rows[0]?.state;
    // The gateway that refused Bea a moment ago is still up: the change must reach it before her next message.
    expect(await running()).toBe("running");
    expect(await optIn(admin, wid, docsId, [ada, bea])).toEqual(
      expect.arrayContaining([
        { agentId: ada, tools: null },
        { agentId: bea, tools: null },
      ]),
    );
    const before = docs.calls.length;
    const opted = await chat(bea, `please call ${toolOf(docsSlug, "nonce")} now that Bea is opted in`);
    expect(opted.answer).toContain(docs.nonce);
    expect(docs.calls.length).toBe(before + 1);

    expect(await running()).toBe("running");
    expect(await optIn(admin, wid, docsId, [ada])).toEqual([{ agentId: ada, tools: null }]);
    const refused = await chat(bea, `please call ${toolOf(docsSlug, "nonce")} once Bea is opted out again`);
    expect(refused.answer).not.toContain(docs.nonce);
    expect(refused.answer).toMatch(/Unknown tool/i);
    expect(docs.calls.length).toBe(before + 1);
    // The config the gateway runs with says the same: Bea denied again, Ada not.
    expect(gatewayConfig().agents.entries[bea].tools.deny).toContain(`${docsSlug}__*`);
    expect(gatewayConfig().agents.entries[ada].tools.deny ?? []).not.toContain(`${docsSlug}__*`);
  }, 300_000);

  it("the proxy refuses a wrong credential (401) and another workspace's connector (404), on Reef's HTTP route", async () => {
    const credential = (gatewayConfig().mcp.servers[docsSlug].headers.Authorization as string).slice(7);
    const seen = docs.requests.length;
    const init = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "probe", version: "1" } },
    });
    const call = (id: string, token: string) =>
      fetch(`${base}/internal/mcp/${id}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: init,
      });
    const wrong = await call(docsId, `reef-mcp-${randomBytes(32).toString("base64url")}`);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { code: "UNAUTHENTICATED" } });
    const foreign = await call(foreignId, credential);
    expect(foreign.status).toBe(404);
    expect(docs.requests.length).toBe(seen);
    // Its own connector, with its own credential: served (the server answers the initialize).
    const own = await call(docsId, credential);
    expect(own.status).toBe(200);
    await own.text();
    expect(docs.requests.length).toBe(seen + 1);
  });

  it("once the operator no longer allows the server's address, the proxy refuses its calls before they leave Reef", async () => {
    await allowConnectorHosts(db, [hostOf(docs.url)]);
    // Platform settings are cached for 5 s per replica.
    await new Promise((r) => setTimeout(r, 5_500));
    const seen = files.requests.length;
    const { answer } = await chat(ada, `please call ${toolOf(filesSlug, "nonce")}`);
    expect(answer).not.toContain(files.nonce);
    expect(files.requests.length).toBe(seen);
    expect(files.calls).toEqual([]);
    expect(logLines.some((l) => l.includes("MCP proxy refused a connector's address"))).toBe(true);
  }, 180_000);

  it("the connector's token appears nowhere but in the server's Authorization header", async () => {
    const token = docs.token as string;
    const leaks: string[] = [];
    if (responses.some((r) => r.includes(token))) leaks.push("an API response");
    if (logLines.some((l) => l.includes(token))) leaks.push("Reef's log (incl. gateway output)");
    const audit = await db.owner.query(
      "select details::text from audit_log union all select details::text from platform_audit_log",
    );
    if (audit.rows.some((r) => String(r.details).includes(token))) leaks.push("the audit trail");
    const stored = await db.owner.query("select headers_sealed from connectors");
    if (stored.rows.some((r) => String(r.headers_sealed).includes(token))) leaks.push("the connectors table");
    const { rows } = await db.owner.query("select handle from runtimes where workspace_id = $1", [wid]);
    const pid = Number(rows[0]?.handle?.pid);
    leaks.push(...processGroupHolding(pid, token));
    const dir = runtimeDir();
    for (const f of filesContaining(dir, token)) leaks.push(relative(dir, f));
    expect(leaks).toEqual([]);
    expect(logLines.length).toBeGreaterThan(10);
  }, 30_000);
});
