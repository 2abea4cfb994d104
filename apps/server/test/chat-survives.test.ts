/**
 * Chat that survives the person's connection, over a real OpenClaw gateway:
 * closing the answer's stream does not stop it, `GET …/stream` picks it up
 * again, a provider refusing connections is reported in seconds (and a resend
 * works once it is back), an edited conversation is forgotten by the agent,
 * sessions are renamed, pinned and searched, and a wake starts the runtime.
 * One workspace (two members, two agents) keeps gateway starts few.
 */
import { createServer } from "node:net";
import { buildApp } from "@reef/server";
import {
  createTestDatabase,
  httpClient,
  type LlmStandIn,
  listenLocal,
  type ReceivedEvent,
  readEvents,
  signUp,
  silentLogger,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;

const LONG = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: "sk-test-survives-0123456789abcdef",
    models: ["stand-in-model"],
    chunkDelayMs: 40,
    reply: (text) => (text.includes("long") ? LONG : `Stand-in reply to: ${text.slice(-60)}`),
  });
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig({ runtimeIdleTimeoutMinutes: 60 }),
    database: db.database,
    logger: silentLogger,
  });
  base = await listenLocal(app);
}, 60_000);

afterAll(async () => {
  await stopTestApp(app, db);
  await llm.close();
}, 120_000);

async function person() {
  const p = await signUp(app);
  return { ...p, http: httpClient(base, p.client) };
}
type Person = Awaited<ReturnType<typeof person>>;

/** The text a stream ends with, honouring `replace` deltas. */
function finalText(events: ReceivedEvent[]): string {
  let text = "";
  for (const e of events) {
    if (e.event !== "delta") continue;
    text = e.data.replace ? String(e.data.text) : text + String(e.data.text);
  }
  return text;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

let alice: Person;
let carol: Person;
let wid: string;
let ada: string;
let fay: string;
let fayProvider: string;
let sid: string;
const path = (s: string) => `/api/v1/workspaces/${wid}/sessions/${s}`;

async function history(s: string) {
  return (await alice.http.json("GET", `${path(s)}/messages`)).body.items as {
    id: number;
    role: string;
    content: string;
    status: string;
  }[];
}

async function newSession(agentId: string, title?: string): Promise<string> {
  const res = await alice.http.json("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId, title });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function send(s: string, text: string, extra: Record<string, unknown> = {}) {
  const res = await alice.http.raw("POST", `${path(s)}/messages`, { text, ...extra });
  expect(res.status).toBe(200);
  return readEvents(res);
}

describe("chat that survives the connection", () => {
  beforeAll(async () => {
    alice = await person();
    wid = alice.workspaceId;
    carol = await person();
    const invite = await alice.http.json("POST", `/api/v1/workspaces/${wid}/invites`, {
      email: carol.email,
      role: "member",
    });
    expect((await carol.http.json("POST", `/api/v1/invites/${invite.body.token}/accept`)).status).toBe(200);
    const provider = async (name: string) => {
      const res = await alice.http.json("POST", `/api/v1/workspaces/${wid}/providers`, {
        name,
        kind: "openai-compatible",
        baseUrl: llm.baseUrl,
        apiKey: "sk-test-survives-0123456789abcdef",
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.id as string;
    };
    const p1 = await provider("Stand-in");
    fayProvider = await provider("Flaky vendor");
    const agent = async (name: string, providerId: string) => {
      const res = await alice.http.json("POST", `/api/v1/workspaces/${wid}/agents`, {
        name,
        providerId,
        model: "stand-in-model",
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.id as string;
    };
    ada = await agent("Ada", p1);
    fay = await agent("Fay", fayProvider);
    sid = await newSession(ada);
    // The cold start, once.
    const first = await send(sid, "hello");
    expect(first.at(-1)?.event, JSON.stringify(first)).toBe("done");
  }, 120_000);

  it("closing the POST stream does not stop the answer: it completes and is stored", async () => {
    const cutBefore = llm.cutShort;
    const res = await alice.http.raw("POST", `${path(sid)}/messages`, { text: "a long one please" });
    await readEvents(res, { stopWhen: (_e, all) => all.filter((e) => e.event === "delta").length >= 3 });
    await expect
      .poll(async () => (await history(sid)).at(-1)?.status, { timeout: 20_000, interval: 200 })
      .toBe("complete");
    expect((await history(sid)).at(-1)?.content).toBe(LONG);
    expect(llm.cutShort).toBe(cutBefore);
  }, 60_000);

  it("GET …/stream mid-answer gives the text so far, then the rest and done; 204 when idle", async () => {
    const res = await alice.http.raw("POST", `${path(sid)}/messages`, { text: "another long one" });
    const early = await readEvents(res, {
      stopWhen: (_e, all) => all.filter((e) => e.event === "delta").length >= 3,
    });
    const accepted = early.find((e) => e.event === "accepted")?.data;
    const again = await alice.http.raw("GET", `${path(sid)}/stream`);
    expect(again.status).toBe(200);
    const events = await readEvents(again);
    expect(events[0]).toMatchObject({ event: "accepted", data: accepted });
    expect(events[1]).toMatchObject({ event: "delta", data: { replace: true } });
    expect(String(events[1]?.data.text).length).toBeGreaterThan(0);
    expect(events.at(-1)).toMatchObject({ event: "done", data: { status: "complete" } });
    expect(finalText(events)).toBe(LONG);
    expect((await alice.http.raw("GET", `${path(sid)}/stream`)).status).toBe(204);
  }, 60_000);

  it("another member cannot follow, rename or edit someone else's session", async () => {
    const last = (await history(sid)).filter((m) => m.role === "user").at(-1);
    expect((await carol.http.raw("GET", `${path(sid)}/stream`)).status).toBe(404);
    expect((await carol.http.json("PATCH", path(sid), { title: "mine now" })).status).toBe(404);
    const edit = await carol.http.json("POST", `${path(sid)}/messages`, { text: "x", replaceFrom: last?.id });
    expect(edit.status).toBe(404);
    expect((await history(sid)).filter((m) => m.role === "user").at(-1)?.id).toBe(last?.id);
  }, 30_000);

  it("GET …/stream follows an answer another replica is writing through the database, and a dead one's is cut off", async () => {
    const s = await newSession(ada);
    const insert = async (role: string, status: string) =>
      Number(
        (
          await db.owner.query(
            "insert into chat_messages (workspace_id, session_id, role, content, status) values ($1, $2, $3, '', $4) returning id",
            [wid, s, role, status],
          )
        ).rows[0].id,
      );
    const user = await insert("user", "complete");
    const answer = await insert("assistant", "streaming");
    const following = alice.http.raw("GET", `${path(s)}/stream`).then((res) => {
      expect(res.status).toBe(200);
      return readEvents(res);
    });
    await new Promise((r) => setTimeout(r, 1500));
    await db.owner.query("update chat_messages set content = 'Half', heartbeat_at = now() where id = $1", [answer]);
    await new Promise((r) => setTimeout(r, 1500));
    await db.owner.query("update chat_messages set content = 'Half an answer', status = 'complete' where id = $1", [
      answer,
    ]);
    const events = await following;
    expect(events[0]).toMatchObject({ event: "accepted", data: { userMessageId: user, assistantMessageId: answer } });
    expect(events.filter((e) => e.event === "delta").every((e) => e.data.replace === true)).toBe(true);
    expect(finalText(events)).toBe("Half an answer");
    expect(events.at(-1)).toMatchObject({ event: "done", data: { messageId: answer, status: "complete" } });

    // A replica that died a minute ago: its answer is cut off, keeping its text, and nothing streams.
    const dead = await insert("assistant", "streaming");
    await db.owner.query(
      "update chat_messages set content = 'Cut', heartbeat_at = now() - interval '1 minute' where id = $1",
      [dead],
    );
    expect((await alice.http.raw("GET", `${path(s)}/stream`)).status).toBe(204);
    expect((await history(s)).at(-1)).toMatchObject({ id: dead, status: "interrupted", content: "Cut" });
  }, 30_000);

  it("a provider refusing connections is reported in seconds, and a resend works once it is back", async () => {
    await db.owner.query("update providers set base_url = $1 where id = $2", [
      `http://127.0.0.1:${await closedPort()}/v1`,
      fayProvider,
    ]);
    // The provider's address is part of the gateway's settings: let the restart that brings happen first.
    expect((await alice.http.json("POST", `/api/v1/workspaces/${wid}/runtime/start`)).status).toBe(200);
    // And a first turn on the fresh gateway (its agent runtime loads once), so only the provider is timed.
    expect((await send(sid, "warm up")).at(-1)?.event).toBe("done");
    const s = await newSession(fay);
    const started = Date.now();
    const events = await send(s, "are you there?");
    const took = Date.now() - started;
    const { rows } = await db.owner.query(
      "select min(created_at) as at from llm_calls where provider_id = $1 and outcome = 'error'",
      [fayProvider],
    );
    const sinceRefused = started + took - new Date(rows[0].at).getTime();
    const error = events.at(-1);
    expect(error, JSON.stringify(events)).toMatchObject({
      event: "error",
      data: { code: "PROVIDER_UNREACHABLE", providerId: fayProvider },
    });
    expect(String(error?.data.message)).toContain("Flaky vendor");
    expect(took).toBeLessThan(10_000);
    // The gateway would retry for over a minute; the person hears it right after the first refusal.
    expect(sinceRefused).toBeLessThan(2_000);
    console.info(`PROVIDER_UNREACHABLE after ${took} ms (${sinceRefused} ms after the first refused call)`);

    await db.owner.query("update providers set base_url = $1 where id = $2", [llm.baseUrl, fayProvider]);
    const retry = await send(s, "are you back?");
    expect(retry.at(-1)?.event, JSON.stringify(retry)).toBe("done");
    expect(finalText(retry)).toContain("are you back?");
  }, 180_000);

  it("replaceFrom removes that message and what follows, and the agent forgets them", async () => {
    const s = await newSession(ada);
    await send(s, "my fruit is apple");
    await send(s, "my fruit is banana");
    const banana = (await history(s)).find((m) => m.content === "my fruit is banana");
    const events = await send(s, "which fruit did I name?", { replaceFrom: banana?.id });
    expect(events.at(-1)?.event, JSON.stringify(events)).toBe("done");
    const after = await history(s);
    expect(after.map((m) => m.content)).not.toContain("my fruit is banana");
    expect(after.filter((m) => m.role === "user").map((m) => m.content)).toEqual([
      "my fruit is apple",
      "which fruit did I name?",
    ]);
    const asked = llm.requests.filter((r) => JSON.stringify(r.body.messages ?? []).includes("which fruit did I name"));
    expect(asked.length).toBeGreaterThan(0);
    for (const r of asked) {
      const sent = JSON.stringify(r.body.messages);
      expect(sent).not.toContain("banana");
      expect(sent).toContain("apple");
    }
    // A message of another session is refused.
    const other = (await history(sid)).find((m) => m.role === "user");
    const bad = await alice.http.json("POST", `${path(s)}/messages`, { text: "x", replaceFrom: other?.id });
    expect(bad.status).toBe(400);
  }, 90_000);

  it("sessions are renamed, pinned first, and searched by title with pagination", async () => {
    const older = await newSession(ada, "Quarterly report draft");
    const pinned = await newSession(ada, "Holiday plans");
    const renamed = await alice.http.json("PATCH", path(pinned), { title: "Report on holidays", pinned: true });
    expect(renamed).toMatchObject({ status: 200, body: { title: "Report on holidays", pinned: true } });
    expect((await alice.http.json("PATCH", path(pinned), {})).status).toBe(400);
    const list = (await alice.http.json("GET", `/api/v1/workspaces/${wid}/sessions`)).body.items;
    expect(list[0]).toMatchObject({ id: pinned, pinned: true });
    expect(list.slice(1).every((x: { pinned: boolean }) => !x.pinned)).toBe(true);
    const found = (await alice.http.json("GET", `/api/v1/workspaces/${wid}/sessions?q=REPORT`)).body;
    expect(found.items.map((x: { id: string }) => x.id)).toEqual([pinned, older]);
    const page1 = (await alice.http.json("GET", `/api/v1/workspaces/${wid}/sessions?q=report&limit=1`)).body;
    expect(page1.items.map((x: { id: string }) => x.id)).toEqual([pinned]);
    const page2 = (
      await alice.http.json(
        "GET",
        `/api/v1/workspaces/${wid}/sessions?q=report&limit=1&cursor=${encodeURIComponent(page1.nextCursor)}`,
      )
    ).body;
    expect(page2).toEqual({ items: [expect.objectContaining({ id: older })], nextCursor: null });
    const { rows } = await db.owner.query(
      "select action from audit_log where workspace_id = $1 and action = 'chat.session.update'",
      [wid],
    );
    expect(rows.length).toBe(1);
    const unpinned = await alice.http.json("PATCH", path(pinned), { pinned: false });
    expect(unpinned.body.pinned).toBe(false);
  }, 30_000);

  it("a member's wake answers 202 at once and the runtime becomes running, with an expected start time", async () => {
    expect((await alice.http.json("POST", `/api/v1/workspaces/${wid}/runtime/stop`)).status).toBe(200);
    const started = Date.now();
    const woke = await carol.http.json("POST", `/api/v1/workspaces/${wid}/runtime/wake`);
    expect(woke.status).toBe(202);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(["starting", "queued", "running"]).toContain(woke.body.state);
    expect(woke.body.expectedStartSeconds).toBeGreaterThan(0);
    // A message sent while it wakes says how long that usually takes.
    const events = await send(sid, "are you awake?");
    expect(events.find((e) => e.event === "runtime")?.data).toMatchObject({
      state: "starting",
      expectedSeconds: woke.body.expectedStartSeconds,
    });
    expect(events.at(-1)?.event, JSON.stringify(events)).toBe("done");
    await expect
      .poll(async () => (await alice.http.json("GET", `/api/v1/workspaces/${wid}/runtime`)).body.state, {
        timeout: 100_000,
        interval: 500,
      })
      .toBe("running");
  }, 120_000);
});
