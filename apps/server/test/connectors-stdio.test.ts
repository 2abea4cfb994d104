/**
 * Catalogue (stdio) connectors end to end: real Postgres, a real sandboxed
 * OpenClaw gateway, the LLM stand-in and a stdio MCP server from the
 * operator's servers directory (REEF_MCP_SERVERS_DIR, mounted read-only into
 * every sandbox). A workspace admin adds the catalogue entry, opts one of two
 * agents in; the model calls the server's tool through the gateway and its
 * nonce reaches the answer and the trace. The server ran inside the sandbox
 * as the gateway's own user (not root), without network, unable to change
 * its own script; the other agent cannot call it, and the catalogue's
 * command is in no API response.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeUserName, sandboxCommandProblem } from "@reef/runtime";
import { buildApp } from "@reef/server";
import {
  addConnector,
  chatOnce,
  createTestDatabase,
  type HttpClient,
  type LlmStandIn,
  listenLocal,
  optIn,
  ownerWithAgents,
  recordingLogger,
  startToolCallingStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PROVIDER_KEY = `sk-canary-${randomBytes(12).toString("hex")}`;
const NONCE = `stdio-nonce-${randomBytes(8).toString("hex")}`;
const asRoot = process.getuid?.() === 0;

let db: TestDatabase;
let app: FastifyInstance;
let base = "";
let llm: LlmStandIn;
let serversDir = "";
let catalogFile = "";
let nodeCommand = "";
const logLines: string[] = [];
const responses: string[] = [];

let h: HttpClient;
let wid = "";
let ada = "";
let bea = "";
let connectorId = "";
let slug = "";

/**
 * The operator's layout: a servers directory (0755, root's, nothing in it
 * writable by others) with one server, and a catalogue naming it. The server
 * runs on `node` from the sandbox's PATH when the host has one under /usr;
 * else on a copy of this Node in the servers directory (what an operator
 * without a system Node does).
 */
function operatorSetUp(): void {
  serversDir = mkdtempSync(join(tmpdir(), "reef-mcp-servers-"));
  chmodSync(serversDir, 0o755);
  mkdirSync(join(serversDir, "whoami"), { mode: 0o755 });
  const script = join(serversDir, "whoami", "server.cjs");
  copyFileSync(join(import.meta.dirname, "fixtures", "mcp-stdio-whoami.cjs"), script);
  chmodSync(script, 0o644);
  nodeCommand = "node";
  if (sandboxCommandProblem("node", serversDir)) {
    mkdirSync(join(serversDir, "bin"), { mode: 0o755 });
    nodeCommand = join(serversDir, "bin", "node");
    copyFileSync(process.execPath, nodeCommand);
    chmodSync(nodeCommand, 0o755);
  }
  catalogFile = join(mkdtempSync(join(tmpdir(), "reef-mcp-catalog-")), "catalog.json");
  writeFileSync(
    catalogFile,
    JSON.stringify([
      {
        id: "whoami",
        name: "Who am I",
        description: "Says which user the workspace's runtime runs it as.",
        command: nodeCommand,
        args: [script, NONCE],
      },
    ]),
  );
}

beforeAll(async () => {
  operatorSetUp();
  llm = await startToolCallingStandIn(PROVIDER_KEY);
  db = await createTestDatabase();
  const config = testAppConfig({
    runtimeIdleTimeoutMinutes: 60,
    mcpCatalogFile: catalogFile,
    mcpServersDir: serversDir,
  });
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

  ({ id: connectorId, slug } = await addConnector(h, wid, {
    name: "Who am I",
    kind: "catalog",
    catalogEntryId: "whoami",
  }));
  await optIn(h, wid, connectorId, [ada]);
}, 90_000);

afterAll(async () => {
  await stopTestApp(app, db);
  await llm?.close();
  if (serversDir) rmSync(serversDir, { recursive: true, force: true });
  if (catalogFile) rmSync(join(catalogFile, ".."), { recursive: true, force: true });
}, 120_000);

const chat = (agentId: string, text: string) => chatOnce(h, wid, agentId, text);

/** What the server reported about itself, from the text it returned. */
function reportIn(text: string): Record<string, any> {
  const m = /whoami (\{.*?"calls":\d+\})/.exec(text.replaceAll('\\"', '"'));
  expect(m, text).not.toBeNull();
  return JSON.parse(m?.[1] as string);
}

describe.runIf(asRoot)("catalogue (stdio) connectors through a real sandboxed gateway", () => {
  it("the opted-in agent calls the server's tool: its nonce reaches the answer and the trace; it ran sandboxed as the gateway's user", async () => {
    const { answer, sid } = await chat(ada, `please call ${slug}__whoami`);
    expect(answer).toContain(NONCE);
    const page = await h.json("GET", `/api/v1/workspaces/${wid}/sessions/${sid}/messages?limit=100`);
    expect(page.status).toBe(200);
    const last = page.body.items.at(-1) as { role: string; trace: { name: string; output?: string }[] };
    expect(last.role).toBe("assistant");
    expect(JSON.stringify(last.trace)).toContain(NONCE);
    expect(last.trace.map((s) => s.name)).toContain("tool_call");

    const report = reportIn(answer);
    expect(report.nonce).toBe(NONCE);
    // Reef runs as root; the server as the workspace's own OS user, like its gateway.
    const runtimeUid = Number(
      execFileSync("id", ["-u", runtimeUserName(wid)])
        .toString()
        .trim(),
    );
    expect(runtimeUid).toBeGreaterThan(0);
    expect(report.uid).toBe(runtimeUid);
    expect(report.network).toMatch(/^unreachable/);
    expect(report.script).toMatch(/^read-only \(E(ROFS|ACCES|PERM)\)$/);
    // Its directory is a read-only mount of the operator's servers directory, at the same path.
    expect(report.mount).toEqual({ isServersDir: true, readOnly: true });
    // No env of Reef's: nothing that names a database, key or secret.
    expect((report.envKeys as string[]).filter((k) => /DATABASE|SECRET|KEY|TOKEN|REEF/i.test(k))).toEqual([]);
    console.info(`stdio server report: ${JSON.stringify(report)}`);
  }, 240_000);

  it("an agent not opted in cannot call it", async () => {
    const { answer } = await chat(bea, `now call ${slug}__whoami for Bea`);
    expect(answer).not.toContain(NONCE);
    expect(answer).toMatch(/Unknown tool/i);
  }, 120_000);

  it("the workspace sees the catalogue entry, never its command, arguments or the servers directory", async () => {
    const catalog = await h.json("GET", "/api/v1/connector-catalog");
    expect(catalog.status).toBe(200);
    expect(catalog.body.items).toEqual([
      { id: "whoami", name: "Who am I", description: "Says which user the workspace's runtime runs it as." },
    ]);
    const view = await h.json("GET", `/api/v1/workspaces/${wid}/connectors/${connectorId}`);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ kind: "catalog", transport: "stdio", catalogEntryId: "whoami" });
    const list = await h.json("GET", `/api/v1/workspaces/${wid}/connectors?limit=100`);
    expect(list.status).toBe(200);
    expect(list.body.items.map((c: { id: string }) => c.id)).toEqual([connectorId]);
    expect(responses.length).toBeGreaterThan(5);
    const leaks = responses.filter(
      (r) => r.includes(serversDir) || (nodeCommand !== "node" && r.includes(nodeCommand)),
    );
    expect(leaks).toEqual([]);
    const audit = await db.owner.query("select details::text as d from audit_log");
    expect(audit.rows.filter((r) => String(r.d).includes(serversDir))).toEqual([]);
  });
});

describe("the operator's set-up is checked at start", () => {
  it("Reef refuses to start when the servers directory is writable by others, or a command is outside what a sandbox shows", async () => {
    const build = (over: Parameters<typeof testAppConfig>[0]) =>
      buildApp({
        config: testAppConfig({ mcpCatalogFile: catalogFile, mcpServersDir: serversDir, ...over }),
        database: db.database,
        logger: recordingLogger([]),
      });
    chmodSync(serversDir, 0o777);
    try {
      await expect(build({})).rejects.toThrow(/REEF_MCP_SERVERS_DIR .*writable by group or others/);
    } finally {
      chmodSync(serversDir, 0o755);
    }
    const outside = join(catalogFile, "..", "server.cjs");
    copyFileSync(join(import.meta.dirname, "fixtures", "mcp-stdio-whoami.cjs"), outside);
    chmodSync(outside, 0o755);
    const badCatalog = join(catalogFile, "..", "bad.json");
    writeFileSync(badCatalog, JSON.stringify([{ id: "x", name: "X", command: outside, args: [] }]));
    await expect(build({ mcpCatalogFile: badCatalog })).rejects.toThrow(
      /REEF_MCP_CATALOG_FILE .*entry "x": the command .* is not an executable file under \/usr or/,
    );
  });
});
