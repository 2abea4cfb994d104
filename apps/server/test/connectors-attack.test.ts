/**
 * MCP connectors, attacked from below HTTP. Real Postgres, real sandboxed
 * OpenClaw gateways (process driver, as root), the LLM stand-in and two real
 * MCP servers (the official SDK's, on 127.0.0.1). Workspaces A and B each have
 * an owner, a member and two agents, and a connector to their own MCP server.
 * A member of A has A's shell-enabled agent run a hostile script
 * (fixtures/mcp-attack-probe.cjs) through OpenClaw's exec tool, inside A's
 * sandbox: it reads its own gateway config (the proxy's URL and A's `reef-mcp-`
 * credential), then tries B's connector through its own proxy, its own
 * connector with a made-up credential, B's MCP server directly and through
 * the egress proxy, and searches every file and process environment it can
 * see for the connectors' tokens and B's proxy credential. What it achieved is
 * read from the tool results the stand-in received; what reached the MCP
 * servers, from their own records.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildApp } from "@reef/server";
import {
  addConnector,
  callNamedTool,
  chatOnce,
  createTestDatabase,
  echoReply,
  expectStatus,
  type HttpClient,
  hostOf,
  httpClient,
  joinWorkspace,
  type LlmStandIn,
  listenLocal,
  type McpStandIn,
  optIn,
  ownerWithAgents,
  signUp,
  silentLogger,
  startLlmStandIn,
  startMcpStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
  toolOf,
  toolResultsOf,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PROBE_SOURCE = readFileSync(new URL("./fixtures/mcp-attack-probe.cjs", import.meta.url), "utf8");
const PROVIDER_KEY = `sk-canary-${randomBytes(12).toString("hex")}`;
/** Sent by the probe with each request (as `Last-Event-ID`, which the proxy passes): its traffic, told apart. */
const PROBE_MARK = `reef-probe-${randomBytes(6).toString("hex")}`;
/** XOR-masked (see the probe): the secret's plain text never appears in the command or the transcript. */
const mask = (secret: string) => Buffer.from(Buffer.from(secret).map((c) => c ^ 0x5a)).toString("base64");

interface Probe {
  probe: string;
  ok: boolean;
  detail: string;
}

interface Side {
  wid: string;
  owner: HttpClient;
  member: HttpClient;
  /** The agent with the connector (and, in A, the shell); the other is not opted in. */
  agent: string;
  other: string;
  connectorId: string;
  slug: string;
  mcp: McpStandIn;
}

let db: TestDatabase;
let app: FastifyInstance;
let base = "";
let dataDir = "";
let llm: LlmStandIn;
let probeArgs = "";
let a: Side;
let b: Side;
let probes: Probe[] = [];
let output = "";
/** What each MCP server had received before the attack. */
const before = { a: 0, b: 0, aCalls: 0, bCalls: 0 };

beforeAll(async () => {
  const mcpA = await startMcpStandIn();
  const mcpB = await startMcpStandIn();
  llm = await startLlmStandIn({
    apiKey: PROVIDER_KEY,
    models: ["stand-in-model"],
    chunkDelayMs: 5,
    reply: echoReply,
    toolCalls: (text) => {
      if (text.includes("probe the connectors")) {
        const command = `echo ${Buffer.from(PROBE_SOURCE).toString("base64")} | base64 -d > mcp-probe.cjs && "${process.execPath}" mcp-probe.cjs ${probeArgs} 2>&1`;
        // The file search takes a while: the tool waits for it rather than backgrounding it after 10 s.
        return [{ name: "exec", arguments: { command, yieldMs: 150_000, timeoutSeconds: 170 } }];
      }
      return callNamedTool(text);
    },
  });
  db = await createTestDatabase();
  const config = testAppConfig({
    runtimeIdleTimeoutMinutes: 60,
    // Both servers are on 127.0.0.1 (private): the operator allows them for connectors only, not for egress.
    connectorAllowedHosts: [hostOf(mcpA.url), hostOf(mcpB.url)],
  });
  dataDir = config.dataDir;
  app = await buildApp({ config, database: db.database, logger: silentLogger });
  base = await listenLocal(app);

  async function side(mcp: McpStandIn, shell: boolean): Promise<Side> {
    const { owner, wid, ada: agent, bea: other } = await ownerWithAgents(app, base, llm, PROVIDER_KEY);
    if (shell) {
      // The attack is on the proxy and the sandbox, not on approvals: every command runs.
      const grant = { tools: ["shell", "files"], execPolicy: "allow" };
      await expectStatus(owner, "PATCH", `/api/v1/workspaces/${wid}/agents/${agent}`, grant, 200);
    }
    const connector = await addConnector(owner, wid, {
      name: "Tools",
      kind: "mcp",
      url: mcp.url,
      bearerToken: mcp.token,
    });
    await optIn(owner, wid, connector.id, [agent]);
    // The one who chats is an invited member, not the owner who set things up.
    const m = await signUp(app);
    const member = httpClient(base, m.client);
    await joinWorkspace(owner, wid, m.email, member, "member");
    return { wid, owner, member, agent, other, connectorId: connector.id, slug: connector.slug, mcp };
  }
  a = await side(mcpA, true);
  b = await side(mcpB, false);
}, 120_000);

afterAll(async () => {
  await stopTestApp(app, db);
  await llm?.close();
  await a?.mcp.close();
  await b?.mcp.close();
}, 120_000);

async function chat(s: Side, text: string): Promise<string> {
  return (await chatOnce(s.member, s.wid, s.agent, text)).answer;
}

function gatewayConfig(wid: string): Record<string, any> {
  return JSON.parse(readFileSync(join(dataDir, "runtimes", wid, "state/openclaw.json"), "utf8"));
}

const verdict = (name: string) => probes.find((p) => p.probe === name);

describe.runIf(process.getuid?.() === 0)("a hostile agent attacks MCP connectors from inside its sandbox", () => {
  it("both workspaces' connectors work through their own gateways (the control)", async () => {
    // Each message text gets its tool call once from the stand-in: the two differ.
    expect(await chat(b, `please call ${toolOf(b.slug, "nonce")} for B`)).toContain(b.mcp.nonce);
    expect(await chat(a, `please call ${toolOf(a.slug, "nonce")} for A`)).toContain(a.mcp.nonce);
    expect(b.mcp.calls.map((c) => c.tool)).toEqual(["nonce"]);
    expect(a.mcp.calls.map((c) => c.tool)).toEqual(["nonce"]);
  }, 240_000);

  it("the attack runs: A's agent reads its own config and probes the proxy, the servers and its disk", async () => {
    const bCredential = (gatewayConfig(b.wid).mcp.servers[b.slug].headers.Authorization as string).slice(7);
    expect(bCredential).toMatch(/^reef-mcp-/);
    const server = new URL(b.mcp.url);
    probeArgs = Buffer.from(
      JSON.stringify({
        foreignId: b.connectorId,
        mark: PROBE_MARK,
        server: { host: server.hostname, port: Number(server.port) },
        masked: {
          "b-token": mask(b.mcp.token as string),
          "a-token": mask(a.mcp.token as string),
          "b-proxy-credential": mask(bCredential),
          "provider-key": mask(PROVIDER_KEY),
        },
      }),
    ).toString("base64url");
    before.a = a.mcp.requests.length;
    before.b = b.mcp.requests.length;
    before.aCalls = a.mcp.calls.length;
    before.bCalls = b.mcp.calls.length;
    const seen = llm.requests.length;
    await chat(a, "please probe the connectors");
    output = llm.requests
      .slice(seen)
      .flatMap((r) => toolResultsOf(r.body.messages))
      .join("\n");
    expect(output, output).toContain("probe-finished");
    probes = output
      .split("\n")
      .filter((l) => l.trim().startsWith('{"probe"'))
      .map((l) => JSON.parse(l.trim()) as Probe);
    expect(verdict("probe-crashed"), output).toBeUndefined();
    // It found its config and the proxy credential in it, and its own connector answers it (controls).
    expect(verdict("config-found"), output).toMatchObject({ ok: true });
    expect(verdict("config-mcp-server")?.detail, output).toMatch(/\/mcp\/[0-9a-f-]{36} credential reef-mcp-/);
    expect(verdict("control-own-connector"), output).toMatchObject({ ok: true });
    expect(verdict("control-own-credential-in-config"), output).toMatchObject({ ok: true });
  }, 300_000);

  it("(a) B's connector through A's own proxy with A's credential: 404, B's server sees nothing", () => {
    for (const name of ["foreign-connector", "foreign-connector-path"]) {
      expect(verdict(name), output).toMatchObject({ ok: false });
      expect(verdict(name)?.detail, output).toMatch(/^404 .*NOT_FOUND/);
    }
  });

  it("(b) A's own connector with a made-up credential, or none: 401", () => {
    for (const name of ["made-up-credential", "no-credential"]) {
      expect(verdict(name), output).toMatchObject({ ok: false });
      expect(verdict(name)?.detail, output).toMatch(/^401 .*UNAUTHENTICATED/);
    }
  });

  it("(c) B's MCP server itself, bypassing Reef: no route from the sandbox, the egress proxy refuses it", () => {
    expect(verdict("direct-to-server"), output).toMatchObject({ ok: false });
    expect(verdict("direct-to-server")?.detail).toMatch(/ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|timeout/);
    expect(verdict("egress-proxy-to-server"), output).toMatchObject({ ok: false });
    expect(verdict("egress-proxy-to-server")?.detail).toMatch(/^403/);
    expect(verdict("egress-connect-to-server"), output).toMatchObject({ ok: false });
    expect(verdict("egress-connect-to-server")?.detail).toMatch(/ 403 /);
  });

  it("(d) no connector token, no other proxy credential, no provider key in any file or process it can see", () => {
    const search = verdict("search-files");
    expect(search, output).toMatchObject({ ok: true });
    // The search covered a real filesystem (the system, Node, OpenClaw, its runtime), not an empty view.
    expect(Number(/scanned (\d+) files/.exec(search?.detail ?? "")?.[1])).toBeGreaterThan(1000);
    expect(verdict("search-processes"), output).toMatchObject({ ok: true });
    for (const secret of ["b-token", "a-token", "b-proxy-credential", "provider-key"]) {
      expect(verdict(`file-has-${secret}`), output).toMatchObject({ ok: false });
      expect(verdict(`process-has-${secret}`), output).toMatchObject({ ok: false });
    }
    for (const secret of [b.mcp.token, a.mcp.token, PROVIDER_KEY]) expect(output).not.toContain(secret);
  });

  it("nothing from the attack reached either MCP server but the control call to A's own", () => {
    // Each gateway may talk to its own server meanwhile (a stream reopened): the probe marks each of its requests.
    const marked = (s: Side) => s.mcp.requests.filter((r) => r.headers["last-event-id"] === PROBE_MARK);
    expect(marked(b)).toEqual([]);
    expect(b.mcp.calls.length).toBe(before.bCalls);
    expect(b.mcp.requests.slice(before.b).filter((r) => r.rpcMethod === "initialize")).toEqual([]);
    const fromProbe = marked(a);
    expect(fromProbe.map((r) => r.rpcMethod)).toEqual(["initialize"]);
    expect(fromProbe[0]?.authorization).toBe(`Bearer ${a.mcp.token}`);
    expect(a.mcp.calls.length).toBe(before.aCalls);
  });
});
