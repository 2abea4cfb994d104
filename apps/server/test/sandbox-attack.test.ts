/**
 * The sandbox, attacked. Real Postgres, real OpenClaw gateways (process driver,
 * as root: each workspace its own OS user) and the LLM stand-in, which makes a
 * shell-enabled agent of one workspace run a hostile script (fixtures/
 * hostile-probe.cjs) through OpenClaw's own exec tool. The script tries to read
 * Reef's root key, the Postgres password file, another workspace's gateway
 * config and transcript and the environments of Reef and of that gateway; to
 * write outside its runtime; to connect to the other gateway, Postgres and
 * Reef's API; to reach an outside address directly and through Reef's egress
 * proxy; and to bind a port Reef might be fooled into reaching. What it
 * achieved is read from the tool results the stand-in receives. Each workspace
 * has two agents and two members; the attacker is a member, not the owner.
 *
 * Run twice: sandboxed, every attempt fails; with the sandbox switched off (a
 * test-only switch), the network attempts succeed, so the test can fail.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, connect as netConnect, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { buildApp, servicesOf } from "@reef/server";
import {
  type ApiClient,
  createTestDatabase,
  type LlmStandIn,
  readEvents,
  signUp,
  startLlmStandIn,
  type TestDatabase,
  testAppConfig,
  textOf,
  toolResultsOf,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const asRoot = process.getuid?.() === 0;
const PROBE_SOURCE = readFileSync(new URL("./fixtures/hostile-probe.cjs", import.meta.url), "utf8");

/** A non-loopback address of this machine: "outside" as seen from a sandbox (none: that probe is skipped). */
function outsideAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

/** Every file under `dir` whose bytes contain `needle` (unreadable entries skipped). */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    try {
      if (statSync(path).size > 50 * 1024 * 1024) continue;
      if (readFileSync(path).includes(needle)) found.push(path);
    } catch {}
  }
  return found;
}

function reaches(port: number): Promise<string | false> {
  return new Promise((resolve) => {
    const s = netConnect({ host: "127.0.0.1", port });
    let got = "";
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
    s.on("data", (d) => {
      got += d;
    });
    s.on("end", () => resolve(got || "connected"));
    s.on("error", () => resolve(false));
  });
}

interface Probe {
  probe: string;
  ok: boolean;
  detail: string;
}

describe.runIf(asRoot).each([
  { sandboxed: true, label: "sandboxed" },
  { sandboxed: false, label: "sandbox switched off (control)" },
])("a hostile agent with shell and files, $label", ({ sandboxed }) => {
  const CANARY = `sk-canary-${randomBytes(12).toString("hex")}`;
  const external = outsideAddress();
  let db: TestDatabase;
  let app: FastifyInstance;
  let llm: LlmStandIn;
  let reefPort = 0;
  let dataDir = "";
  let outside: Server | undefined;
  let outsidePort = 0;
  let probeArgs = "";
  let probes: Probe[] = [];
  let output = "";
  let bindPort = 0;
  const nonce = randomBytes(6).toString("hex");
  const secrets = { rootKey: "", postgresPassword: "", otherToken: "", otherTranscriptWords: "" };

  beforeAll(async () => {
    llm = await startLlmStandIn({
      apiKey: CANARY,
      models: ["stand-in-model"],
      reply: (text, results) => (results.length ? `Saw: ${results.join(" | ")}` : `Stand-in reply to: ${text}`),
      toolCalls: (text) =>
        text.includes("probe the host")
          ? [
              {
                name: "exec",
                arguments: {
                  command: `echo ${Buffer.from(PROBE_SOURCE).toString("base64")} | base64 -d > probe.cjs && "${process.execPath}" probe.cjs ${probeArgs} 2>&1`,
                },
              },
            ]
          : undefined,
    });
    outside = createServer((s) => {
      // A tunnel torn down by the proxy may reset the connection: not this test's concern.
      s.on("error", () => {});
      s.end("OUTSIDE");
    });
    await new Promise<void>((r) => outside?.listen(0, external ?? "127.0.0.1", r));
    outsidePort = (outside.address() as { port: number }).port;
    db = await createTestDatabase();
    const config = testAppConfig({
      runtimeIdleTimeoutMinutes: 60,
      // The operator allows one outside host for web tools: reachable through the proxy only.
      egressAllowedHosts: external ? [`${external}:${outsidePort}`] : [],
    });
    dataDir = config.dataDir;
    app = await buildApp({
      config,
      database: db.database,
      logger: (await import("@reef/testing")).silentLogger,
      unsandboxedRuntimesForTests: !sandboxed,
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    reefPort = (app.server.address() as { port: number }).port;
  }, 60_000);

  afterAll(async () => {
    await servicesOf(app).runtimeManager.stopAll("test over");
    await app.close();
    await db.drop();
    await llm.close();
    outside?.close();
    for (const f of [`/tmp/reef-pwned-${nonce}`]) rmSync(f, { force: true });
  }, 120_000);

  function http(client: ApiClient) {
    const headers = () => {
      const h: Record<string, string> = { "content-type": "application/json" };
      h.cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
      const csrf = client.cookies.get("reef_csrf");
      if (csrf) h["x-csrf-token"] = csrf;
      return h;
    };
    const base = () => `http://127.0.0.1:${reefPort}`;
    return {
      async json(method: string, path: string, body?: unknown) {
        const res = await fetch(base() + path, {
          method,
          headers: headers(),
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      },
      async chat(wid: string, sid: string, text: string) {
        const res = await fetch(`${base()}/api/v1/workspaces/${wid}/sessions/${sid}/messages`, {
          method: "POST",
          headers: headers(),
          body: JSON.stringify({ text }),
        });
        expect(res.status).toBe(200);
        return readEvents(res);
      },
    };
  }

  async function workspace(tools: ("shell" | "files")[] = []) {
    const p = await signUp(app);
    const h = http(p.client);
    const wid = p.workspaceId;
    const provider = await h.json("POST", `/api/v1/workspaces/${wid}/providers`, {
      name: "Stand-in",
      kind: "openai-compatible",
      baseUrl: llm.baseUrl,
      apiKey: CANARY,
    });
    expect(provider.status, JSON.stringify(provider.body)).toBe(201);
    const agent = await h.json("POST", `/api/v1/workspaces/${wid}/agents`, {
      name: "Ada",
      providerId: provider.body.id,
      model: "stand-in-model",
    });
    expect(agent.status, JSON.stringify(agent.body)).toBe(201);
    if (tools.length) {
      // The attack is on the sandbox, not on approvals: every command runs.
      const grant = await h.json("PATCH", `/api/v1/workspaces/${wid}/agents/${agent.body.id}`, {
        tools,
        execPolicy: "allow",
      });
      expect(grant.status, JSON.stringify(grant.body)).toBe(200);
    }
    // A second agent, without tools: the gateway serves both, as real workspaces' do.
    const second = await h.json("POST", `/api/v1/workspaces/${wid}/agents`, {
      name: "Bea",
      providerId: provider.body.id,
      model: "stand-in-model",
    });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    // The one who chats is an invited member, not the owner who granted the tools.
    const member = await signUp(app);
    const mh = http(member.client);
    const invite = await h.json("POST", `/api/v1/workspaces/${wid}/invites`, { email: member.email, role: "member" });
    expect(invite.status, JSON.stringify(invite.body)).toBe(201);
    expect((await mh.json("POST", `/api/v1/invites/${invite.body.token}/accept`)).status).toBe(200);
    const session = await mh.json("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId: agent.body.id });
    expect(session.status).toBe(201);
    return { wid, h: mh, sid: session.body.id as string, agentId: agent.body.id as string };
  }

  it("the attack runs: the victim chats, the attacker's agent runs its script inside its own gateway", async () => {
    // Secrets on the host, where `reef start` keeps them (0600, Reef's own user).
    secrets.rootKey = randomBytes(32).toString("base64");
    secrets.postgresPassword = randomBytes(18).toString("base64url");
    mkdirSync(join(dataDir, "postgres"), { recursive: true });
    writeFileSync(join(dataDir, "secret.key"), secrets.rootKey, { mode: 0o600 });
    writeFileSync(join(dataDir, "postgres", "superuser.password"), secrets.postgresPassword, { mode: 0o600 });

    // The victim: another workspace whose gateway runs and has a transcript.
    const victim = await workspace();
    secrets.otherTranscriptWords = `victim-secret-${nonce}`;
    const said = await victim.h.chat(victim.wid, victim.sid, `remember ${secrets.otherTranscriptWords}`);
    expect(textOf(said)).toContain("Stand-in reply to");
    const handle = await servicesOf(app).runtimeManager.handle(victim.wid);
    const state = (handle as unknown as { state: { pid: number; port: number; dir: string; socket?: string } }).state;
    const victimConfig = join(state.dir, "state", "openclaw.json");
    secrets.otherToken = JSON.parse(readFileSync(victimConfig, "utf8")).gateway.auth.token;
    // OpenClaw keeps the conversation in its state (a transcript file or its SQLite database).
    const transcript = filesContaining(state.dir, secrets.otherTranscriptWords)[0];
    expect(transcript, "the victim's gateway keeps the conversation on its disk").toBeDefined();

    // The attacker: a workspace whose admin granted shell and files, and a member who asks.
    const attacker = await workspace(["shell", "files"]);
    bindPort = 41_000 + Math.floor(Math.random() * 2000);
    const { rows } = await db.owner.query("select inet_server_port() as port");
    probeArgs = Buffer.from(
      JSON.stringify({
        rootKeyFile: join(dataDir, "secret.key"),
        postgresPasswordFile: join(dataDir, "postgres", "superuser.password"),
        otherConfig: victimConfig,
        otherTranscript: transcript,
        reefPid: process.pid,
        otherGatewayPid: state.pid,
        writeDataDir: join(dataDir, `pwned-${nonce}`),
        writeOtherRuntime: join(state.dir, `pwned-${nonce}`),
        writeHostTmp: `/tmp/reef-pwned-${nonce}`,
        otherGatewayPort: sandboxed ? undefined : state.port,
        otherGatewaySocket: join(state.dir, "sock", "gateway.sock"),
        postgresPort: Number(rows[0]?.port),
        reefPort,
        external: { host: external ?? "127.0.0.1", port: outsidePort },
        bindPort,
      }),
    ).toString("base64url");
    const before = llm.requests.length;
    const events = await attacker.h.chat(attacker.wid, attacker.sid, "please probe the host");
    expect(events.at(-1)?.event, JSON.stringify(events.at(-1))).toBe("done");
    output = llm.requests
      .slice(before)
      .flatMap((r) => toolResultsOf(r.body.messages))
      .join("\n");
    expect(output, output).toContain("probe-finished");
    probes = output
      .split("\n")
      .filter((l) => l.trim().startsWith('{"probe"'))
      .map((l) => JSON.parse(l.trim()) as Probe);
    expect(probes.length, output).toBeGreaterThanOrEqual(15);
  }, 300_000);

  const verdict = (name: string) => probes.find((p) => p.probe === name);

  it("no secret of the host or of another workspace reaches the agent", () => {
    for (const secret of Object.values(secrets)) expect(output).not.toContain(secret);
    expect(output).not.toContain(CANARY);
    for (const name of [
      "read-root-key",
      "read-postgres-password",
      "read-other-gateway-config",
      "read-other-transcript",
      "read-reef-environ",
      "read-other-gateway-environ",
      "write-data-dir",
      "write-other-runtime",
    ]) {
      expect(verdict(name)?.ok, `${name}: ${JSON.stringify(verdict(name))}`).toBe(false);
    }
    expect(existsSync(join(dataDir, `pwned-${nonce}`))).toBe(false);
  });

  it(
    sandboxed
      ? "the network is closed: no other gateway, no Postgres, no Reef API, no direct way out, no shared /tmp"
      : "without the sandbox the same attempts succeed (the control)",
    async () => {
      const network = [
        "connect-postgres",
        "connect-reef-api",
        ...(sandboxed ? [] : ["connect-other-gateway-port"]),
        ...(external ? ["connect-external-directly"] : []),
      ];
      for (const name of network) {
        expect(verdict(name)?.ok, `${name}: ${JSON.stringify(verdict(name))}`).toBe(!sandboxed);
      }
      expect(verdict("connect-other-gateway-socket")?.ok).toBe(false);
      expect(verdict("write-host-tmp")?.ok && existsSync(`/tmp/reef-pwned-${nonce}`)).toBe(!sandboxed);
      // The port the agent bound: Reef (and anything on the host) reaches it only without the sandbox.
      expect(await reaches(bindPort)).toBe(sandboxed ? false : "HIJACK");
    },
  );

  it.runIf(sandboxed)(
    "the only way out is Reef's egress proxy: loopback refused, the operator's allowed host reachable, refusals counted",
    () => {
      expect(verdict("proxy-to-postgres"), output).toMatchObject({ ok: false });
      expect(verdict("proxy-to-postgres")?.detail).toMatch(/403/);
      expect(verdict("proxy-to-reef-api")?.detail).toMatch(/403/);
      if (external) expect(verdict("proxy-to-external"), output).toMatchObject({ ok: true });
    },
  );
});
