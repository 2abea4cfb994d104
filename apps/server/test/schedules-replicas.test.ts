/**
 * Schedules across two complete Reef replicas: two apps as the server builds
 * them (each with its own pools, services, pg-boss scheduler and runtime
 * manager) on one database, listening on real ports, with the process driver,
 * a real sandboxed OpenClaw gateway and the LLM stand-in. A schedule firing
 * every minute records exactly one run per firing, and the workspace's runtime,
 * stopped between firings, is woken for each. A provider answering 500 (which
 * OpenClaw retries itself for over a minute) ends the run `timed_out` at its
 * deadline, and the turn is stopped. A scheduled run's tool approval reaches an admin who did not create
 * the schedule, and the run goes on once approved.
 */
import { randomBytes } from "node:crypto";
import type { ChatService } from "@reef/core";
import { buildApp, servicesOf } from "@reef/server";
import {
  addAgent,
  addStandInProvider,
  createTestDatabase,
  echoReply,
  execAfterRun,
  type HttpClient,
  httpClient,
  type LlmStandIn,
  listenLocal,
  signUp,
  silentLogger,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const LLM_KEY = `sk-replicas-${randomBytes(8).toString("hex")}`;
const PROMPT = "Write the stand-up summary (replicas)";
const FAILING = "Check the build (provider down)";
/**
 * Every minute, as the issue asks: a stopped runtime's wake (about 20 s here, 30 s and more on a busy CI
 * machine) plus the answer and the stop must fit between two firings, which 30 s did not always.
 */
const EVERY_MINUTE = "* * * * *";

let db: TestDatabase;
let llm: LlmStandIn;
/** While set, the stand-in answers every request with a 500 (OpenClaw's own retries included). */
let providerDown = false;
/** When the stand-in answered each request with its 500. */
const failedAt: number[] = [];
const apps: { app: FastifyInstance; base: string }[] = [];
/** Which app's scheduler started each run's turn (by request id `schedule-run:<runId>`). */
const executedBy = new Map<string, number>();

/** A person, with their session on app 1 (`a`) and on app 2 (`b`). */
type Person = Awaited<ReturnType<typeof signUp>> & { a: HttpClient; b: HttpClient };
let owner: Person;
let admin: Person;
let member: Person;
let wid = "";
let agentId = "";
let providerId = "";

interface Run {
  id: string;
  status: string;
  scheduledFor: string;
  attempts: number;
  errorCode: string | null;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** The first of `xs`, which the test made sure exists. */
function first<T>(xs: readonly T[]): T {
  const x = xs[0];
  if (x === undefined) throw new Error("expected an item");
  return x;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records which app ran each scheduled turn: both apps' executors call their own chat service. */
function watchTurns(chat: ChatService, index: number) {
  const startTurn = chat.startTurn.bind(chat);
  chat.startTurn = (ctx, ...rest) => {
    const runId = ctx.requestId?.startsWith("schedule-run:") ? ctx.requestId.slice("schedule-run:".length) : undefined;
    if (runId) executedBy.set(runId, index);
    return startTurn(ctx, ...rest);
  };
}

async function person(name: string, role?: "admin" | "member"): Promise<Person> {
  const p = await signUp(first(apps).app, { name });
  const [a, b] = apps.map((x) => httpClient(x.base, p.client)) as [HttpClient, HttpClient];
  if (role) {
    const invite = await owner.a.json("POST", `/api/v1/workspaces/${wid}/invites`, { email: p.email, role });
    expect(invite.status).toBe(201);
    expect((await b.json("POST", `/api/v1/invites/${invite.body.token}/accept`)).status).toBe(200);
  }
  return { ...p, a, b };
}

async function runtimeRow() {
  const r = await db.owner.query(
    "select state, started_at, stopped_at, restarts from runtimes where workspace_id = $1",
    [wid],
  );
  return r.rows[0] as { state: string; started_at: Date | null; stopped_at: Date | null } | undefined;
}

async function runsOf(scheduleId: string, via: HttpClient): Promise<Run[]> {
  const res = await via.json("GET", `/api/v1/workspaces/${wid}/schedules/${scheduleId}/runs?limit=50`);
  expect(res.status).toBe(200);
  return res.body.items as Run[];
}

/** Polls the run history until `done` holds for it, or fails after `withinMs`. */
async function until(scheduleId: string, done: (runs: Run[]) => boolean, withinMs: number): Promise<Run[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const runs = await runsOf(scheduleId, owner.a);
    if (done(runs)) return runs;
    if (Date.now() > deadline) throw new Error(`runs not as awaited within ${withinMs} ms: ${JSON.stringify(runs)}`);
    await sleep(250);
  }
}

async function stopRuntime(via: HttpClient) {
  const res = await via.json("POST", `/api/v1/workspaces/${wid}/runtime/stop`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  for (let i = 0; i < 120; i++) {
    if ((await runtimeRow())?.state === "stopped") return;
    await sleep(250);
  }
  throw new Error("the runtime did not stop");
}

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: LLM_KEY,
    models: ["stand-in-model"],
    fail: () => {
      if (!providerDown) return undefined;
      failedAt.push(Date.now());
      return { status: 500, message: "The server had an error while processing your request." };
    },
    reply: echoReply,
    toolCalls: execAfterRun,
  });
  db = await createTestDatabase();
  // One configuration for both replicas: the same root key (gateway tokens, CSRF) and data directory.
  const config = testAppConfig({
    runtimeIdleTimeoutMinutes: 60,
    scheduleMinIntervalSeconds: 1,
    schedulerPollSeconds: 0.5,
    scheduleRetryLimit: 1,
    scheduleRetryDelaySeconds: 2,
  });
  for (const database of [db.database, await db.openAnother()]) {
    const app = await buildApp({ config, database, logger: silentLogger });
    watchTurns(servicesOf(app).chat, apps.length);
    apps.push({ app, base: await listenLocal(app) });
  }
  const o = await signUp(first(apps).app, { name: "Olive Owner" });
  const [a, b] = apps.map((x) => httpClient(x.base, o.client)) as [HttpClient, HttpClient];
  owner = { ...o, a, b };
  wid = o.workspaceId;
  admin = await person("Ada Admin", "admin");
  member = await person("Max Member", "member");
  providerId = await addStandInProvider(owner.a, wid, llm, LLM_KEY);
  agentId = await addAgent(owner.a, wid, { name: "Reporter", providerId, model: "stand-in-model" });
}, 90_000);

afterAll(async () => {
  // Gateways first (either replica may have started them), then the second app, then the first and the database.
  for (const a of apps) await servicesOf(a.app).runtimeManager.stopAll("test over");
  await apps[1]?.app.close();
  await stopTestApp(apps[0]?.app, db);
  await llm?.close();
}, 120_000);

afterEach(() => {
  providerDown = false;
});

describe.runIf(process.getuid?.() === 0)("schedules on two Reef replicas with a real gateway", () => {
  it("fires once per occurrence across both replicas and wakes the stopped runtime for each", async () => {
    const t0 = Date.now();
    const requestsBefore = llm.requests.length;
    const created = await owner.a.json("POST", `/api/v1/workspaces/${wid}/schedules`, {
      name: "Stand-up",
      agentId,
      kind: "cron",
      cron: EVERY_MINUTE,
      timezone: "UTC",
      prompt: PROMPT,
      timeoutSeconds: 60,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const sid = created.body.id as string;

    /** Per firing: when the runtime was seen stopped before it, and the run as it ended. */
    const firings: { stoppedSeenAt: number; run: Run }[] = [];
    let stoppedSeenAt = Date.now(); // never started yet: no runtime row, nothing running
    expect((await runtimeRow())?.state ?? "stopped").toBe("stopped");
    for (let n = 1; n <= 3; n++) {
      const runs = await until(sid, (rs) => rs.filter((r) => r.status === "succeeded").length >= n, 130_000);
      const run = runs.find((r) => r.status === "succeeded" && !firings.some((f) => f.run.id === r.id));
      if (!run) throw new Error("no new run");
      firings.push({ stoppedSeenAt, run });
      if (n === 3) {
        // Paused at once, so no fourth firing comes while the runtime stops.
        const paused = await owner.b.json("PATCH", `/api/v1/workspaces/${wid}/schedules/${sid}`, { enabled: false });
        expect(paused.status).toBe(200);
        expect(paused.body.nextRunAt).toBeNull();
      }
      // Stopped through the other replica's API than the one that created the schedule.
      await stopRuntime(n % 2 ? owner.b : owner.a);
      stoppedSeenAt = Date.now();
    }

    // Exactly one run per firing, at consecutive occurrences of the rule.
    const all = (
      await db.owner.query(
        "select id, status, scheduled_for, started_at, finished_at, attempts from schedule_runs where schedule_id = $1 order by scheduled_for",
        [sid],
      )
    ).rows as {
      id: string;
      status: string;
      scheduled_for: Date;
      started_at: Date;
      finished_at: Date;
      attempts: number;
    }[];
    expect(all.map((r) => [r.status, r.attempts])).toEqual([
      ["succeeded", 1],
      ["succeeded", 1],
      ["succeeded", 1],
    ]);
    const times = all.map((r) => r.scheduled_for.getTime());
    for (const t of times) expect(t % 60_000).toBe(0);
    expect(times.slice(1).map((t, i) => t - (times[i] ?? 0))).toEqual([60_000, 60_000]);
    expect(firings.map((f) => new Date(f.run.scheduledFor).getTime())).toEqual(times);

    // One LLM request per firing, each carrying the prompt (no retries, no duplicates from the other replica).
    const requests = llm.requests.slice(requestsBefore);
    expect(requests).toHaveLength(3);
    for (const r of requests) expect(JSON.stringify(r.body.messages)).toContain(PROMPT);

    // The runtime was stopped before each firing and started afresh for it.
    const figures: string[] = [];
    for (const [i, f] of firings.entries()) {
      const row = all[i];
      if (!row) throw new Error(`no run row for firing ${i + 1}`);
      expect(f.stoppedSeenAt).toBeLessThanOrEqual(row.scheduled_for.getTime());
      figures.push(
        `firing ${i + 1}: started +${row.started_at.getTime() - row.scheduled_for.getTime()} ms, ` +
          `answered +${row.finished_at.getTime() - row.scheduled_for.getTime()} ms after its time, ` +
          `by app ${(executedBy.get(row.id) ?? -1) + 1}`,
      );
    }
    const starts = (
      await db.owner.query(
        "select count(*)::int as n from audit_log where workspace_id = $1 and action in ('runtime.start', 'runtime.restart')",
        [wid],
      )
    ).rows[0]?.n;
    figures.push(`runtime.start audit entries: ${starts}`);
    console.log(`[schedules-replicas] ${figures.join("; ")}; whole test ${Date.now() - t0} ms`);
    // Each answer arrived after a start that began after the firing: the run woke it.
    const wokenFor = await db.owner.query(
      `select r.id from schedule_runs r where r.schedule_id = $1 and exists (
         select 1 from audit_log a where a.workspace_id = r.workspace_id and a.action in ('runtime.start', 'runtime.restart')
           and a.occurred_at >= r.scheduled_for and a.occurred_at <= r.finished_at)`,
      [sid],
    );
    expect(wokenFor.rowCount).toBe(3);
    // Every run was executed by one of the two replicas.
    expect(all.every((r) => executedBy.has(r.id))).toBe(true);

    // The history, read through the second replica, shows the output.
    const history = await runsOf(sid, owner.b);
    expect(history.map((r) => r.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    const detail = await owner.b.json("GET", `/api/v1/workspaces/${wid}/schedules/${sid}/runs/${first(history).id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.output.prompt).toBe(PROMPT);
    expect(detail.body.output.content).toContain(`Stand-in reply to: ${PROMPT}`);
  }, 300_000);

  // Measured here: OpenClaw retries a provider's 500 itself (8 requests over ~75 s, backing off) before it
  // reports the failure; a run with one retry then ended `failed` PROVIDER_ERROR after ~145 s. Too long to
  // wait out in every run: the run's timeout (30 s, the least) ends it `timed_out`, and the turn is stopped.
  it("a provider answering 500 (OpenClaw retrying it) ends the run timed_out at its deadline, the turn stopped", async () => {
    // The gateway is running first, so the figures are the provider failure's, not a wake's.
    const started = await owner.a.json("POST", `/api/v1/workspaces/${wid}/runtime/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const created = await owner.b.json("POST", `/api/v1/workspaces/${wid}/schedules`, {
      name: "Build check",
      agentId,
      kind: "cron",
      cron: "0 0 1 1 *",
      prompt: FAILING,
      enabled: false,
      timeoutSeconds: 30,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const sid = created.body.id as string;
    providerDown = true;
    const asked = Date.now();
    const now = await owner.a.json("POST", `/api/v1/workspaces/${wid}/schedules/${sid}/run`);
    expect(now.status, JSON.stringify(now.body)).toBe(202);
    const run = first(await until(sid, (rs) => rs[0]?.status === "failed" || rs[0]?.status === "timed_out", 90_000));
    const took = Date.now() - asked;
    const triesByEnd = failedAt.length;
    // Stopped at the deadline: the gateway does not go on asking the provider.
    await sleep(8_000);
    providerDown = false;
    console.log(
      `[schedules-replicas] 500: run ended ${run.status} ${run.errorCode} after ${took} ms, attempts ${run.attempts}, ` +
        `by app ${(executedBy.get(run.id) ?? -1) + 1}, stand-in 500s at +${failedAt.map((t) => t - asked).join(", +")} ms ` +
        `(${failedAt.length - triesByEnd} after the end); error: ${run.error}`,
    );
    expect(run).toMatchObject({ status: "timed_out", attempts: 1, errorCode: "TIMED_OUT" });
    expect(run.error).toBe("The run took longer than its timeout (30 s) and was stopped.");
    expect(took).toBeGreaterThanOrEqual(29_000);
    expect(took).toBeLessThan(50_000);
    expect(triesByEnd).toBeGreaterThanOrEqual(2);
    expect(failedAt.length - triesByEnd).toBeLessThanOrEqual(1);
    const detail = await owner.b.json("GET", `/api/v1/workspaces/${wid}/schedules/${sid}/runs/${run.id}`);
    expect(detail.status).toBe(200);
    const view = await owner.b.json("GET", `/api/v1/workspaces/${wid}/schedules/${sid}`);
    expect(view.body).toMatchObject({ consecutiveFailures: 1, lastRunStatus: "timed_out" });
  }, 150_000);

  it("a scheduled run's tool approval reaches an admin who did not create it; approved, the run succeeds", async () => {
    const shellAgent = await addAgent(owner.a, wid, {
      name: "Operator",
      providerId,
      model: "stand-in-model",
      tools: ["shell"],
      execPolicy: "ask",
    });
    const command = "uname -s";
    const created = await member.a.json("POST", `/api/v1/workspaces/${wid}/schedules`, {
      name: "Kernel check",
      agentId: shellAgent,
      kind: "cron",
      cron: "0 0 1 1 *",
      prompt: `please run: ${command}`,
      enabled: false,
      timeoutSeconds: 150,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const sid = created.body.id as string;
    // App 1 takes no more jobs: the run, asked for through app 1, is app 2's to execute.
    await servicesOf(first(apps).app).scheduler.stop();
    expect((await member.a.json("POST", `/api/v1/workspaces/${wid}/schedules/${sid}/run`)).status).toBe(202);
    const asked = Date.now();
    type Approval = { id: string; status: string; canDecide: boolean; subject: string };
    let approval: Approval | undefined;
    while (!approval) {
      const inbox = await admin.b.json("GET", `/api/v1/workspaces/${wid}/approvals`);
      expect(inbox.status).toBe(200);
      approval = (inbox.body.items as Approval[]).find((a) => a.subject === command);
      if (Date.now() - asked > 120_000) {
        const runs = await runsOf(sid, owner.a);
        throw new Error(`no approval reached the admin; the run: ${JSON.stringify(runs[0])}`);
      }
      if (!approval) await sleep(250);
    }
    expect(approval).toMatchObject({ status: "pending", canDecide: true });
    const decided = await admin.a.json("POST", `/api/v1/workspaces/${wid}/approvals/${approval.id}/decision`, {
      decision: "allow-once",
    });
    expect(decided.status, JSON.stringify(decided.body)).toBe(200);
    const run = first(await until(sid, (rs) => !["queued", "running"].includes(rs[0]?.status ?? "queued"), 60_000));
    console.log(`[schedules-replicas] approval reached the admin after ${Date.now() - asked} ms; run ${run.status}`);
    expect(run).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(executedBy.get(run.id)).toBe(1);
    const detail = await member.b.json("GET", `/api/v1/workspaces/${wid}/schedules/${sid}/runs/${run.id}`);
    expect(detail.body.output.content).toContain("Linux");
  }, 200_000);
});
