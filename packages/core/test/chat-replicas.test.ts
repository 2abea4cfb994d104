import { randomBytes, randomUUID } from "node:crypto";
import { QuotaExceededError } from "@reef/contracts";
import { createDb, withScope } from "@reef/db";
import type { GatewayTurnEvent, GatewayTurnRequest } from "@reef/runtime";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentService } from "../src/agents/agent-service.ts";
import { verifyAuditChains } from "../src/audit/audit-service.ts";
import { type ChatEvent, type ChatService, createChatService } from "../src/chat/chat-service.ts";
import type { GatewayChat } from "../src/chat/turn-runner.ts";
import { createQuotaService, type QuotaLimits } from "../src/quotas/quota-service.ts";
import type { RuntimeManager } from "../src/runtime/runtime-manager.ts";
import type { RequestContext } from "../src/shared/context.ts";
import { createVault } from "../src/vault/vault-service.ts";
import type { WorkspaceGate } from "../src/workspace/workspace-access.ts";

/**
 * The chat service with everything but the database stood in for: the gateway
 * answers as each test scripts it, so turns run in milliseconds. Each
 * `replica()` is another Reef on the same database (its own turn registry).
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.drop());

const keyring = { current: randomBytes(32), previous: [] };

/** How the stand-in gateway answers one turn (it gets the request, to record what it was told). */
type Script = (req: GatewayTurnRequest) => AsyncGenerator<GatewayTurnEvent>;

/** A stand-in gateway: records the prompts and deletions, answers with the next script (else "ok"). */
function standInGateway() {
  const prompts: string[] = [];
  const deleted: string[] = [];
  const scripts: Script[] = [];
  const gateway: GatewayChat = {
    streamTurn(req) {
      prompts.push(req.text);
      const script = scripts.shift() ?? answer("ok");
      return script(req);
    },
    async deleteSessions(_conn, keys) {
      deleted.push(...keys);
      return { failed: [] };
    },
  };
  return { gateway, prompts, deleted, scripts };
}

function answer(text: string): Script {
  return async function* () {
    yield { type: "delta", text };
  };
}

function failing(message: string): Script {
  return async function* () {
    yield { type: "error", message };
  };
}

/** Says `text`, then keeps going until stopped (as the real client does: its stream throws once aborted). */
function endless(text: string, started: () => void): Script {
  return async function* (req) {
    yield { type: "delta", text };
    started();
    await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve(), { once: true }));
    req.signal.throwIfAborted();
  };
}

async function fixture() {
  const userId = randomUUID();
  const wid = randomUUID();
  const providerId = randomUUID();
  const agentId = randomUUID();
  await t.owner.query("insert into users (id, email, name) values ($1, $2, 'u')", [userId, `${userId}@example.com`]);
  await t.owner.query("insert into workspaces (id, name) values ($1, 'w')", [wid]);
  await t.owner.query("insert into workspace_members (workspace_id, user_id, role) values ($1, $2, 'owner')", [
    wid,
    userId,
  ]);
  await t.owner.query(
    "insert into providers (id, workspace_id, name, kind, base_url) values ($1, $2, 'Acme', 'openai-compatible', 'http://127.0.0.1:9')",
    [providerId, wid],
  );
  await t.owner.query("insert into agents (id, workspace_id, name, provider_id, model) values ($1, $2, 'a', $3, 'm')", [
    agentId,
    wid,
    providerId,
  ]);
  const ctx: RequestContext = { actor: { kind: "user", userId, platformRole: "user", sessionId: randomUUID() } };
  return { userId, wid, providerId, agentId, ctx };
}

function replica(
  gateway: GatewayChat,
  userId: string,
  opts: { heartbeatMs?: number; runtimes?: RuntimeManager; limits?: QuotaLimits } = {},
): ChatService {
  const db = t.database.db;
  const gate = {
    run: (
      _ctx: RequestContext,
      workspaceId: string,
      _perm: string,
      fn: (tx: unknown, access: unknown) => Promise<unknown>,
    ) => withScope(db, { workspaceId }, (tx) => fn(tx, { workspaceId, role: "owner", userId })),
  } as unknown as WorkspaceGate;
  const vault = createVault({ keyring });
  // The real agent service: a turn's provider (named in its errors) comes with the agent's read.
  const agents = createAgentService({ db, gate, vault });
  const quotas = createQuotaService({ gate, limits: opts.limits ?? { messages: null, tokens: null } });
  const conn = { endpoint: new URL("http://127.0.0.1:9"), token: "t" };
  const runtimes =
    opts.runtimes ??
    ({
      get: async () => ({ state: "running", expectedStartSeconds: null }),
      // biome-ignore lint/correctness/useYield: already running, no progress to report
      ensureRunningWithProgress: async function* () {
        return conn;
      },
      ensureRunning: async () => conn,
      readyIfRunning: async () => ({ view: { state: "running", pausedAt: null }, connection: () => conn }),
      reportUnreachable: async () => false,
    } as unknown as RuntimeManager);
  return createChatService({
    db,
    gate,
    agents,
    runtimes,
    quotas,
    vault,
    gateway,
    // Only the heartbeat may notice a Stop from elsewhere here: no save while the answer streams.
    flushEveryMs: 60_000,
    heartbeatMs: opts.heartbeatMs ?? 5000,
    followPollMs: 50,
  });
}

async function collect(events: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  for await (const ev of events) out.push(ev);
  return out;
}

/** Sends `text` and waits for its answer to end. */
async function send(
  chat: ChatService,
  ctx: RequestContext,
  wid: string,
  sid: string,
  text: string,
  replaceFrom?: number,
) {
  const turn = await chat.startTurn(ctx, wid, sid, text, { replaceFrom });
  const events = await collect(turn.subscription.events);
  return { ...turn, events };
}

describe("chat across replicas", () => {
  it("Stop sent to another replica stops the answer within a heartbeat, stored aborted with what was said", async () => {
    const f = await fixture();
    const g = standInGateway();
    const a = replica(g.gateway, f.userId, { heartbeatMs: 100 });
    const b = replica(g.gateway, f.userId, { heartbeatMs: 100 });
    const session = await a.createSession(f.ctx, f.wid, { agentId: f.agentId });
    let started!: () => void;
    const streaming = new Promise<void>((r) => {
      started = r;
    });
    g.scripts.push(endless("Half an ans", () => started()));
    const turn = await a.startTurn(f.ctx, f.wid, session.id, "tell me everything");
    const seen = collect(turn.subscription.events);
    await streaming;

    const sentAt = Date.now();
    expect(await b.abort(f.ctx, f.wid, session.id)).toEqual({ aborted: true });
    expect((await seen).at(-1)).toEqual({ type: "done", messageId: turn.assistantMessageId, status: "aborted" });
    // A heartbeat is 100 ms here; well under the answer's own pace.
    expect(Date.now() - sentAt).toBeLessThan(2000);

    const { items } = await b.listMessages(f.ctx, f.wid, session.id, {});
    expect(items.at(-1)).toMatchObject({ status: "aborted", content: "Half an ans", errorCode: null });
    // The Stop is in the workspace's audit trail, naming the answer it stopped.
    const audit = await t.owner.query(
      "select details from audit_log where workspace_id = $1 and action = 'chat.message.abort' and target_id = $2",
      [f.wid, session.id],
    );
    expect(audit.rows).toEqual([{ details: { messageId: turn.assistantMessageId } }]);
    // The session is free again, on either replica.
    expect((await send(b, f.ctx, f.wid, session.id, "again")).events.at(-1)).toMatchObject({ status: "complete" });
  });

  it("keeps a failed answer's code (and its provider) for the page that reloads, and for a follower elsewhere", async () => {
    const f = await fixture();
    const g = standInGateway();
    const a = replica(g.gateway, f.userId, { heartbeatMs: 100 });
    const b = replica(g.gateway, f.userId, { heartbeatMs: 100 });
    const session = await a.createSession(f.ctx, f.wid, { agentId: f.agentId });
    let started!: () => void;
    const streaming = new Promise<void>((r) => {
      started = r;
    });
    let fail!: () => void;
    const failNow = new Promise<void>((r) => {
      fail = r;
    });
    g.scripts.push(async function* () {
      yield { type: "delta", text: "Partly" };
      started();
      await failNow;
      yield { type: "error", message: "upstream provider timeout" };
    });
    const turn = await a.startTurn(f.ctx, f.wid, session.id, "hello");
    await streaming;
    const follower = await b.attach(f.ctx, f.wid, session.id);
    if (!follower) throw new Error("nothing to follow on the other replica");
    const followed = collect(follower.events);
    const live = await collect(
      (async function* () {
        fail();
        yield* turn.subscription.events;
      })(),
    );
    expect(live.at(-1)).toMatchObject({ type: "error", code: "PROVIDER_TIMEOUT", providerId: f.providerId });
    expect((await followed).at(-1)).toMatchObject({ type: "error", code: "PROVIDER_TIMEOUT" });

    const { items } = await b.listMessages(f.ctx, f.wid, session.id, {});
    expect(items.at(-1)).toMatchObject({
      status: "error",
      content: "Partly",
      errorCode: "PROVIDER_TIMEOUT",
      errorProviderId: f.providerId,
    });
    // A person's message and a complete answer carry no code.
    expect(items[0]).toMatchObject({ role: "user", errorCode: null, errorProviderId: null });
  });

  it("an answer whose replica died (no heartbeat) is settled INTERRUPTED by the next message, which is taken; a live one refuses it", async () => {
    const f = await fixture();
    const g = standInGateway();
    const b = replica(g.gateway, f.userId);
    const session = await b.createSession(f.ctx, f.wid, { agentId: f.agentId });
    const first = await send(b, f.ctx, f.wid, session.id, "hello");
    // As another replica leaves it mid-answer: streaming, its heartbeat fresh, then long gone.
    const streamingSince = (ago: string) =>
      t.owner.query(
        `update chat_messages set status = 'streaming', completed_at = null, heartbeat_at = now() - interval '${ago}' where id = $1`,
        [first.assistantMessageId],
      );
    await streamingSince("0 seconds");
    await expect(b.startTurn(f.ctx, f.wid, session.id, "are you there?")).rejects.toMatchObject({ status: 409 });
    await streamingSince("1 hour");
    const next = await send(b, f.ctx, f.wid, session.id, "are you there?");
    expect(next.events.at(-1)).toMatchObject({ type: "done", status: "complete" });
    const { items } = await b.listMessages(f.ctx, f.wid, session.id, {});
    expect(items.map((m) => [m.role, m.status])).toEqual([
      ["user", "complete"],
      ["assistant", "interrupted"],
      ["user", "complete"],
      ["assistant", "complete"],
    ]);
  });

  it("stores an answer cut off by shutdown as INTERRUPTED", async () => {
    const f = await fixture();
    const g = standInGateway();
    const a = replica(g.gateway, f.userId);
    const session = await a.createSession(f.ctx, f.wid, { agentId: f.agentId });
    let started!: () => void;
    const streaming = new Promise<void>((r) => {
      started = r;
    });
    g.scripts.push(endless("So far", () => started()));
    await a.startTurn(f.ctx, f.wid, session.id, "hello");
    await streaming;
    await a.interruptAll();
    const { items } = await a.listMessages(f.ctx, f.wid, session.id, {});
    expect(items.at(-1)).toMatchObject({
      status: "interrupted",
      content: "So far",
      errorCode: "INTERRUPTED",
      errorProviderId: null,
    });
  });
});

describe("an edited conversation whose turn failed", () => {
  it("is told to the agent again with every message until a turn completes", async () => {
    const f = await fixture();
    const g = standInGateway();
    const chat = replica(g.gateway, f.userId);
    const session = await chat.createSession(f.ctx, f.wid, { agentId: f.agentId });
    g.scripts.push(answer("Paris."), answer("Blue."));
    await send(chat, f.ctx, f.wid, session.id, "Capital of France?");
    const second = await send(chat, f.ctx, f.wid, session.id, "Favourite colour?");
    expect(g.deleted).toEqual([]);

    // Edit the second question: the gateway forgets the session; the provider is down for this turn.
    g.scripts.push(failing("upstream provider error"));
    const edited = await send(chat, f.ctx, f.wid, session.id, "Favourite fruit?", second.userMessageId);
    expect(edited.events.at(-1)).toMatchObject({ type: "error", code: "PROVIDER_ERROR" });
    expect(g.deleted).toHaveLength(1);
    expect(g.prompts.at(-1)).toContain("Capital of France?");

    // The next ordinary message still re-tells what was kept (and the edit), on a forgotten gateway session.
    g.scripts.push(answer("Apples."));
    await send(chat, f.ctx, f.wid, session.id, "Why?");
    const retold = g.prompts.at(-1) ?? "";
    expect(retold).toContain("User: Capital of France?");
    expect(retold).toContain("Assistant: Paris.");
    expect(retold).toContain("User: Favourite fruit?");
    expect(retold).not.toContain("Favourite colour?");
    expect(retold.endsWith("Why?")).toBe(true);
    expect(g.deleted).toHaveLength(2);

    // That turn completed: the gateway holds the conversation again, so the next message goes alone.
    await send(chat, f.ctx, f.wid, session.id, "Thanks");
    expect(g.prompts.at(-1)).toBe("Thanks");
    expect(g.deleted).toHaveLength(2);
    const { rows } = await t.owner.query("select gateway_retell_pending from chat_sessions where id = $1", [
      session.id,
    ]);
    expect(rows[0].gateway_retell_pending).toBe(false);
  });
});

/**
 * Runtimes as the turn sees them: a workspace `running` or `stopped`, each wake
 * recorded by how it was asked for (`ready`: beside the message's transaction;
 * `progress`: by the turn, showing its progress), a wake taking `wakeMs`.
 */
function recordedRuntimes(state: "running" | "stopped", wakeMs = 0) {
  const wakes: ("ready" | "progress")[] = [];
  const conn = { endpoint: new URL("http://127.0.0.1:9"), token: "t" };
  const woken = () => new Promise<typeof conn>((r) => setTimeout(() => r(conn), wakeMs));
  const runtimes = {
    get: async () => ({ state, pausedAt: null, expectedStartSeconds: 12 }),
    // As the manager's look-ahead does: a running gateway is readied, a stopped one left alone.
    readyIfRunning: async () => {
      const view = { state, pausedAt: null, expectedStartSeconds: 12 };
      let ready: typeof conn | undefined;
      if (state === "running") {
        wakes.push("ready");
        void woken().then((c) => {
          ready = c;
        });
      }
      return { view, connection: () => ready };
    },
    ensureRunningWithProgress: async function* () {
      wakes.push("progress");
      yield { type: "runtime", state: "starting" };
      return await woken();
    },
    reportUnreachable: async () => false,
  } as unknown as RuntimeManager;
  return { runtimes, wakes };
}

/** A workspace whose runtimes are {@link recordedRuntimes}, a session there, and its first message's events. */
async function helloWith(state: "running" | "stopped", wakeMs?: number) {
  const f = await fixture();
  const g = standInGateway();
  const r = recordedRuntimes(state, wakeMs);
  const chat = replica(g.gateway, f.userId, { runtimes: r.runtimes });
  const session = await chat.createSession(f.ctx, f.wid, { agentId: f.agentId });
  const { events } = await send(chat, f.ctx, f.wid, session.id, "hello");
  return { f, g, r, session, events };
}

describe("the workspace's runtime, looked up while the message is stored", () => {
  it("a running gateway is readied beside the transaction and the turn uses it: no second wake", async () => {
    const { r, events } = await helloWith("running");
    expect(events.at(-1)).toMatchObject({ type: "done", status: "complete" });
    expect(events.some((e) => e.type === "runtime")).toBe(false);
    expect(r.wakes).toEqual(["ready"]);
  });

  it("a readied wake still under way when the turn starts (a restart) is joined, with its progress shown", async () => {
    const { r, events } = await helloWith("running", 300);
    expect(events.at(-1)).toMatchObject({ type: "done", status: "complete" });
    expect(r.wakes).toEqual(["ready", "progress"]);
    expect(events.find((e) => e.type === "runtime")).toMatchObject({ state: "starting", expectedSeconds: 12 });
  });

  it("a stopped workspace is started by the turn, saying so, and a refused message starts nothing", async () => {
    const { f, g, r, session, events } = await helloWith("stopped");
    expect(events[0]).toMatchObject({ type: "runtime", state: "starting", expectedSeconds: 12 });
    expect(events.at(-1)).toMatchObject({ type: "done", status: "complete" });
    expect(r.wakes).toEqual(["progress"]);

    const refused = recordedRuntimes("stopped");
    const capped = replica(g.gateway, f.userId, {
      runtimes: refused.runtimes,
      // An allowance of no messages: this one is refused.
      limits: { messages: 0, tokens: null },
    });
    await expect(capped.startTurn(f.ctx, f.wid, session.id, "one more")).rejects.toThrow(QuotaExceededError);
    await new Promise((res) => setTimeout(res, 50));
    expect(refused.wakes).toEqual([]);
  });
});

describe("a message's writes", () => {
  /** A second person in `f`'s workspace. */
  async function member(f: Awaited<ReturnType<typeof fixture>>) {
    const userId = randomUUID();
    await t.owner.query("insert into users (id, email, name) values ($1, $2, 'm')", [userId, `${userId}@example.com`]);
    await t.owner.query("insert into workspace_members (workspace_id, user_id, role) values ($1, $2, 'member')", [
      f.wid,
      userId,
    ]);
    const ctx: RequestContext = { actor: { kind: "user", userId, platformRole: "user", sessionId: randomUUID() } };
    return { userId, ctx };
  }
  const sends = async (wid: string) =>
    (
      await t.owner.query<{ details: { messageId: number } }>(
        "select details from audit_log where workspace_id = $1 and action = 'chat.message.send' order by id",
        [wid],
      )
    ).rows.map((r) => r.details.messageId);
  const counted = async (wid: string) =>
    (await t.owner.query<{ messages: number }>("select messages from usage_monthly where workspace_id = $1", [wid]))
      .rows[0]?.messages ?? 0;

  it("messages sent at once by two people in several sessions are each stored sealed, counted once and audited in one unbroken chain", async () => {
    const f = await fixture();
    const m = await member(f);
    const g = standInGateway();
    const people = [
      { ctx: f.ctx, chat: replica(g.gateway, f.userId) },
      { ctx: m.ctx, chat: replica(g.gateway, m.userId) },
    ];
    const sessions = await Promise.all(
      people.flatMap((p) =>
        [0, 1, 2].map(async (i) => ({
          ...p,
          i,
          id: (await p.chat.createSession(p.ctx, f.wid, { agentId: f.agentId })).id,
        })),
      ),
    );
    const firsts = await Promise.all(sessions.map((s) => send(s.chat, s.ctx, f.wid, s.id, `first ${s.id}`)));
    const seconds = await Promise.all(sessions.map((s) => send(s.chat, s.ctx, f.wid, s.id, `second ${s.id}`)));

    for (const [k, s] of sessions.entries()) {
      const [one, two] = [firsts[k], seconds[k]];
      if (!one || !two) throw new Error("a send is missing");
      expect(one.events.at(-1)).toMatchObject({ type: "done", status: "complete" });
      // Question before answer, and a later message after an earlier one.
      expect(one.userMessageId).toBeLessThan(one.assistantMessageId);
      expect(one.assistantMessageId).toBeLessThan(two.userMessageId);
      const { items } = await s.chat.listMessages(s.ctx, f.wid, s.id, {});
      expect(items.map((x) => [x.id, x.role, x.content])).toEqual([
        [one.userMessageId, "user", `first ${s.id}`],
        [one.assistantMessageId, "assistant", "ok"],
        [two.userMessageId, "user", `second ${s.id}`],
        [two.assistantMessageId, "assistant", "ok"],
      ]);
    }
    // At rest, the questions are sealed, each under its own id.
    const stored = await t.owner.query<{ id: number; content: string; sealed: boolean }>(
      "select id, content, sealed from chat_messages where workspace_id = $1 and role = 'user'",
      [f.wid],
    );
    expect(stored.rows).toHaveLength(12);
    for (const row of stored.rows) {
      expect(row.sealed).toBe(true);
      expect(row.content).not.toMatch(/first|second/);
    }
    expect(await counted(f.wid)).toBe(12);
    // One audit entry per message, naming it, in a chain that verifies.
    expect((await sends(f.wid)).sort((a, b) => a - b)).toEqual(
      [...firsts, ...seconds].map((x) => x.userMessageId).sort((a, b) => a - b),
    );
    expect((await verifyAuditChains(createDb(t.owner))).breaks).toEqual([]);
  });

  it("a sender waits for its session's row before it locks the workspace's usage and audit head, the order a rename takes them", async () => {
    const f = await fixture();
    const g = standInGateway();
    const chat = replica(g.gateway, f.userId);
    const session = await chat.createSession(f.ctx, f.wid, { agentId: f.agentId });
    // The month's usage row and the chain's head exist from here on.
    await send(chat, f.ctx, f.wid, session.id, "first");
    // What a rename in flight holds: the session's row, until it has audited.
    const renaming = await t.owner.connect();
    const probe = await t.owner.connect();
    try {
      await renaming.query("begin");
      await renaming.query("select 1 from chat_sessions where id = $1 for no key update", [session.id]);
      const sending = send(chat, f.ctx, f.wid, session.id, "second");
      const blocked = async () =>
        (
          await t.owner.query<{ n: number }>(
            "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()",
          )
        ).rows[0]?.n ?? 0;
      for (let i = 0; (await blocked()) === 0; i++) {
        if (i > 200) throw new Error("the send never waited for the session's row");
        await new Promise((r) => setTimeout(r, 10));
      }
      // Meanwhile neither lock a rename needs next is held by the waiting sender (else the two deadlock).
      await probe.query("begin");
      await probe.query("select 1 from audit_chain_heads where chain = $1 for update nowait", [f.wid]);
      await probe.query("select 1 from usage_monthly where workspace_id = $1 for update nowait", [f.wid]);
      await probe.query("rollback");
      await renaming.query("rollback");
      expect((await sending).events.at(-1)).toMatchObject({ type: "done", status: "complete" });
    } finally {
      await renaming.query("rollback").catch(() => {});
      await probe.query("rollback").catch(() => {});
      renaming.release();
      probe.release();
    }
  });

  it("a message over the allowance leaves nothing behind: no rows, no count, no audit entry", async () => {
    const f = await fixture();
    const g = standInGateway();
    const open = replica(g.gateway, f.userId, { limits: { messages: 2, tokens: null } });
    const session = await open.createSession(f.ctx, f.wid, { agentId: f.agentId });
    await send(open, f.ctx, f.wid, session.id, "one");
    await send(open, f.ctx, f.wid, session.id, "two");
    const before = await open.listMessages(f.ctx, f.wid, session.id, {});
    await expect(open.startTurn(f.ctx, f.wid, session.id, "three")).rejects.toMatchObject({
      code: "QUOTA_EXCEEDED",
      details: { limit: "messages", used: 2, max: 2 },
    });
    expect(await open.listMessages(f.ctx, f.wid, session.id, {})).toEqual(before);
    expect(await counted(f.wid)).toBe(2);
    expect(await sends(f.wid)).toHaveLength(2);
    expect(g.prompts).toEqual(["one", "two"]);
    expect((await verifyAuditChains(createDb(t.owner))).breaks).toEqual([]);
  });
});
