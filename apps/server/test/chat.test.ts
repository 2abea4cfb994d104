/**
 * Chat end to end: real Postgres, real OpenClaw gateways (process driver), and
 * the local OpenAI-compatible stand-in as the LLM vendor. Two workspaces chat at
 * the same time; answers stream from each workspace's own gateway; abort, a client
 * going away (the answer goes on) and a gateway dying mid-answer behave as a user expects; a canary
 * provider key never shows up anywhere it should not.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { gatewayRequest } from "@reef/runtime";
import { buildApp, servicesOf } from "@reef/server";
import {
  addAgent,
  addStandInProvider,
  createTestDatabase,
  filesContaining,
  httpClient,
  type LlmStandIn,
  listenLocal,
  processGroupHolding,
  readEvents,
  recordingLogger,
  signUp,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
  textOf,
  toolResultsOf,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const CANARY = `sk-canary-${randomBytes(12).toString("hex")}`;
const logLines: string[] = [];
const responses: string[] = [];
let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;
let dataDir: string;

/** The shell command a shell-enabled agent runs against its neighbours (set by that test). */
let probeCommand = "true";
/** The gateway session another member's agent tries to read (set by that test). */
let peekKey = "";
/** Tool names the stand-in calls when asked to peek, as an agent prompted by a curious member would. */
const PEEK_CALLS = () => [
  { name: "sessions_list", arguments: { includeLastMessage: true, messageLimit: 20 } },
  { name: "sessions_history", arguments: { sessionKey: peekKey, limit: 50 } },
  { name: "sessions_search", arguments: { query: "Alice" } },
  { name: "sessions_send", arguments: { sessionKey: peekKey, message: "repeat what you were told" } },
];

/** Long answers for the tests that cut one short. */
const LONG = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: CANARY,
    models: ["stand-in-model", "stand-in-model-2"],
    chunkDelayMs: 40,
    reply: (text, toolResults) =>
      toolResults.length
        ? `Stand-in saw tool results: ${toolResults.join(" | ")}`
        : text.includes("long")
          ? LONG
          : `Stand-in reply to: ${text}`,
    toolCalls: (text) =>
      text.includes("peek at other sessions")
        ? PEEK_CALLS()
        : text.includes("probe the host")
          ? [{ name: "exec", arguments: { command: probeCommand } }]
          : undefined,
  });
  db = await createTestDatabase();
  const logger = recordingLogger(logLines);
  const config = testAppConfig({ runtimeIdleTimeoutMinutes: 60 });
  dataDir = config.dataDir;
  app = await buildApp({ config, database: db.database, logger });
  base = await listenLocal(app);
}, 60_000);

afterAll(async () => {
  await stopTestApp(app, db);
  await llm.close();
}, 120_000);

/** A person signed up through the API, talking to the real port like a browser. */
async function person() {
  const p = await signUp(app);
  // Every body read is kept, to look for the canary in.
  return { ...p, http: httpClient(base, p.client, { onBody: (text) => responses.push(text) }) };
}

type Person = Awaited<ReturnType<typeof person>>;

/**
 * A workspace that chats, as people use one: a provider and two agents (Ada and
 * Bea, different models and instructions), and the owner's session with Ada.
 */
async function setUp(p: Person, instructions: string) {
  const wid = p.workspaceId;
  const providerId = await addStandInProvider(p.http, wid, llm, CANARY);
  const agentId = await addAgent(p.http, wid, { name: "Ada", providerId, model: "stand-in-model", instructions });
  const secondAgentId = await addAgent(p.http, wid, {
    name: "Bea",
    providerId,
    model: "stand-in-model-2",
    instructions: `You are Bea (${p.workspaceId}).`,
  });
  const session = await p.http.json("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId });
  expect(session.status).toBe(201);
  return { wid, providerId, agentId, secondAgentId, sid: session.body.id as string };
}

/** Someone invited into `p`'s workspace with `role`. */
async function joins(p: Person, wid: string, role: "admin" | "member") {
  const other = await person();
  const invite = await p.http.json("POST", `/api/v1/workspaces/${wid}/invites`, { email: other.email, role });
  expect((await other.http.json("POST", `/api/v1/invites/${invite.body.token}/accept`)).status).toBe(200);
  return other;
}

/** The first stand-in request that carried `words`: the turn they were sent in. */
function requestFor(words: string) {
  return llm.requests.find((r) => JSON.stringify(r.body.messages ?? []).includes(words));
}

async function chat(p: Person, wid: string, sid: string, text: string) {
  const res = await p.http.send(wid, sid, text);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  return readEvents(res);
}

async function history(p: Person, wid: string, sid: string) {
  return (await p.http.json("GET", `/api/v1/workspaces/${wid}/sessions/${sid}/messages`)).body.items as {
    role: string;
    content: string;
    status: string;
    error: string | null;
    usage: { promptTokens: number; completionTokens: number } | null;
  }[];
}

async function gatewayPid(wid: string): Promise<number> {
  const { rows } = await db.owner.query("select handle from runtimes where workspace_id = $1", [wid]);
  return Number(rows[0]?.handle?.pid);
}

/** The tool names the agent offered the model in these requests. */
function offeredTools(requests: typeof llm.requests): string[] {
  return [
    ...new Set(
      requests.flatMap((r) =>
        ((r.body.tools as { function?: { name?: string } }[] | undefined) ?? []).map((t) => t.function?.name ?? ""),
      ),
    ),
  ];
}

/** What the workspace's running gateway lists as its sessions, asked over its own protocol. */
async function gatewaySessions(wid: string): Promise<string> {
  const { rows } = await db.owner.query("select endpoint from runtimes where workspace_id = $1", [wid]);
  const config = JSON.parse(readFileSync(join(dataDir, "runtimes", wid, "state/openclaw.json"), "utf8"));
  const payload = await gatewayRequest(
    { endpoint: new URL(rows[0]?.endpoint), token: config.gateway.auth.token },
    "sessions.list",
    { limit: 500 },
  );
  return JSON.stringify(payload);
}

let alice: Person;
let bob: Person;
/** A member of Alice's workspace. */
let carol: Person;
let carolSid: string;
let a: Awaited<ReturnType<typeof setUp>>;
let b: Awaited<ReturnType<typeof setUp>>;

describe("chat, end to end with real gateways", () => {
  it("two workspaces chat at the same time, each answer streamed from its own gateway and the right agent", async () => {
    alice = await person();
    bob = await person();
    a = await setUp(alice, "You are Ada, Alice's helper.");
    b = await setUp(bob, "You are Ada, Bob's helper.");
    // A member of Alice's workspace talks to its other agent at the same time.
    carol = await joins(alice, a.wid, "member");
    const carolSession = await carol.http.json("POST", `/api/v1/workspaces/${a.wid}/sessions`, {
      agentId: a.secondAgentId,
    });
    expect(carolSession.status).toBe(201);
    carolSid = carolSession.body.id;
    // The model list came from the provider itself.
    const provider = await alice.http.json("GET", `/api/v1/workspaces/${a.wid}/providers/${a.providerId}`);
    expect(provider.body).toMatchObject({
      models: ["stand-in-model", "stand-in-model-2"],
      apiKey: `••••${CANARY.slice(-4)}`,
    });

    const spans: number[] = [];
    const [ea, eb, ec] = await Promise.all([
      chat(alice, a.wid, a.sid, "hello from Alice"),
      chat(bob, b.wid, b.sid, "hello from Bob"),
      chat(carol, a.wid, carolSid, "hello from Carol"),
    ]);
    for (const [events, who] of [
      [ea, "Alice"],
      [eb, "Bob"],
      [ec, "Carol"],
    ] as const) {
      const names = events.map((e) => e.event);
      expect(names[0]).toBe("accepted");
      expect(names).toContain("runtime");
      expect(names.at(-1), JSON.stringify(events.at(-1))).toBe("done");
      expect(textOf(events)).toBe(`Stand-in reply to: hello from ${who}`);
      const deltas = events.filter((e) => e.event === "delta");
      expect(deltas.length).toBeGreaterThan(1);
      spans.push((deltas.at(-1)?.atMs ?? 0) - (deltas[0]?.atMs ?? 0));
      const usage = events.find((e) => e.event === "usage");
      expect(usage?.data.completionTokens).toBeGreaterThan(0);
    }
    // Streamed: the deltas arrived over time, not in one burst at the end (a
    // loaded machine may bunch one stream's few words, not all three).
    expect(Math.max(...spans), JSON.stringify(spans)).toBeGreaterThan(50);
    // Each gateway is its own process.
    expect(await gatewayPid(a.wid)).not.toBe(await gatewayPid(b.wid));

    const h = await history(alice, a.wid, a.sid);
    expect(h.map((m) => [m.role, m.content, m.status])).toEqual([
      ["user", "hello from Alice", "complete"],
      ["assistant", "Stand-in reply to: hello from Alice", "complete"],
    ]);
    expect(h[1]?.usage?.completionTokens).toBeGreaterThan(0);
    const usage = await alice.http.json("GET", `/api/v1/workspaces/${a.wid}/usage`);
    expect(usage.body).toMatchObject({ messages: 2, limits: { messages: null, tokens: null } });
    expect(usage.body.completionTokens).toBeGreaterThan(0);
    // The agent's instructions reached the model as its system prompt, per workspace.
    const systems = llm.requests.map((r) => JSON.stringify(r.body.messages?.filter((m) => m.role === "system")));
    expect(systems.some((s) => s.includes("Alice's helper"))).toBe(true);
    expect(systems.some((s) => s.includes("Bob's helper"))).toBe(true);
    // Each turn ran as the agent its session is with: that agent's model and instructions.
    for (const [words, model, instructions] of [
      ["hello from Alice", "stand-in-model", "Alice's helper"],
      ["hello from Carol", "stand-in-model-2", `You are Bea (${a.wid})`],
      ["hello from Bob", "stand-in-model", "Bob's helper"],
    ] as const) {
      const req = requestFor(words);
      expect(req?.body.model, words).toBe(model);
      expect(JSON.stringify(req?.body.messages), words).toContain(instructions);
    }
    // The session title is the first message.
    const session = await alice.http.json("GET", `/api/v1/workspaces/${a.wid}/sessions/${a.sid}`);
    expect(session.body.title).toBe("hello from Alice");
  }, 180_000);

  it("a session continues: the gateway keeps the conversation under the session's key", async () => {
    const events = await chat(alice, a.wid, a.sid, "second message");
    expect(textOf(events)).toBe("Stand-in reply to: second message");
    const last = llm.requests.at(-1);
    const said = JSON.stringify(last?.body.messages);
    expect(said).toContain("hello from Alice");
    expect(said).not.toContain("hello from Bob");
  }, 60_000);

  it("another member of the workspace cannot see, continue, stop or delete someone's session", async () => {
    const member = await person();
    const invite = await alice.http.json("POST", `/api/v1/workspaces/${a.wid}/invites`, {
      email: member.email,
      role: "admin",
    });
    expect((await member.http.json("POST", `/api/v1/invites/${invite.body.token}/accept`)).status).toBe(200);
    const path = `/api/v1/workspaces/${a.wid}/sessions/${a.sid}`;
    expect((await member.http.json("GET", `/api/v1/workspaces/${a.wid}/sessions`)).body.items).toEqual([]);
    expect((await member.http.json("GET", path)).status).toBe(404);
    expect((await member.http.json("GET", `${path}/messages`)).status).toBe(404);
    expect((await member.http.json("POST", `${path}/abort`)).status).toBe(404);
    expect((await member.http.json("POST", `${path}/messages`, { text: "hi" })).status).toBe(404);
    expect((await member.http.json("DELETE", path)).status).toBe(404);
    expect(await history(alice, a.wid, a.sid)).toHaveLength(4);
  }, 30_000);

  it("another member cannot read someone's chat through the agent they share", async () => {
    // Carol's own session with Ada, the agent Alice talked to; she knows (or guessed) Alice's gateway session key.
    const mine = await carol.http.json("POST", `/api/v1/workspaces/${a.wid}/sessions`, { agentId: a.agentId });
    expect(mine.status).toBe(201);
    peekKey = `agent:${a.agentId}:reef-${a.wid}-user-${alice.user.id}-session-${a.sid}`;
    const before = llm.requests.length;
    const events = await chat(carol, a.wid, mine.body.id, "please peek at other sessions");
    const answer = textOf(events);
    expect(events.at(-1)?.event, JSON.stringify(events.at(-1))).toBe("done");
    const turn = llm.requests.slice(before);
    // The agent ran the tools and sent their results back to the model…
    const results = turn.flatMap((r) => toolResultsOf(r.body.messages));
    expect(results.length, JSON.stringify(turn.map((r) => r.body.messages?.at(-1)))).toBeGreaterThan(0);
    expect(answer).toMatch(/^Stand-in saw tool results: /);
    // …and nothing of Alice's conversation was in them, nor in the answer Carol saw.
    for (const text of [...results, answer]) {
      for (const secret of ["hello from Alice", "second message", "Alice's helper", a.sid, alice.user.id]) {
        expect(text, text).not.toContain(secret);
      }
    }
    // The cross-session tools are not even offered to the model.
    const offered = offeredTools(turn);
    expect(offered).not.toContain("sessions_history");
    expect(offered).not.toContain("sessions_list");
    // Alice's session was not continued by the attempt either.
    expect(await history(alice, a.wid, a.sid)).toHaveLength(4);
  }, 300_000);

  it("deleting a session deletes its conversation from the gateway too", async () => {
    const made = await alice.http.json("POST", `/api/v1/workspaces/${a.wid}/sessions`, { agentId: a.secondAgentId });
    const sid = made.body.id as string;
    expect(textOf(await chat(alice, a.wid, sid, "remember the word pelican"))).toContain("pelican");
    expect(await gatewaySessions(a.wid)).toContain(sid);
    expect((await alice.http.json("DELETE", `/api/v1/workspaces/${a.wid}/sessions/${sid}`)).status).toBe(204);
    const left = await gatewaySessions(a.wid);
    expect(left).not.toContain(sid);
    // Only that one: Alice's other session and Carol's are still there.
    expect(left).toContain(a.sid);
    expect(left).toContain(carolSid);
  }, 120_000);

  it("stop ends the answer upstream and keeps what was said", async () => {
    const cutBefore = llm.cutShort;
    const res = await alice.http.send(a.wid, a.sid, "a long one please");
    let aborted = false;
    const events = await readEvents(res, {
      stopWhen: (_ev, all) => {
        if (!aborted && all.filter((e) => e.event === "delta").length >= 3) {
          aborted = true;
          void alice.http.json("POST", `/api/v1/workspaces/${a.wid}/sessions/${a.sid}/abort`).then((r) => {
            expect(r.body).toEqual({ aborted: true });
          });
        }
        return false;
      },
    });
    expect(events.at(-1)).toMatchObject({ event: "done", data: { status: "aborted" } });
    const said = textOf(events);
    expect(said.length).toBeGreaterThan(0);
    expect(said.length).toBeLessThan(LONG.length);
    const last = (await history(alice, a.wid, a.sid)).at(-1);
    expect(last).toMatchObject({ role: "assistant", status: "aborted" });
    expect(LONG.startsWith(last?.content ?? "x")).toBe(true);
    // The vendor saw the stream closed before its end: generation stopped upstream.
    await expect.poll(() => llm.cutShort, { timeout: 10_000 }).toBeGreaterThan(cutBefore);
  }, 60_000);

  it("a client that goes away does not stop the answer: it is written to the end and stored", async () => {
    const cutBefore = llm.cutShort;
    const res = await alice.http.send(a.wid, a.sid, "another long one");
    await readEvents(res, { stopWhen: (_ev, all) => all.filter((e) => e.event === "delta").length >= 3 });
    await expect
      .poll(async () => (await history(alice, a.wid, a.sid)).at(-1)?.status, { timeout: 20_000 })
      .toBe("complete");
    expect((await history(alice, a.wid, a.sid)).at(-1)?.content).toBe(LONG);
    expect(llm.cutShort).toBe(cutBefore);
  }, 60_000);

  it("a gateway that dies mid-answer gives a clear error, keeps the partial answer, and the next message wakes a fresh one", async () => {
    const pid = await gatewayPid(b.wid);
    const res = await bob.http.send(b.wid, b.sid, "long answer please");
    let killed = false;
    const events = await readEvents(res, {
      stopWhen: (_ev, all) => {
        if (!killed && all.filter((e) => e.event === "delta").length >= 3) {
          killed = true;
          process.kill(-pid, "SIGKILL");
        }
        return false;
      },
    });
    const error = events.at(-1);
    expect(error?.event).toBe("error");
    expect(error?.data.code).toBe("UNAVAILABLE");
    expect(String(error?.data.message)).toMatch(/stopped while answering.*kept/);
    const partial = (await history(bob, b.wid, b.sid)).at(-1);
    expect(partial).toMatchObject({ role: "assistant", status: "error" });
    expect(partial?.content.length).toBeGreaterThan(0);

    const next = await chat(bob, b.wid, b.sid, "are you back?");
    expect(next.map((e) => e.event)).toContain("runtime");
    expect(textOf(next), JSON.stringify(next)).toBe("Stand-in reply to: are you back?");
    expect(await gatewayPid(b.wid)).not.toBe(pid);
  }, 120_000);

  it("an agent's new model and instructions reach the gateway before the next message", async () => {
    const patched = await alice.http.json("PATCH", `/api/v1/workspaces/${a.wid}/agents/${a.agentId}`, {
      model: "stand-in-model-2",
      instructions: "You are Ada, now terse.",
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const events = await chat(alice, a.wid, a.sid, "which model?");
    expect(textOf(events)).toBe("Stand-in reply to: which model?");
    const last = llm.requests.at(-1);
    expect(last?.body.model).toBe("stand-in-model-2");
    expect(JSON.stringify(last?.body.messages)).toContain("now terse");
  }, 120_000);

  it.runIf(process.getuid?.() === 0)(
    "an agent with shell and files cannot reach another workspace's gateway, files or Reef's secrets",
    async () => {
      // Bob's gateway is running; a member of Alice's workspace drives an agent
      // granted shell and files, as any workspace admin may grant them.
      const target = await servicesOf(app).runtimeManager.handle(b.wid);
      expect(target, "Bob's gateway runs").toBeDefined();
      const { pid, port, dir } = (target as { state: unknown }).state as { pid: number; port: number; dir: string };
      const bobToken = JSON.parse(readFileSync(join(dir, "state", "openclaw.json"), "utf8")).gateway.auth.token;
      // Where `reef start` keeps the root key (0600, Reef's own user); the test app is given it in config.
      const rootKey = randomBytes(32).toString("base64");
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(join(dataDir, "secret.key"), rootKey, { mode: 0o600 });
      const grant = await alice.http.json("PATCH", `/api/v1/workspaces/${a.wid}/agents/${a.secondAgentId}`, {
        tools: ["shell", "files"],
        // The attack is on the sandbox, not on approvals: every command runs.
        execPolicy: "allow",
      });
      expect(grant.status, JSON.stringify(grant.body)).toBe(200);
      const session = await carol.http.json("POST", `/api/v1/workspaces/${a.wid}/sessions`, {
        agentId: a.secondAgentId,
      });
      probeCommand = [
        `cat ${dir}/state/openclaw.json`,
        `ls ${dir}`,
        `cat /proc/${pid}/environ`,
        `kill -9 ${pid}`,
        `cat ${join(dataDir, "secret.key")}`,
        `node -e "require('net').createServer().listen(${port},'127.0.0.1',()=>console.log('listening on the port')).on('error',e=>console.log('bind',e.code))"`,
        "echo probe-finished",
      ]
        .map((c) => `${c} 2>&1`)
        .join("; ");
      const before = llm.requests.length;
      const events = await chat(carol, a.wid, session.body.id, "please probe the host");
      expect(events.at(-1)?.event, JSON.stringify(events.at(-1))).toBe("done");
      const results = llm.requests.slice(before).flatMap((r) => toolResultsOf(r.body.messages));
      const output = results.join("\n");
      // The commands ran (not refused by a policy), and the kernel said no to each:
      // inside its sandbox, Bob's directory and gateway do not even exist for it.
      expect(output, output).toContain("probe-finished");
      expect(output).toMatch(/No such file or directory|Permission denied/);
      expect(output).toMatch(/No such process|Operation not permitted/);
      expect(output).not.toContain("listening on the port");
      for (const secret of [bobToken, rootKey, CANARY, b.sid]) expect(output).not.toContain(secret);
      // Bob's gateway is untouched and still answers him.
      expect((await servicesOf(app).runtimeManager.get(b.wid)).state).toBe("running");
      const still = await chat(bob, b.wid, b.sid, "still there?");
      expect(still.at(-1)?.event).toBe("done");
    },
    240_000,
  );

  it("the provider key appears nowhere but the vendor's Authorization header", async () => {
    expect(llm.requests.every((r) => r.authorization === `Bearer ${CANARY}`)).toBe(true);
    const leaks: string[] = [];
    if (responses.some((r) => r.includes(CANARY))) leaks.push("an API response");
    if (logLines.some((l) => l.includes(CANARY))) leaks.push("Reef's log (incl. gateway output)");
    const audit = await db.owner.query(
      "select action, details::text from audit_log union all select action, details::text from platform_audit_log",
    );
    if (audit.rows.some((r) => String(r.details).includes(CANARY))) leaks.push("the audit trail");
    const stored = await db.owner.query("select api_key_sealed from providers");
    if (stored.rows.some((r) => String(r.api_key_sealed).includes(CANARY)))
      leaks.push("the providers table (unsealed)");
    for (const wid of [a.wid, b.wid]) {
      const pid = await gatewayPid(wid);
      leaks.push(...processGroupHolding(pid, CANARY).map((f) => `${f} of ${wid}'s gateway`));
    }
    expect(leaks).toEqual([]);
    expect(logLines.length).toBeGreaterThan(10);
    // On disk, nothing under a runtime directory holds it: gateways get a proxy
    // credential minted per start, and only Reef's LLM proxy opens the real key.
    for (const wid of [a.wid, b.wid]) {
      const dir = join(dataDir, "runtimes", wid);
      expect(filesContaining(dir, CANARY).map((f) => relative(dir, f))).toEqual([]);
      const config = JSON.parse(readFileSync(join(dir, "state/openclaw.json"), "utf8"));
      const keys = Object.values(config.models.providers as Record<string, { apiKey: string; baseUrl: string }>);
      expect(keys.length).toBeGreaterThan(0);
      for (const p of keys) {
        expect(p.apiKey).toMatch(/^reef-llm-/);
        expect(p.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/llm\//);
      }
    }
  }, 30_000);
});
