import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { withScope } from "@reef/db";
import type { GatewaySettings } from "@reef/runtime";
import { createTestDatabase, type McpStandIn, startMcpStandIn, type TestDatabase } from "@reef/testing";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectorHeadersRecordId } from "../src/connectors/connector-credentials.ts";
import type { ConnectorPolicy } from "../src/outbound/mcp-proxy.ts";
import { createRuntimeOutbound, type RuntimeOutboundService } from "../src/outbound/outbound-server.ts";
import { createQuotaService } from "../src/quotas/quota-service.ts";
import { createVault } from "../src/vault/vault-service.ts";
import type { WorkspaceGate } from "../src/workspace/workspace-access.ts";
import { call } from "./socket-http.ts";

// Reef's MCP proxy on a runtime's own socket, against a real MCP server (the
// official SDK's) and the SDK's own client: no gateway is needed to prove what
// a gateway holding the proxy credential can and cannot do.

let t: TestDatabase;
let mcp: McpStandIn;
let outbound: RuntimeOutboundService;
const vault = createVault({ keyring: { current: randomBytes(32), previous: [] } });
const quotas = createQuotaService({ gate: {} as WorkspaceGate, limits: { messages: null, tokens: null } });
const handles: { close(): Promise<void> }[] = [];
let policy: ConnectorPolicy = { enabled: true, allowedHosts: [] };
/** An upstream that answers every request with a redirect (to the MCP stand-in itself). */
let redirector: http.Server;
let redirectorUrl = "";
let redirected = 0;

beforeAll(async () => {
  t = await createTestDatabase();
  mcp = await startMcpStandIn();
  redirector = http.createServer((req, res) => {
    redirected++;
    req.resume();
    res.writeHead(307, { location: mcp.url }).end();
  });
  await new Promise<void>((r) => redirector.listen(0, "127.0.0.1", r));
  redirectorUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/mcp`;
  policy = { enabled: true, allowedHosts: [new URL(mcp.url).host, new URL(redirectorUrl).host] };
  outbound = createRuntimeOutbound({
    db: t.database.db,
    vault,
    quotas,
    allowedHosts: async () => [],
    connectorPolicy: async () => policy,
  });
});
afterAll(async () => {
  await outbound.close();
  await mcp.close();
  redirector.close();
  await t.drop();
});
afterEach(async () => {
  policy = { ...policy, enabled: true };
  await Promise.all(handles.splice(0).map((h) => h.close()));
});

async function workspace(): Promise<string> {
  const id = randomUUID();
  await t.owner.query("insert into workspaces (id, name) values ($1, 'w')", [id]);
  return id;
}

/** A connector of `wid` to `url`, its bearer token sealed by the vault as the connector service does. */
async function connector(
  wid: string,
  url: string,
  opts: { transport?: "streamable-http" | "sse"; enabled?: boolean; used?: boolean } = {},
): Promise<string> {
  const id = randomUUID();
  const headers = JSON.stringify({ Authorization: `Bearer ${mcp.token}` });
  const sealed = await withScope(t.database.db, { workspaceId: wid }, (tx) =>
    vault.seal(tx, wid, connectorHeadersRecordId(id), headers),
  );
  await t.owner.query(
    `insert into connectors (id, workspace_id, name, slug, kind, transport, url, header_names, headers_sealed, enabled)
     values ($1, $2, $3, $3, 'mcp', $4, $5, '{Authorization}', $6, $7)`,
    [id, wid, `c-${id.slice(0, 8)}`, opts.transport ?? "streamable-http", url, sealed, opts.enabled ?? true],
  );
  if (opts.used ?? true) {
    // An agent may use it: the proxy serves only connectors the gateway's config names.
    const providerId = randomUUID();
    const agentId = randomUUID();
    await t.owner.query(
      "insert into providers (id, workspace_id, name, kind, base_url) values ($1, $2, $3, 'openai-compatible', 'https://llm.example')",
      [providerId, wid, `p-${providerId}`],
    );
    await t.owner.query(
      "insert into agents (id, workspace_id, name, provider_id, model) values ($1, $2, 'a', $3, 'm')",
      [agentId, wid, providerId],
    );
    await t.owner.query("insert into agent_connectors (workspace_id, agent_id, connector_id) values ($1, $2, $3)", [
      wid,
      agentId,
      id,
    ]);
  }
  return id;
}

/** Starts `wid`'s runtime outbound side (a fresh MCP credential) on a fresh socket. */
async function start(wid: string, connectorIds: string[]) {
  const settings = {
    providers: [],
    agents: [],
    connectors: connectorIds.map((id) => ({ id, slug: id.slice(0, 8), transport: "streamable-http" })),
  } as unknown as GatewaySettings;
  const out = await outbound.forStart(wid, settings);
  expect(out.mcpCredential).toMatch(/^reef-mcp-[A-Za-z0-9_-]{43}$/);
  const socketPath = join(tmpdir(), `reef-mcp-${randomBytes(6).toString("hex")}.sock`);
  handles.push(await out.listen(socketPath));
  return { credential: out.mcpCredential as string, socketPath };
}

/** The SDK's client, over the runtime's socket, holding only the proxy credential (as the gateway does). */
async function sdkClient(socketPath: string, credential: string, url: string, sse: boolean) {
  const dispatcher = new Agent({ connect: { socketPath } });
  handles.push({ close: () => dispatcher.close() });
  const fetchOverSocket = ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
  const requestInit = { headers: { Authorization: `Bearer ${credential}` } };
  const transport = sse
    ? new SSEClientTransport(new URL(url), { fetch: fetchOverSocket, requestInit })
    : new StreamableHTTPClientTransport(new URL(url), { fetch: fetchOverSocket, requestInit });
  const client = new Client({ name: "reef-test", version: "1.0.0" });
  // The SDK declares its transports with optional callbacks, which exactOptionalPropertyTypes rejects.
  await client.connect(transport as Transport);
  handles.push({ close: () => client.close() });
  return client;
}

const initialize = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "probe", version: "1" } },
};
const rpcHeaders = { accept: "application/json, text/event-stream" };

const textOf = (result: unknown) =>
  ((result as { content: { type: string; text: string }[] }).content ?? []).map((c) => c.text).join("");

describe("Reef's MCP proxy on a runtime's socket", () => {
  it("streamable HTTP: the SDK client lists and calls tools; the server saw the real token, never the credential", async () => {
    const wid = await workspace();
    const cid = await connector(wid, mcp.url);
    const { credential, socketPath } = await start(wid, [cid]);
    const before = mcp.requests.length;
    const client = await sdkClient(socketPath, credential, `http://reef.internal/mcp/${cid}`, false);
    const tools = await client.listTools();
    expect(tools.tools.map((x) => x.name).sort()).toEqual(["echo", "nonce"]);
    expect(textOf(await client.callTool({ name: "nonce", arguments: {} }))).toBe(mcp.nonce);
    const seen = mcp.requests.slice(before);
    expect(seen.map((r) => r.rpcMethod)).toEqual(expect.arrayContaining(["initialize", "tools/list", "tools/call"]));
    expect(seen.every((r) => r.path === "/mcp" && r.authorization === `Bearer ${mcp.token}`)).toBe(true);
    expect(JSON.stringify(seen)).not.toContain(credential);
  });

  it("legacy SSE: the endpoint event is rewritten, messages post through /mcp/<cid>/~/messages", async () => {
    const wid = await workspace();
    const cid = await connector(wid, mcp.sseUrl, { transport: "sse" });
    const { credential, socketPath } = await start(wid, [cid]);

    // The raw stream: the endpoint event names the proxy's path, not the server's.
    const endpoint = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        {
          socketPath,
          path: `/mcp/${cid}`,
          headers: { authorization: `Bearer ${credential}`, accept: "text/event-stream" },
        },
        (res) => {
          expect(res.statusCode).toBe(200);
          expect(res.headers["content-type"]).toContain("text/event-stream");
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            text += c;
            const m = /event: endpoint\ndata: (.*)\n\n/.exec(text);
            if (m?.[1]) {
              req.destroy();
              resolve(m[1]);
            }
          });
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(endpoint).toMatch(new RegExp(`^/mcp/${cid}/~/messages\\?sessionId=[0-9a-f-]+$`));

    const before = mcp.requests.length;
    const client = await sdkClient(socketPath, credential, `http://reef.internal/mcp/${cid}`, true);
    expect((await client.listTools()).tools.map((x) => x.name)).toContain("nonce");
    expect(textOf(await client.callTool({ name: "nonce", arguments: {} }))).toBe(mcp.nonce);
    const seen = mcp.requests.slice(before);
    const posts = seen.filter((r) => r.method === "POST");
    expect(seen.filter((r) => r.method === "GET").map((r) => r.path)).toEqual(["/sse"]);
    expect(posts.every((r) => r.path === "/messages")).toBe(true);
    expect(posts.map((r) => r.rpcMethod)).toEqual(expect.arrayContaining(["initialize", "tools/list", "tools/call"]));
    expect(seen.every((r) => r.authorization === `Bearer ${mcp.token}`)).toBe(true);
    expect(JSON.stringify(seen)).not.toContain(credential);
  });

  it("refuses a wrong credential (401), another workspace's connector (404), a disabled one and one no agent uses (404)", async () => {
    const a = await workspace();
    const b = await workspace();
    const mine = await connector(a, mcp.url);
    const off = await connector(a, mcp.url, { enabled: false });
    const unused = await connector(a, mcp.url, { used: false });
    const theirs = await connector(b, mcp.url);
    const { credential, socketPath } = await start(a, [mine, off, unused]);
    const other = await start(b, [theirs]);
    const before = mcp.requests.length;
    const post = (cid: string, cred: string, sock = socketPath) =>
      call(sock, { path: `/mcp/${cid}`, credential: cred, body: initialize, headers: rpcHeaders });

    const wrong = await post(mine, `reef-mcp-${randomBytes(32).toString("base64url")}`);
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.text)).toMatchObject({ error: { code: "UNAUTHENTICATED" } });
    // B's valid credential on A's socket is no credential.
    expect((await post(mine, other.credential)).status).toBe(401);
    expect((await post(theirs, credential)).status).toBe(404);
    const disabled = await post(off, credential);
    expect(disabled.status).toBe(404);
    expect(JSON.parse(disabled.text)).toMatchObject({ error: { code: "NOT_FOUND" } });
    // Not in the gateway's config (no agent may use it): only something outside OpenClaw's policy would call it.
    expect((await post(unused, credential)).status).toBe(404);
    expect(mcp.requests.length).toBe(before);
    // The control: A's own enabled connector, A's credential, is served.
    expect((await post(mine, credential)).status).toBe(200);
    expect(mcp.requests.length).toBe(before + 1);
  });

  it("connectors switched off platform-wide: 403 CONNECTORS_DISABLED, nothing reaches the server", async () => {
    const wid = await workspace();
    const cid = await connector(wid, mcp.url);
    const { credential, socketPath } = await start(wid, [cid]);
    const before = mcp.requests.length;
    policy = { ...policy, enabled: false };
    const answer = await call(socketPath, { path: `/mcp/${cid}`, credential, body: initialize, headers: rpcHeaders });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text)).toMatchObject({ error: { code: "CONNECTORS_DISABLED" } });
    expect(mcp.requests.length).toBe(before);
  });

  it("refuses a path escaping the connector's origin through ~/ (dot segments, encoded separators)", async () => {
    const wid = await workspace();
    const cid = await connector(wid, mcp.sseUrl, { transport: "sse" });
    const { credential, socketPath } = await start(wid, [cid]);
    const before = mcp.requests.length;
    for (const path of [
      `/mcp/${cid}/~/../mcp`,
      `/mcp/${cid}/~/messages/../../x`,
      `/mcp/${cid}/~/%2e%2e/mcp`,
      `/mcp/${cid}/~/..%2fmcp`,
      `/mcp/${cid}/~//evil.example/x`,
      `/mcp/${cid}/~/a\\..\\b`,
    ]) {
      const answer = await call(socketPath, { path, credential, body: initialize, headers: rpcHeaders });
      expect(answer.status, path).toBe(404);
      expect(mcp.requests.length, `${path} ${JSON.stringify(mcp.requests.at(-1))}`).toBe(before);
    }
    expect(mcp.requests.length).toBe(before);
  });

  it("does not follow a redirect from the server (502 CONNECTOR_REDIRECT)", async () => {
    const wid = await workspace();
    const cid = await connector(wid, redirectorUrl);
    const { credential, socketPath } = await start(wid, [cid]);
    const before = mcp.requests.length;
    const was = redirected;
    const answer = await call(socketPath, { path: `/mcp/${cid}`, credential, body: initialize, headers: rpcHeaders });
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text)).toMatchObject({ error: { code: "CONNECTOR_REDIRECT" } });
    expect(answer.headers.location).toBeUndefined();
    expect(redirected).toBe(was + 1);
    expect(mcp.requests.length).toBe(before);
  });
});
