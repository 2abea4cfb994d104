import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "@reef/config";
import { createVault, rotateRootKey, sealExistingTranscripts } from "@reef/core";
import { buildApp, servicesOf, startServer } from "@reef/server";
import {
  addAgent,
  addStandInProvider,
  type DumpableDatabase,
  dumpableDatabase,
  httpClient,
  type LlmStandIn,
  listenLocal,
  readEvents,
  recordingLogger,
  signUp,
  silentLogger,
  startLlmStandIn,
  testAppConfig,
  textOf,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const nonce = (what: string) => `${what}-${randomBytes(9).toString("hex")}`;
const CANARY = `sk-sealed-${randomBytes(8).toString("hex")}`;
/** What the model says: only the stand-in knows it, so it can reach the database only through the answer. */
const ANSWER_NONCE = nonce("answer");
const LONG_NONCE = nonce("long");
const LONG = Array.from({ length: 50 }, (_, i) => `${LONG_NONCE}-${i}`).join(" ");

let llm: LlmStandIn;
let d: DumpableDatabase;
let app: FastifyInstance;
let base: string;
const oldKey = randomBytes(32);
const newKey = randomBytes(32);

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: CANARY,
    models: ["m"],
    chunkDelayMs: 40,
    reply: (text) => (text.includes("long") ? LONG : `The stand-in says ${ANSWER_NONCE}.`),
  });
  d = await dumpableDatabase();
  app = await buildApp({
    config: testAppConfig({ secretKey: oldKey, runtimeIdleTimeoutMinutes: 60 }),
    database: d.database,
    logger: silentLogger,
  });
  base = await listenLocal(app);
}, 120_000);

afterAll(async () => {
  await servicesOf(app)
    .runtimeManager.stopAll("test over")
    .catch(() => {});
  await app.close();
  await d.close();
  await llm.close();
}, 120_000);

type Person = Awaited<ReturnType<typeof signUp>>;
let alice: Person;
let wid: string;
let agentId: string;
let sid: string;
let titledSid: string;
const USER_NONCE = nonce("typed");
const TITLE_NONCE = nonce("title");

/** Sends a message over the real port (as a browser streams it) and reads the answer's events. */
async function chat(p: Person, sessionId: string, text: string, opts: Parameters<typeof readEvents>[1] = {}) {
  const res = await httpClient(base, p.client).send(p.workspaceId, sessionId, text);
  expect(res.status).toBe(200);
  return readEvents(res, opts);
}

/** A GET as `p`, through `a`: this Reef, or another one on the same database (a restart, another replica). */
async function get(a: FastifyInstance, p: Person, url: string) {
  const cookie = [...p.client.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  const res = await a.inject({ method: "GET", url, headers: { cookie } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

async function history(a: FastifyInstance, p: Person, sessionId: string) {
  const body = await get(a, p, `/api/v1/workspaces/${p.workspaceId}/sessions/${sessionId}/messages?limit=200`);
  return body.items as { role: string; content: string; status: string }[];
}

async function titles(a: FastifyInstance, p: Person): Promise<Record<string, string>> {
  const body = await get(a, p, `/api/v1/workspaces/${p.workspaceId}/sessions`);
  return Object.fromEntries((body.items as { id: string; title: string }[]).map((s) => [s.id, s.title]));
}

describe("transcripts sealed at rest", () => {
  it("a pg_dump after a chat holds no message text and no title; the history API returns both", async () => {
    alice = await signUp(app);
    wid = alice.workspaceId;
    const providerId = await addStandInProvider(alice.client, wid, llm, CANARY);
    agentId = await addAgent(alice.client, wid, { name: "Ada", providerId, model: "m" });
    const session = await alice.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId });
    expect(session.statusCode).toBe(201);
    sid = session.json().id;
    // A title the member gave, as well as one taken from the first message.
    const titled = await alice.client.post(`/api/v1/workspaces/${wid}/sessions`, {
      agentId,
      title: `Plans ${TITLE_NONCE}`,
    });
    expect(titled.json()).toMatchObject({ title: `Plans ${TITLE_NONCE}` });
    titledSid = titled.json().id;

    const events = await chat(alice, sid, `Please remember ${USER_NONCE}`);
    expect(events.at(-1)?.event, JSON.stringify(events.at(-1))).toBe("done");
    expect(textOf(events)).toBe(`The stand-in says ${ANSWER_NONCE}.`);

    // While an answer streams, what is saved of it is sealed too.
    let partial: { content: string; sealed: boolean } | undefined;
    const long = await chat(alice, titledSid, "a long one please", {
      stopWhen: () => {
        if (partial) return false;
        void d.owner
          .query("select content, sealed from chat_messages where session_id = $1 and status = 'streaming'", [
            titledSid,
          ])
          .then((r) => {
            if (r.rows[0]?.content) partial ??= r.rows[0];
          });
        return false;
      },
    });
    expect(textOf(long)).toBe(LONG);
    expect(partial, "no partial answer was saved while streaming").toBeDefined();
    expect(partial?.sealed).toBe(true);
    expect(partial?.content).toMatch(/^v1\.\d+\./);
    expect(partial?.content).not.toContain(LONG_NONCE);

    // The member reads everything back.
    expect((await history(app, alice, sid)).map((m) => [m.role, m.content, m.status])).toEqual([
      ["user", `Please remember ${USER_NONCE}`, "complete"],
      ["assistant", `The stand-in says ${ANSWER_NONCE}.`, "complete"],
    ]);
    expect((await history(app, alice, titledSid)).map((m) => m.content)).toEqual(["a long one please", LONG]);
    expect(await titles(app, alice)).toEqual({
      [sid]: `Please remember ${USER_NONCE}`,
      [titledSid]: `Plans ${TITLE_NONCE}`,
    });
    const one = await alice.client.get(`/api/v1/workspaces/${wid}/sessions/${sid}`);
    expect(one.json().title).toBe(`Please remember ${USER_NONCE}`);

    // The database holds none of it.
    const dump = d.dump();
    expect(dump).toContain("COPY public.chat_messages");
    expect(dump).toContain(sid);
    for (const secret of [USER_NONCE, ANSWER_NONCE, TITLE_NONCE, LONG_NONCE, "a long one please"]) {
      expect(dump.includes(secret), `${secret} is in the dump`).toBe(false);
    }
    const rows = await d.owner.query("select content, sealed from chat_messages where workspace_id = $1", [wid]);
    expect(rows.rows.every((r) => r.sealed && r.content.startsWith("v1."))).toBe(true);
  }, 240_000);

  it("a sealed message moved to another session does not open", async () => {
    // Someone with write access to the database copies the answer into another session of the same member.
    await d.owner.query(
      `update chat_messages set content = (select content from chat_messages where session_id = $1 and role = 'assistant')
       where session_id = $2 and role = 'assistant'`,
      [sid, titledSid],
    );
    const res = await alice.client.get(`/api/v1/workspaces/${wid}/sessions/${titledSid}/messages`);
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain(ANSWER_NONCE);
    await d.owner.query("delete from chat_messages where session_id = $1 and role = 'assistant'", [titledSid]);
  });

  it("the upgrade step seals transcripts stored in clear, once, also with two replicas at once", async () => {
    // What an older Reef stored: a session titled and messages in clear, one answer still streaming.
    const legacyTitle = nonce("legacy-title");
    const legacy = Array.from({ length: 7 }, (_, i) => nonce(`legacy-${i}`));
    const streamingNonce = nonce("legacy-streaming");
    const legacySid = randomUUID();
    await d.owner.query(
      "insert into chat_sessions (id, workspace_id, agent_id, user_id, title, last_message_at) values ($1, $2, $3, $4, $5, now())",
      [legacySid, wid, agentId, alice.user.id, `Old ${legacyTitle}`],
    );
    for (const [i, text] of legacy.entries()) {
      await d.owner.query(
        "insert into chat_messages (workspace_id, session_id, role, content, completed_at) values ($1, $2, $3, $4, now())",
        [wid, legacySid, i % 2 ? "assistant" : "user", `said ${text}`],
      );
    }
    await d.owner.query(
      "insert into chat_messages (workspace_id, session_id, role, content, status) values ($1, $2, 'assistant', $3, 'streaming')",
      [wid, legacySid, `half ${streamingNonce}`],
    );
    const before = d.dump();
    for (const text of [legacyTitle, ...legacy]) expect(before).toContain(text);
    // Read while still in clear (a rolling upgrade).
    expect((await history(app, alice, legacySid)).map((m) => m.content)).toEqual([
      ...legacy.map((t) => `said ${t}`),
      `half ${streamingNonce}`,
    ]);

    // Two replicas booting at once, in batches of 3: each row sealed exactly once.
    const vault = () => createVault({ keyring: { current: oldKey, previous: [] } });
    const runs = await Promise.all([
      sealExistingTranscripts({ db: d.database.db, vault: vault(), batchSize: 3 }),
      sealExistingTranscripts({ db: d.database.db, vault: vault(), batchSize: 3 }),
    ]);
    expect(runs.reduce((n, r) => n + r.messages, 0)).toBe(legacy.length);
    expect(runs.reduce((n, r) => n + r.titles, 0)).toBe(1);

    let dump = d.dump();
    for (const text of [legacyTitle, ...legacy]) expect(dump.includes(text), `${text} is in the dump`).toBe(false);
    // An answer still being written by an older Reef is left to it, and sealed by a later run.
    expect(dump).toContain(streamingNonce);
    await d.owner.query("update chat_messages set status = 'error' where session_id = $1 and status = 'streaming'", [
      legacySid,
    ]);
    expect(await sealExistingTranscripts({ db: d.database.db, vault: vault() })).toEqual({
      messages: 1,
      titles: 0,
      workspaces: 1,
    });
    dump = d.dump();
    expect(dump.includes(streamingNonce)).toBe(false);
    // Nothing left: another run changes nothing.
    expect(await sealExistingTranscripts({ db: d.database.db, vault: vault() })).toEqual({
      messages: 0,
      titles: 0,
      workspaces: 0,
    });

    expect((await history(app, alice, legacySid)).map((m) => m.content)).toEqual([
      ...legacy.map((t) => `said ${t}`),
      `half ${streamingNonce}`,
    ]);
    expect((await titles(app, alice))[legacySid]).toBe(`Old ${legacyTitle}`);
  }, 60_000);

  it("a 200-message history reads back fast", async () => {
    const bigSid = randomUUID();
    await d.owner.query(
      "insert into chat_sessions (id, workspace_id, agent_id, user_id, title) values ($1, $2, $3, $4, 'big')",
      [bigSid, wid, agentId, alice.user.id],
    );
    const text = "lorem ipsum dolor sit amet ".repeat(40);
    await d.owner.query(
      `insert into chat_messages (workspace_id, session_id, role, content, completed_at)
       select $1, $2, case when i % 2 = 0 then 'user' else 'assistant' end, $3 || i, now() from generate_series(1, 200) i`,
      [wid, bigSid, text],
    );
    const url = `/api/v1/workspaces/${wid}/sessions/${bigSid}/messages?limit=200`;
    const time = async () => {
      const ms: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        const res = await alice.client.get(url);
        ms.push(performance.now() - started);
        expect(res.json().items).toHaveLength(200);
        expect(res.json().items[199].content).toBe(`${text}200`);
      }
      return ms.sort((a, b) => a - b)[5] ?? 0;
    };
    const clear = await time();
    await sealExistingTranscripts({ db: d.database.db, vault: servicesOf(app).vault });
    const sealed = await time();
    console.info(
      `200-message history (median of 10 reads): in clear ${clear.toFixed(1)} ms, sealed ${sealed.toFixed(1)} ms`,
    );
    expect(sealed).toBeLessThan(Math.max(100, clear * 3));
  }, 60_000);

  it("Reef seals transcripts stored in clear when it starts, and says how many", async () => {
    const clearNonce = nonce("boot");
    const bootSid = randomUUID();
    await d.owner.query(
      "insert into chat_sessions (id, workspace_id, agent_id, user_id, title) values ($1, $2, $3, $4, $5)",
      [bootSid, wid, agentId, alice.user.id, `Boot ${clearNonce}`],
    );
    await d.owner.query(
      "insert into chat_messages (workspace_id, session_id, role, content) values ($1, $2, 'user', $3), ($1, $2, 'assistant', $3)",
      [wid, bootSid, `said ${clearNonce}`],
    );
    const lines: string[] = [];
    const logger = recordingLogger(lines, "info");
    const dataDir = mkdtempSync(join(tmpdir(), "reef-sealed-boot-"));
    const server = await startServer(
      {
        ...configSchema.parse({}),
        dataDir,
        publicUrl: "http://127.0.0.1:7420",
        secretKey: oldKey,
        secretKeySource: "env",
        databaseUrl: d.ownerUrl,
        databaseAppUrl: d.appUrl,
        port: 0,
        host: "127.0.0.1",
      },
      logger,
    );
    try {
      const deadline = Date.now() + 20_000;
      let line: string | undefined;
      while (!line && Date.now() < deadline) {
        line = lines.find((l) => l.includes("sealed chat transcripts stored in clear"));
        if (!line) await new Promise((r) => setTimeout(r, 50));
      }
      expect(line, lines.join("")).toBeDefined();
      expect(JSON.parse(line ?? "{}")).toMatchObject({ messages: 2, titles: 1, workspaces: 1 });
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
    expect(d.dump().includes(clearNonce)).toBe(false);
    expect((await history(app, alice, bootSid)).map((m) => m.content)).toEqual([
      `said ${clearNonce}`,
      `said ${clearNonce}`,
    ]);
  }, 60_000);
  it("sealed transcripts stay readable after `reef rotate-keys`, by a Reef holding only the new key", async () => {
    const stored = async () =>
      (await d.owner.query("select id, content from chat_messages where workspace_id = $1 order by id", [wid])).rows;
    const before = await stored();
    expect(await rotateRootKey(d.database.db, { current: newKey, previous: [oldKey] })).toMatchObject({ rewrapped: 1 });
    // Only data keys were rewrapped: the sealed messages are byte for byte what they were.
    expect(await stored()).toEqual(before);

    const rotated = await buildApp({
      config: testAppConfig({ secretKey: newKey }),
      database: d.database,
      logger: silentLogger,
    });
    try {
      expect((await history(rotated, alice, sid)).map((m) => m.content)).toEqual([
        `Please remember ${USER_NONCE}`,
        `The stand-in says ${ANSWER_NONCE}.`,
      ]);
      expect(await titles(rotated, alice)).toMatchObject({
        [sid]: `Please remember ${USER_NONCE}`,
        [titledSid]: `Plans ${TITLE_NONCE}`,
      });
    } finally {
      await rotated.close();
    }
  }, 60_000);
});
