import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { schema, withScope, withWorkspace } from "@reef/db";
import type { GatewayTurnEvent, GatewayTurnRequest } from "@reef/runtime";
import { createTestDatabase, type SmtpStandIn, startSmtpStandIn, type TestDatabase } from "@reef/testing";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentService } from "../src/agents/agent-service.ts";
import { createChatService } from "../src/chat/chat-service.ts";
import type { GatewayChat } from "../src/chat/turn-runner.ts";
import { createSmtpMailer } from "../src/mail/mailer.ts";
import { createQuotaService } from "../src/quotas/quota-service.ts";
import { scheduleSecretRecordId } from "../src/schedules/schedule-types.ts";
import { createScheduler } from "../src/schedules/scheduler.ts";
import { newWebhookSecret, verifyWebhook } from "../src/schedules/webhook-signature.ts";
import type { RequestContext } from "../src/shared/context.ts";
import { createVault } from "../src/vault/vault-service.ts";
import type { WorkspaceGate } from "../src/workspace/workspace-access.ts";
import { FakeDriver } from "./fake-driver.ts";
import { runtimeTestKit, SYSTEM } from "./runtime-test-kit.ts";

/**
 * The scheduler engine with two replicas on one database, each with its own
 * pg-boss, chat service and runtime manager (on a fake driver); the gateway is
 * a stand-in that records every prompt it receives, so firings take
 * milliseconds and can be counted exactly.
 */
let t: TestDatabase;
let smtp: SmtpStandIn;
const kit = runtimeTestKit(() => t);
const keyring = { current: randomBytes(32), previous: [] };
const driver = new FakeDriver({ startDelayMs: 30 });

/** What the stand-in gateway received: each prompt, and when. */
const received: { text: string; at: number; key: string }[] = [];
/** Session keys whose turns answer with a provider's 500. */
const failingKeys = new Set<string>();

const gateway: GatewayChat = {
  streamTurn(req: GatewayTurnRequest) {
    received.push({ text: req.text, at: Date.now(), key: req.sessionKey });
    const fail = [...failingKeys].some((k) => req.sessionKey.includes(k));
    return (async function* (): AsyncGenerator<GatewayTurnEvent> {
      if (fail) {
        yield { type: "error", message: "500 Internal Server Error from the provider" };
        return;
      }
      yield { type: "delta", text: `done: ${req.text}` };
      yield { type: "usage", promptTokens: 11, completionTokens: 7 };
    })();
  },
  async deleteSessions() {
    return { failed: [] };
  },
};

const CONFIG = {
  schedulerEnabled: true,
  schedulerConcurrency: 4,
  schedulerPollSeconds: 0.5,
  scheduleRetryLimit: 2,
  scheduleRetryDelaySeconds: 1,
  scheduleFailureAlertAfter: 3,
  notifyRetryDelaySeconds: 1,
};

/** A notification's receiver: what each call brought, on which listener, and what it was answered. */
interface Call {
  listener: "allowed" | "refused";
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  answered: number;
}
const calls: Call[] = [];
/** The same recorder on two ports: the operator allows the first (`127.0.0.1:<port>`), not the second. */
let receivers: Server[] = [];
let allowedHosts: string[] = [];

/** Records every call; the first call to a path is answered 500, later ones 200. */
function receiver(listener: Call["listener"]): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "";
      const answered = calls.some((c) => c.path === path) ? 200 : 500;
      calls.push({
        listener,
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
        answered,
      });
      res.writeHead(answered).end();
    });
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

function replica() {
  const db = t.database.db;
  const gate = {
    run: (
      ctx: RequestContext,
      workspaceId: string,
      _perm: string,
      fn: (tx: unknown, access: unknown) => Promise<unknown>,
    ) =>
      withScope(db, { workspaceId }, (tx) =>
        fn(tx, { workspaceId, role: "owner", userId: ctx.actor.kind === "user" ? ctx.actor.userId : null }),
      ),
  } as unknown as WorkspaceGate;
  const agents = {
    forChat: async (_tx: unknown, _access: unknown, id: string) => ({ id, instructions: "", temperature: null }),
  } as unknown as AgentService;
  const quotas = createQuotaService({ gate, limits: { messages: null, tokens: null } });
  const runtimes = kit.manager(driver);
  const vault = createVault({ keyring });
  const chat = createChatService({
    db,
    gate,
    agents,
    runtimes,
    quotas,
    vault,
    gateway,
    flushEveryMs: 200,
    heartbeatMs: 1000,
  });
  const scheduler = createScheduler({
    db,
    appUrl: t.appUrl,
    config: CONFIG,
    chat,
    vault,
    mailer: async () => createSmtpMailer({ server: smtp.url, from: "reef@example.com" }),
    publicUrl: async () => "http://reef.example",
    allowedHosts: async () => allowedHosts,
    log: { info: () => {}, warn: (obj, msg) => console.warn(msg, obj) },
  });
  return { chat, runtimes, scheduler };
}

let a: ReturnType<typeof replica>;
let b: ReturnType<typeof replica>;

beforeAll(async () => {
  t = await createTestDatabase();
  smtp = await startSmtpStandIn();
  receivers = [receiver("allowed"), receiver("refused")];
  const [allowedPort] = await Promise.all(receivers.map(listen));
  allowedHosts = [`127.0.0.1:${allowedPort}`];
  a = replica();
  b = replica();
  await Promise.all([a.scheduler.start(), b.scheduler.start()]);
}, 60_000);

afterAll(async () => {
  for (const r of [a, b]) {
    await r?.scheduler.stop();
    await r?.chat.interruptAll();
    await r?.scheduler.close();
    await r?.runtimes.stopAll("test over");
  }
  await smtp?.close();
  await Promise.all(receivers.map((r) => new Promise((resolve) => r.close(resolve))));
  await t?.drop();
});

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) {
      const { rows } = await t.owner.query(
        "select id, status, attempts, error_code, error, scheduled_for, queued_at, started_at from schedule_runs order by queued_at",
      );
      const jobs = await t.owner.query(
        "select name, state, start_after, retry_count, output, created_on from pgboss.job order by created_on",
      );
      const sch = await t.owner.query("select id, next_run_at, enabled from schedules");
      throw new Error(
        `timed out waiting for ${what}: ${JSON.stringify(rows)} ${JSON.stringify(jobs.rows)} ${JSON.stringify(sch.rows)} now ${new Date().toISOString()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A workspace with its owner (the schedules' creator), an admin and a member, and an agent. */
async function workspace() {
  const owner = await kit.user();
  const wid = await kit.workspace(owner);
  const admin = await kit.user();
  const member = await kit.user();
  await kit.join(wid, admin, "admin");
  await kit.join(wid, member, "member");
  const { agentId } = await kit.agent(wid);
  return { wid, owner, admin, member, agentId };
}

type Row = typeof schema.schedules.$inferSelect;

async function schedule(wid: string, owner: string, agentId: string, set: Partial<Row>): Promise<Row> {
  return withWorkspace(t.database.db, wid, async (tx) => {
    const [row] = await tx
      .insert(schema.schedules)
      .values({
        workspaceId: wid,
        agentId,
        name: "Stand-up",
        kind: "cron",
        prompt: "Say hi",
        createdByUserId: owner,
        ...set,
      })
      .returning();
    if (!row) throw new Error("no row");
    await a.scheduler.plan(tx, row);
    return row;
  });
}

/** Changes a schedule as the schedule service does: update, then plan, in one transaction. */
async function change(wid: string, id: string, set: Partial<Row>) {
  return withWorkspace(t.database.db, wid, async (tx) => {
    const [row] = await tx.update(schema.schedules).set(set).where(eq(schema.schedules.id, id)).returning();
    if (!row) throw new Error("no row");
    return b.scheduler.plan(tx, row);
  });
}

async function runs(scheduleId: string) {
  const { rows } = await t.owner.query(
    "select * from schedule_runs where schedule_id = $1 order by scheduled_for, queued_at",
    [scheduleId],
  );
  return rows as {
    id: string;
    status: string;
    trigger: string;
    scheduled_for: Date;
    started_at: Date | null;
    finished_at: Date | null;
    attempts: number;
    error_code: string | null;
    error: string | null;
    message_id: string | null;
    session_id: string | null;
    prompt_tokens: number | null;
    notify_status: string | null;
  }[];
}

async function scheduleRow(id: string) {
  const { rows } = await t.owner.query("select * from schedules where id = $1", [id]);
  return rows[0];
}

describe("scheduler engine (two replicas, one database)", () => {
  it("fires once per firing across two replicas, waking a runtime stopped between firings", async () => {
    const w = await workspace();
    const s = await schedule(w.wid, w.owner, w.agentId, { cron: "*/4 * * * * *", prompt: "Daily report" });
    const latencies: number[] = [];
    for (let n = 1; n <= 3; n++) {
      const done = await until(
        `firing ${n}`,
        async () => {
          const r = await runs(s.id);
          return r.length >= n && r.slice(0, n).every((x) => x.status === "succeeded") && r;
        },
        15_000,
      );
      const run = done[n - 1];
      if (!run) throw new Error("no run");
      const prompt = received.find((p) => p.key.includes(run.session_id ?? "-") && p.at >= run.scheduled_for.getTime());
      if (prompt) latencies.push(prompt.at - run.scheduled_for.getTime());
      // The runtime sleeps between firings: each one must wake it.
      expect((await a.runtimes.get(w.wid)).state).toBe("running");
      await a.runtimes.stop(SYSTEM, w.wid, "test: asleep between firings");
      expect((await a.runtimes.get(w.wid)).state).toBe("stopped");
    }
    // Paused: no firing after this (the planned job finds nothing to claim).
    await change(w.wid, s.id, { enabled: false });
    await new Promise((r) => setTimeout(r, 5000));
    const all = await runs(s.id);
    const prompts = received.filter((p) => p.text === "Daily report");
    // Exactly one run per firing, each a distinct occurrence 4 s apart, and the gateway asked once per run.
    expect(all.length).toBeGreaterThanOrEqual(3);
    expect(new Set(all.map((r) => r.scheduled_for.getTime())).size).toBe(all.length);
    expect(all.every((r) => r.scheduled_for.getSeconds() % 4 === 0 && r.trigger === "schedule")).toBe(true);
    expect(prompts.length).toBe(all.length);
    expect(
      all.every((r) => r.status === "succeeded" && r.attempts === 1 && r.message_id && r.prompt_tokens === 11),
    ).toBe(true);
    // Every run woke the runtime: three starts at least, one per firing after a stop.
    expect(driver.starts.filter((sp) => sp.workspaceId === w.wid).length).toBeGreaterThanOrEqual(3);
    const row = await scheduleRow(s.id);
    expect(row.next_run_at).toBeNull();
    expect(row.last_run_status).toBe("succeeded");
    console.info(
      `firing latency (scheduled time → prompt at the gateway, waking included): ${latencies.join(", ")} ms`,
    );
    const actions = await kit.auditActions(w.wid);
    expect(actions.filter((x) => x === "schedule.run.start").length).toBe(all.length);
    expect(actions.filter((x) => x === "schedule.run.succeed").length).toBe(all.length);
  }, 60_000);

  it("retries a failing run, ends it failed, and alerts the creator and admins once per streak", async () => {
    const w = await workspace();
    const s = await schedule(w.wid, w.owner, w.agentId, { cron: "0 0 1 1 *", prompt: "Fails" });
    failingKeys.add(w.owner);
    const enqueue = () =>
      withWorkspace(t.database.db, w.wid, async (tx) =>
        a.scheduler.enqueueRun(tx, s, { trigger: "manual", requestedByUserId: w.owner }),
      );
    const started = Date.now();
    for (let n = 1; n <= 4; n++) {
      const run = await enqueue();
      await until(
        `failed run ${n}`,
        async () => (await runs(s.id)).find((r) => r.id === run.id && r.status === "failed"),
        20_000,
      );
    }
    const all = await runs(s.id);
    console.info(`4 failing runs with 3 attempts each took ${Date.now() - started} ms`);
    expect(all.every((r) => r.status === "failed" && r.attempts === 3 && r.error_code === "PROVIDER_ERROR")).toBe(true);
    expect(all[0]?.error).toMatch(/500/);
    const row = await scheduleRow(s.id);
    expect(row.consecutive_failures).toBe(4);
    expect(row.failure_alerted_at).not.toBeNull();
    // One alert each to the creator (owner) and the admin; none to the plain member; none again on the 4th failure.
    const emails = async (id: string) =>
      (await t.owner.query("select email from users where id = $1", [id])).rows[0].email;
    const alerts = await until("alert mail", async () => {
      const got = smtp.received.filter((m) => m.raw.includes("failed 3 times in a row"));
      return got.length >= 2 && got;
    });
    expect(alerts.flatMap((m) => m.to).sort()).toEqual([await emails(w.owner), await emails(w.admin)].sort());
    expect(smtp.received.some((m) => m.to.includes(w.member) || m.to.includes(`${w.member}@example.com`))).toBe(false);

    // A success ends the streak: the next streak may alert again.
    failingKeys.delete(w.owner);
    const ok = await enqueue();
    await until("a success", async () => (await runs(s.id)).find((r) => r.id === ok.id && r.status === "succeeded"));
    const after = await scheduleRow(s.id);
    expect(after.consecutive_failures).toBe(0);
    expect(after.failure_alerted_at).toBeNull();
  }, 90_000);

  it("resumes, re-plans an edited cron, and skips runs of a deleted agent", async () => {
    const w = await workspace();
    const s = await schedule(w.wid, w.owner, w.agentId, { cron: "0 0 1 1 *", enabled: false, prompt: "Edited" });
    expect((await scheduleRow(s.id)).next_run_at).toBeNull();
    // Resumed with a cron once a year: planned, nothing runs now.
    const next = await change(w.wid, s.id, { enabled: true });
    expect(next?.getUTCMonth()).toBe(0);
    // Edited to every 3 seconds: re-planned; the yearly job left queued is stale and will be dropped.
    const soon = await change(w.wid, s.id, { cron: "*/3 * * * * *" });
    expect(soon && soon.getTime() - Date.now()).toBeLessThanOrEqual(3000);
    const first = await until("a run of the edited rule", async () =>
      (await runs(s.id)).find((r) => r.status === "succeeded"),
    );
    expect(first.scheduled_for.getSeconds() % 3).toBe(0);
    // The agent is deleted: the schedule stays, its next run is skipped with the reason.
    await t.owner.query("delete from agents where id = $1", [w.agentId]);
    const skipped = await until("a skipped run", async () => (await runs(s.id)).find((r) => r.status === "skipped"));
    expect(skipped.error_code).toBe("SKIPPED_AGENT_DELETED");
    await change(w.wid, s.id, { enabled: false });
  }, 60_000);

  it("delivers a signed run notification, retried after a 500, and refuses a host the operator has not allowed", async () => {
    const w = await workspace();
    const vault = createVault({ keyring });
    /** A schedule with a notification URL and its secret, made as the schedule service makes them. */
    const notifying = async (notifyUrl: string) => {
      const id = randomUUID();
      const secret = newWebhookSecret();
      const secretSealed = await withWorkspace(t.database.db, w.wid, (tx) =>
        vault.seal(tx, w.wid, scheduleSecretRecordId(id), secret),
      );
      const s = await schedule(w.wid, w.owner, w.agentId, {
        id,
        cron: "0 0 1 1 *",
        prompt: `Report to ${notifyUrl}`,
        notifyUrl,
        secretSealed,
      });
      return { s, secret };
    };
    const [allowedPort, refusedPort] = receivers.map((r) => (r.address() as AddressInfo).port);
    const ok = await notifying(`http://127.0.0.1:${allowedPort}/hooks/ok`);
    const refused = await notifying(`http://127.0.0.1:${refusedPort}/hooks/refused`);
    const started = Date.now();
    const [run, refusedRun] = await Promise.all(
      [ok, refused].map(({ s }) =>
        withWorkspace(t.database.db, w.wid, (tx) =>
          b.scheduler.enqueueRun(tx, s, { trigger: "manual", requestedByUserId: w.owner }),
        ),
      ),
    );
    if (!run || !refusedRun) throw new Error("no run");

    const delivered = await until("a delivered notification", async () =>
      (await runs(ok.s.id)).find((r) => r.id === run.id && r.notify_status === "delivered"),
    );
    console.info(`run now → notification delivered (one 500, one retry): ${Date.now() - started} ms`);
    expect(delivered.status).toBe("succeeded");
    // Retried after the 500, with the same delivery id, then answered 200 and not called again.
    const got = calls.filter((c) => c.path === "/hooks/ok");
    expect(got.map((c) => c.answered)).toEqual([500, 200]);
    expect(got.every((c) => c.listener === "allowed")).toBe(true);
    const [first, second] = got as [Call, Call];
    console.info(`notification retry came ${second.at - first.at} ms after the 500`);
    for (const c of got) {
      expect(c.headers["x-reef-delivery"]).toBe(run.id);
      expect(c.headers["content-type"]).toBe("application/json");
      // Signed with the schedule's secret over exactly the body sent.
      const verified = verifyWebhook(
        ok.secret,
        {
          timestamp: c.headers["x-reef-timestamp"] as string,
          delivery: c.headers["x-reef-delivery"] as string,
          signature: c.headers["x-reef-signature"] as string,
        },
        c.body,
      );
      expect(verified.deliveryId).toBe(run.id);
      expect(() =>
        verifyWebhook(
          refused.secret,
          {
            timestamp: c.headers["x-reef-timestamp"] as string,
            delivery: c.headers["x-reef-delivery"] as string,
            signature: c.headers["x-reef-signature"] as string,
          },
          c.body,
        ),
      ).toThrow(/signature/i);
    }
    const body = JSON.parse(second.body);
    expect(body).toMatchObject({
      scheduleId: ok.s.id,
      runId: run.id,
      status: "succeeded",
      errorCode: null,
      output: `done: Report to http://127.0.0.1:${allowedPort}/hooks/ok`,
    });
    expect(new Date(body.finishedAt).getTime()).toBe(delivered.finished_at?.getTime());

    // The host the operator did not allow: refused before connecting, marked failed at once, never called.
    const notAllowed = await until("a refused notification", async () =>
      (await runs(refused.s.id)).find((r) => r.id === refusedRun.id && r.notify_status === "failed"),
    );
    expect(notAllowed.status).toBe("succeeded");
    await new Promise((r) => setTimeout(r, 2500));
    expect(calls.filter((c) => c.listener === "refused" || c.path === "/hooks/refused")).toEqual([]);
    expect(calls.filter((c) => c.path === "/hooks/ok").length).toBe(2);
    expect((await runs(ok.s.id)).find((r) => r.id === run.id)?.notify_status).toBe("delivered");
  }, 60_000);
});
