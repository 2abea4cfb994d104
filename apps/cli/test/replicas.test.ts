/**
 * Two real `reef start` processes on one Postgres, behind a local haproxy
 * (round robin, no stickiness), with the process driver, real sandboxed
 * OpenClaw gateways and the LLM stand-in: a session signed in through the proxy
 * works on both; a rate limit is one limit across both; a first message reaching
 * both at once starts one gateway; Stop sent to one replica stops the answer the
 * other relays at once (LISTEN/NOTIFY, not its next heartbeat); and after a
 * `kill -9` of one, every write it acknowledged is there, its answer in flight
 * ends cut off with its text kept, and the survivor brings the workspace's
 * gateway (which died with it) back for the next message.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type ApiClient,
  createTestDatabase,
  freePort,
  type HttpClient,
  httpClient,
  type LlmStandIn,
  type ReceivedEvent,
  readEvents,
  startLlmStandIn,
  type TestDatabase,
  textOf,
} from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, startReef, tempDataDir, waitFor } from "./reef-process.ts";

const HAPROXY = "/usr/sbin/haproxy";
const haveHaproxy = existsSync(HAPROXY);
const haveBwrap = spawnSync("bwrap", ["--version"]).status === 0;
if (!haveHaproxy) console.warn(`replicas test skipped: no haproxy at ${HAPROXY} (apt-get install haproxy)`);
if (!haveBwrap) console.warn("replicas test skipped: no bubblewrap, so gateways would not die with their Reef");

const LLM_KEY = `sk-replicas-${randomBytes(8).toString("hex")}`;
/** Sign-in attempts one address gets per window, across every replica. */
const LOGIN_IP_LIMIT = 6;
const GENEROUS = "100000/1m";
/** How often a turn beats (the chat service's default): without a NOTIFY, a Stop elsewhere waits for it. */
const HEARTBEAT_MS = 5_000;
/** Between two words of a slow answer: well past a heartbeat, so no save reads the Stop before one. */
const SLOW_CHUNK_MS = 12_000;
const SLOW_WORDS = "alpha beta gamma";
/** A gateway's cold start: 5-20 s here, but minutes on a machine busy with other work. */
const START_MS = 240_000;

type Replica = Awaited<ReturnType<typeof startReef>> & { name: "a" | "b"; dataDir: string };

let db: TestDatabase;
let fast: LlmStandIn;
let slow: LlmStandIn;
let proxyUrl = "";
let proxy: ReturnType<typeof spawn> | undefined;
const replicas: Replica[] = [];
const dirs: string[] = [];

/** A person: their session through the proxy and straight to each replica. */
interface Person {
  email: string;
  wid: string;
  via: HttpClient;
  a: HttpClient;
  b: HttpClient;
}
let owner: Person;
let carol: Person;
let ada = "";
let sly = "";
/** What every replica is started with. */
let replicaEnv: Record<string, string> = {};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function replica(name: "a" | "b"): Replica {
  const r = replicas.find((x) => x.name === name);
  if (!r) throw new Error(`no replica ${name}`);
  return r;
}

/** Signs up through the proxy; the session's cookies then work on either replica. */
async function signUpVia(name: string): Promise<Person> {
  const email = `${name.toLowerCase()}-${randomBytes(4).toString("hex")}@example.test`;
  const res = await fetch(`${proxyUrl}/api/v1/auth/signup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: "correct horse battery", name }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  const cookies = new Map<string, string>();
  for (const c of res.headers.getSetCookie()) {
    const pair = c.split(";")[0] ?? "";
    const at = pair.indexOf("=");
    if (at > 0) cookies.set(pair.slice(0, at), pair.slice(at + 1));
  }
  const body = (await res.json()) as { workspace: { id: string } };
  // httpClient reads only the cookie jar of the client it is given.
  const jar = { cookies } as unknown as ApiClient;
  return {
    email,
    wid: body.workspace.id,
    via: httpClient(proxyUrl, jar),
    a: httpClient(replica("a").url, jar),
    b: httpClient(replica("b").url, jar),
  };
}

async function created(h: HttpClient, path: string, body: unknown): Promise<string> {
  const res = await h.json("POST", path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

const sessionsPath = () => `/api/v1/workspaces/${owner.wid}/sessions`;

interface Message {
  id: number;
  role: string;
  content: string;
  status: string;
  errorCode?: string | null;
}
async function history(h: HttpClient, sid: string): Promise<Message[]> {
  const res = await h.json("GET", `${sessionsPath()}/${sid}/messages`);
  expect(res.status).toBe(200);
  return res.body.items as Message[];
}

/** The sandboxes of workspace `wid`'s gateways, by pid: outermost bubblewrap processes (it forks its own init). */
async function gatewaySandboxes(wid: string): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (!cmd.split("\0")[0]?.endsWith("bwrap") || !cmd.includes(wid)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
  }
  return [...parents].filter(([, ppid]) => !parents.has(ppid)).map(([pid]) => pid);
}

async function runtimeRow() {
  const { rows } = await db.owner.query("select state, handle, restarts from runtimes where workspace_id = $1", [
    owner.wid,
  ]);
  return rows[0] as { state: string; handle: { dir?: string } | null; restarts: number } | undefined;
}

async function audited(action: string): Promise<number> {
  const { rows } = await db.owner.query(
    "select count(*)::int as n from audit_log where workspace_id = $1 and action = $2",
    [owner.wid, action],
  );
  return rows[0].n as number;
}

function finalEvent(events: ReceivedEvent[]) {
  return events.at(-1);
}

beforeAll(async () => {
  if (!haveHaproxy || !haveBwrap) return;
  fast = await startLlmStandIn({ apiKey: LLM_KEY, models: ["stand-in-model"] });
  slow = await startLlmStandIn({
    apiKey: LLM_KEY,
    models: ["stand-in-model"],
    chunkDelayMs: SLOW_CHUNK_MS,
    reply: () => SLOW_WORDS,
  });
  db = await createTestDatabase();
  const proxyPort = await freePort();
  proxyUrl = `http://127.0.0.1:${proxyPort}`;
  const env = {
    DATABASE_URL: db.ownerUrl,
    // The run's app role and password: re-keying the cluster-wide role would break the other test files.
    REEF_DATABASE_APP_URL: db.appUrl,
    REEF_SECRET_KEY: randomBytes(32).toString("base64"),
    REEF_PUBLIC_URL: proxyUrl,
    REEF_PROVIDER_ALLOWED_HOSTS: "127.0.0.1",
    REEF_RUNTIME_IDLE_TIMEOUT_MINUTES: "60",
    REEF_RUNTIME_START_TIMEOUT_SECONDS: String(START_MS / 1000),
    REEF_RATE_LIMIT_LOGIN_IP: `${LOGIN_IP_LIMIT}/15m`,
    REEF_RATE_LIMIT_LOGIN_ACCOUNT: GENEROUS,
    REEF_RATE_LIMIT_SIGNUP_IP: GENEROUS,
    REEF_RATE_LIMIT_INVITE_ACCEPT: GENEROUS,
    REEF_RATE_LIMIT_API_READ: GENEROUS,
    REEF_RATE_LIMIT_API_WRITE: GENEROUS,
  };
  replicaEnv = env;
  const started = await Promise.all(
    (["a", "b"] as const).map(async (name) => {
      const dataDir = await tempDataDir();
      dirs.push(dataDir);
      const r = await startReef({ ...env, REEF_DATA_DIR: dataDir }, 60_000);
      return { ...r, name, dataDir };
    }),
  );
  replicas.push(...started);
  const cfg = join(replica("a").dataDir, "haproxy.cfg");
  const server = (r: Replica) => `  server ${r.name} ${new URL(r.url).host} check inter 500ms fall 2 rise 1`;
  await writeFile(
    cfg,
    [
      "defaults",
      "  mode http",
      "  timeout connect 2s",
      "  timeout client 120s",
      "  timeout server 120s",
      "  retries 2",
      "  option redispatch",
      "frontend reef",
      `  bind 127.0.0.1:${proxyPort}`,
      "  default_backend replicas",
      "backend replicas",
      "  balance roundrobin",
      "  option httpchk GET /readyz",
      "  http-response set-header X-Backend %s",
      server(replica("a")),
      server(replica("b")),
      "",
    ].join("\n"),
  );
  proxy = spawn(HAPROXY, ["-f", cfg, "-db"], { stdio: ["ignore", "ignore", "pipe"] });
  let proxyErr = "";
  proxy.stderr?.on("data", (c: Buffer) => {
    proxyErr += c.toString();
  });
  await waitFor(async () => {
    if (proxy?.exitCode !== null) throw new Error(`haproxy exited: ${proxyErr}`);
    return (await fetch(`${proxyUrl}/readyz`).catch(() => undefined))?.status === 200;
  }, 15_000);

  owner = await signUpVia("Owner");
  carol = await signUpVia("Carol");
  const invite = await owner.via.json("POST", `/api/v1/workspaces/${owner.wid}/invites`, {
    email: carol.email,
    role: "member",
  });
  expect(invite.status).toBe(201);
  expect((await carol.via.json("POST", `/api/v1/invites/${invite.body.token}/accept`)).status).toBe(200);
  const provider = (name: string, llm: LlmStandIn) =>
    created(owner.via, `/api/v1/workspaces/${owner.wid}/providers`, {
      name,
      kind: "openai-compatible",
      baseUrl: llm.baseUrl,
      apiKey: LLM_KEY,
    });
  const agent = (name: string, providerId: string) =>
    created(owner.via, `/api/v1/workspaces/${owner.wid}/agents`, { name, providerId, model: "stand-in-model" });
  ada = await agent("Ada", await provider("Stand-in", fast));
  sly = await agent("Sly", await provider("Slow vendor", slow));
}, 150_000);

afterAll(async () => {
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGINT");
  await Promise.all(replicas.map((r) => Promise.race([r.exited, sleep(30_000)])));
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
  proxy?.kill("SIGTERM");
  await fast?.close();
  await slow?.close();
  await db?.drop();
  for (const d of dirs) await rm(d, { recursive: true, force: true }).catch(() => {});
}, 90_000);

describe.skipIf(!haveHaproxy || !haveBwrap)("two Reef replicas on one Postgres behind haproxy", () => {
  it("a session signed in through the proxy works on both replicas, which both serve its requests", async () => {
    const served = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      const res = await owner.via.json("GET", "/api/v1/me");
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).toContain(owner.email);
      const backend = res.headers.get("x-backend") ?? "?";
      served.set(backend, (served.get(backend) ?? 0) + 1);
    }
    expect([...served.keys()].sort()).toEqual(["a", "b"]);
    for (const direct of [owner.a, owner.b]) expect((await direct.json("GET", "/api/v1/me")).status).toBe(200);
    // A write on one is read on the other at once.
    const sid = await created(owner.a, sessionsPath(), { agentId: ada, title: "Made on a" });
    expect((await owner.b.json("GET", `${sessionsPath()}/${sid}`)).body.title).toBe("Made on a");
  });

  it("a rate limit is one limit across replicas", async () => {
    const login = (r: Replica) =>
      fetch(`${r.url}/api/v1/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: owner.email, password: "not the password at all" }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < LOGIN_IP_LIMIT; i++) statuses.push((await login(replica(i % 2 ? "b" : "a"))).status);
    expect(statuses).toEqual(Array(LOGIN_IP_LIMIT).fill(401));
    // Each replica alone saw only half the allowance used, yet both refuse.
    for (const r of replicas) {
      const res = await login(r);
      expect(res.status).toBe(429);
      expect(((await res.json()) as { code: string }).code).toBe("RATE_LIMITED");
    }
  });

  it(
    "two members' first messages reaching both replicas at once start one gateway",
    async () => {
      const sOwner = await created(owner.via, sessionsPath(), { agentId: ada });
      const sCarol = await created(carol.via, sessionsPath(), { agentId: ada });
      const send = async (h: HttpClient, sid: string, text: string) => {
        const res = await h.send(owner.wid, sid, text);
        expect(res.status).toBe(200);
        return readEvents(res);
      };
      const [one, two] = await Promise.all([
        send(owner.a, sOwner, "hello from the owner on a"),
        send(carol.b, sCarol, "hello from carol on b"),
      ]);
      expect(finalEvent(one)?.event, JSON.stringify(one)).toBe("done");
      expect(finalEvent(two)?.event, JSON.stringify(two)).toBe("done");
      expect(textOf(one)).toContain("hello from the owner on a");
      expect(textOf(two)).toContain("hello from carol on b");
      expect(await audited("runtime.start")).toBe(1);
      expect(await audited("runtime.ready")).toBe(1);
      expect(await gatewaySandboxes(owner.wid)).toHaveLength(1);
      expect(await runtimeRow()).toMatchObject({ state: "running", restarts: 0 });
    },
    START_MS + 30_000,
  );

  it("Stop sent to one replica stops the answer the other relays at once, keeping its text", async () => {
    const sid = await created(owner.via, sessionsPath(), { agentId: sly });
    const res = await owner.a.send(owner.wid, sid, "tell me slowly");
    expect(res.status).toBe(200);
    let sawDelta!: () => void;
    const delta = new Promise<void>((r) => {
      sawDelta = r;
    });
    let endedAt = 0;
    const reading = readEvents(res, {
      stopWhen: (e) => {
        if (e.event === "delta") sawDelta();
        if (e.event === "done" || e.event === "error") endedAt = Date.now();
        return false;
      },
    });
    await delta;
    // Right after a heartbeat of the answer's row: the next is 5 s away, the next word further.
    const beat = async () =>
      (
        await db.owner.query(
          "select heartbeat_at from chat_messages where session_id = $1 and role = 'assistant' and status = 'streaming'",
          [sid],
        )
      ).rows[0]?.heartbeat_at?.getTime() as number | undefined;
    const before = await beat();
    await waitFor(async () => (await beat()) !== before, 2 * HEARTBEAT_MS);
    const beatAt = (await beat()) ?? 0;
    const stop = await owner.b.json("POST", `${sessionsPath()}/${sid}/abort`);
    expect(stop.status, JSON.stringify(stop.body)).toBe(200);
    expect(stop.body).toMatchObject({ aborted: true });
    const events = await reading;
    const took = endedAt - beatAt;
    console.info(`Stop on b ended the answer relayed by a ${took} ms after its last heartbeat`);
    expect(finalEvent(events)).toMatchObject({ event: "done", data: { status: "aborted" } });
    // Before a would have read the mark itself (its next heartbeat; the next word is later still).
    expect(took).toBeLessThan(HEARTBEAT_MS - 1_000);
    const answer = (await history(owner.b, sid)).at(-1);
    expect(answer).toMatchObject({ role: "assistant", status: "aborted" });
    expect(answer?.content).toMatch(/^alpha/);
    expect(answer?.content).not.toContain("gamma");
  }, 60_000);

  it(
    "kill -9 of a replica loses no acknowledged write, cuts its answer off with its text, and the survivor restarts the gateway",
    async () => {
      // The replica whose sandbox runs the workspace's gateway dies; the other survives.
      const dir = (await runtimeRow())?.handle?.dir ?? "";
      const victim = replicas.find((r) => dir.startsWith(r.dataDir));
      expect(victim, `gateway dir ${dir}`).toBeDefined();
      if (!victim) return;
      const survivor = replica(victim.name === "a" ? "b" : "a");
      const on = (p: Person) => (survivor.name === "a" ? p.a : p.b);
      const gatewaysBefore = await gatewaySandboxes(owner.wid);
      expect(gatewaysBefore).toHaveLength(1);

      // An answer the victim relays, with some text saved.
      const inflight = await created(owner.via, sessionsPath(), { agentId: sly });
      const victimClient = victim.name === "a" ? owner.a : owner.b;
      const res = await victimClient.send(owner.wid, inflight, "slowly, before the crash");
      expect(res.status).toBe(200);
      const cut = readEvents(res).catch(() => []);
      let saved = "";
      await waitFor(async () => {
        saved = (await history(on(owner), inflight)).at(-1)?.content ?? "";
        return saved !== "";
      }, 3 * SLOW_CHUNK_MS);

      // Writes through the proxy while it dies: each acknowledged one must survive.
      const acknowledged: string[] = [];
      let writing = true;
      const writer = async (n: number) => {
        for (let i = 0; writing; i++) {
          const r = await owner.via
            .json("POST", sessionsPath(), { agentId: ada, title: `write ${n}-${i}` })
            .catch(() => undefined);
          if (r?.status === 201) acknowledged.push(r.body.id);
        }
      };
      const writers = [writer(1), writer(2), writer(3)];
      await sleep(500);
      victim.child.kill("SIGKILL");
      await victim.exited;
      await sleep(1_500);
      writing = false;
      await Promise.all(writers);
      expect(acknowledged.length).toBeGreaterThan(5);
      await cut;

      // Its gateway died with it (the sandbox dies with its parent).
      await waitFor(async () => !gatewaysBefore.some(alive), 10_000);

      // The survivor brings a gateway back for the next message.
      const fresh = await created(carol.via, sessionsPath(), { agentId: ada });
      const again = await on(carol).send(owner.wid, fresh, "are you back?");
      expect(again.status).toBe(200);
      const events = await readEvents(again);
      expect(finalEvent(events)?.event, JSON.stringify(events)).toBe("done");
      expect(textOf(events)).toContain("are you back?");
      const row = await runtimeRow();
      expect(row?.state).toBe("running");
      expect(row?.handle?.dir?.startsWith(survivor.dataDir)).toBe(true);
      expect(await gatewaySandboxes(owner.wid)).toHaveLength(1);
      expect(await audited("runtime.crash")).toBeGreaterThanOrEqual(1);
      expect(await audited("runtime.integrity_failure")).toBe(0);

      // Every write the dead replica (or the survivor) acknowledged is there.
      for (const id of acknowledged) expect((await on(owner).json("GET", `${sessionsPath()}/${id}`)).status).toBe(200);

      // The answer it was relaying ends cut off once its heartbeat is stale, keeping what it said.
      await expect
        .poll(async () => (await history(on(owner), inflight)).at(-1)?.status, { timeout: 60_000, interval: 1_000 })
        .toBe("interrupted");
      const answer = (await history(on(owner), inflight)).at(-1);
      expect(answer).toMatchObject({ role: "assistant", errorCode: "INTERRUPTED" });
      expect(saved).toMatch(/^alpha/);
      expect(answer?.content.startsWith(saved)).toBe(true);
      expect(answer?.content).not.toContain("gamma");
      // A new message in that session is taken again.
      const next = await on(owner).send(owner.wid, inflight, "still there?");
      expect(next.status).toBe(200);
      await next.body?.cancel();
    },
    START_MS + 90_000,
  );

  it("a replica shutting down stops the gateways it started, never another replica's", async () => {
    const gateways = await gatewaySandboxes(owner.wid);
    expect(gateways).toHaveLength(1);
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const late = await startReef({ ...replicaEnv, REEF_DATA_DIR: dataDir }, 60_000);
    late.child.kill("SIGTERM");
    await late.exited;
    expect(gateways.every(alive)).toBe(true);
    expect(await runtimeRow()).toMatchObject({ state: "running" });
  }, 120_000);
});
