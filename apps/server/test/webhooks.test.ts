/**
 * Inbound webhook triggers end to end: a signed call (over a real port, as n8n
 * or a CI job sends it) starts a run that a real OpenClaw gateway answers with
 * the body rendered into the prompt; a bad signature, a replayed delivery, a
 * call older than five minutes, a paused or unknown trigger and a trigger over
 * its rate limit are refused with their codes and none records a run. The
 * trigger's secret is shown once and then never appears in another response,
 * the audit trail, the job queue or Reef's log.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { signWebhook } from "@reef/core";
import {
  ApiClient,
  addAgent,
  addStandInProvider,
  type LlmStandIn,
  listenTestApp,
  recordingLogger,
  signUp,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const LLM_KEY = `sk-hooks-${randomBytes(8).toString("hex")}`;
const RATE = 4;
const logLines: string[] = [];
/** Every response body any test read, to look for secrets in. */
const responses: string[] = [];
/** Secrets shown at creation or rotation: each may appear only in the one response that showed it. */
const shown = new Map<string, number>();

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;
let wid: string;
let agentId: string;
type Person = Awaited<ReturnType<typeof person>>;
let owner: Person;
let member: Person;

/** Records every body it reads (see `responses`). */
class RecordingClient extends ApiClient {
  override async request(...args: Parameters<ApiClient["request"]>) {
    const res = await super.request(...args);
    responses.push(res.body);
    return res;
  }
}

async function person(name: string) {
  const p = await signUp(app, { name });
  const client = new RecordingClient(app);
  for (const [k, v] of p.client.cookies) client.cookies.set(k, v);
  return { ...p, client };
}

async function createHook(by: ApiClient, extra: Record<string, unknown> = {}) {
  const res = await by.post(`/api/v1/workspaces/${wid}/schedules`, {
    name: `Hook ${randomUUID().slice(0, 6)}`,
    agentId,
    kind: "webhook",
    prompt: "Build {{body.ref}} at {{body.commit.id}} (missing: [{{body.nope.x}}]) whole: {{body}}",
    ...extra,
  });
  expect(res.statusCode, res.body).toBe(201);
  const view = res.json() as { id: string; secret: string; hookPath: string };
  shown.set(view.secret, (shown.get(view.secret) ?? 0) + 1);
  return view;
}

interface CallOptions {
  secret: string;
  body?: string;
  delivery?: string;
  timestamp?: number;
  signature?: string;
  headers?: Record<string, string>;
}

/** A webhook call over the real port, signed as the docs say. */
async function call(path: string, o: CallOptions) {
  const body = o.body ?? JSON.stringify({ ref: "main", commit: { id: "abc123" } });
  const delivery = o.delivery ?? randomUUID();
  const ts = o.timestamp ?? Math.floor(Date.now() / 1000);
  const res = await fetch(base + path, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-reef-timestamp": String(ts),
      "x-reef-delivery": delivery,
      "x-reef-signature": o.signature ?? signWebhook(o.secret, ts, delivery, body),
      ...o.headers,
    },
    body,
  });
  const text = await res.text();
  responses.push(text);
  return { status: res.status, body: text ? JSON.parse(text) : null, delivery };
}

async function runCount(scheduleId: string): Promise<number> {
  const r = await db.owner.query("select count(*)::int as n from schedule_runs where schedule_id = $1", [scheduleId]);
  return r.rows[0].n;
}

beforeAll(async () => {
  llm = await startLlmStandIn({ apiKey: LLM_KEY, models: ["stand-in-model"], reply: (text) => `Built: ${text}` });
  ({ app, db, base } = await listenTestApp({
    config: {
      runtimeIdleTimeoutMinutes: 60,
      schedulerPollSeconds: 0.5,
      rateLimitWebhook: { points: RATE, durationSec: 600 },
    },
    logger: recordingLogger(logLines),
  }));
  owner = await person("Owner");
  wid = owner.workspaceId;
  const providerId = await addStandInProvider(owner.client, wid, llm, LLM_KEY);
  agentId = await addAgent(owner.client, wid, { name: "Ada", providerId, model: "stand-in-model" });
  // Several agents and members, as workspaces that chat have.
  await addAgent(owner.client, wid, { name: "Bea", providerId, model: "stand-in-model" });
  member = await person("Mia");
  const invite = await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: member.email, role: "member" });
  expect((await member.client.post(`/api/v1/invites/${invite.json().token}/accept`)).statusCode).toBe(200);
}, 60_000);

afterAll(async () => {
  await stopTestApp(app, db);
  await llm.close();
}, 120_000);

describe("webhook triggers", () => {
  it("a signed call starts a run that the agent answers with the body rendered into the prompt", async () => {
    const hook = await createHook(member.client);
    const res = await call(hook.hookPath, { secret: hook.secret });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toEqual({ runId: expect.any(String), status: "queued" });
    const row = await db.owner.query("select trigger, delivery_id, prompt_sealed from schedule_runs where id = $1", [
      res.body.runId,
    ]);
    expect(row.rows[0]).toMatchObject({ trigger: "webhook", delivery_id: res.delivery });
    // The rendered prompt is sealed at rest like every transcript.
    expect(row.rows[0].prompt_sealed).not.toContain("abc123");

    const url = `/api/v1/workspaces/${wid}/schedules/${hook.id}/runs/${res.body.runId}`;
    const deadline = Date.now() + 120_000;
    let run = (await member.client.get(url)).json();
    while (["queued", "running"].includes(run.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      run = (await member.client.get(url)).json();
    }
    expect(run, JSON.stringify(run)).toMatchObject({ status: "succeeded", trigger: "webhook", outputHidden: false });
    const rendered = `Build main at abc123 (missing: []) whole: {"ref":"main","commit":{"id":"abc123"}}`;
    expect(run.output.prompt).toBe(rendered);
    expect(run.output.content).toContain("Built:");
    expect(run.output.content).toContain("abc123");
    expect(llm.requests.some((r) => JSON.stringify(r.body.messages).includes("Build main at abc123"))).toBe(true);
    // Only its creator reads it (the schedule does not share its output).
    expect((await owner.client.get(url)).json()).toMatchObject({ outputHidden: true, output: null });
    const audit = await db.owner.query(
      "select actor_type, actor_id, details from audit_log where action = 'schedule.webhook.accept' and target_id = $1",
      [hook.id],
    );
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]).toMatchObject({ actor_type: "system", actor_id: "webhook" });
    expect(audit.rows[0].details).toMatchObject({ scheduleId: hook.id, runId: res.body.runId });
  }, 180_000);

  it("refuses a bad signature, a replayed delivery and a stale call with their codes, recording no run", async () => {
    const hook = await createHook(member.client);
    const accepted = await call(hook.hookPath, { secret: hook.secret });
    expect(accepted.status).toBe(202);
    const before = await runCount(hook.id);

    const wrongSecret = await call(hook.hookPath, { secret: `whsec_${randomBytes(32).toString("base64url")}` });
    expect(wrongSecret).toMatchObject({ status: 401, body: { code: "SIGNATURE_INVALID" } });
    const tampered = await call(hook.hookPath, {
      secret: hook.secret,
      signature: signWebhook(hook.secret, Math.floor(Date.now() / 1000), randomUUID(), "{}"),
    });
    expect(tampered).toMatchObject({ status: 401, body: { code: "SIGNATURE_INVALID" } });
    const unsigned = await call(hook.hookPath, { secret: hook.secret, signature: "" });
    expect(unsigned).toMatchObject({ status: 401, body: { code: "SIGNATURE_INVALID" } });

    // The same delivery id again, freshly signed: a replay.
    const replay = await call(hook.hookPath, { secret: hook.secret, delivery: accepted.delivery });
    expect(replay).toMatchObject({ status: 409, body: { code: "WEBHOOK_REPLAYED" } });

    const stale = await call(hook.hookPath, { secret: hook.secret, timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(stale).toMatchObject({ status: 401, body: { code: "SIGNATURE_EXPIRED" } });
    const ahead = await call(hook.hookPath, { secret: hook.secret, timestamp: Math.floor(Date.now() / 1000) + 400 });
    expect(ahead).toMatchObject({ status: 401, body: { code: "SIGNATURE_EXPIRED" } });

    const malformed = await call(hook.hookPath, { secret: hook.secret, body: "{not json" });
    expect(malformed).toMatchObject({ status: 400, body: { code: "MALFORMED_JSON" } });

    expect(await runCount(hook.id)).toBe(before);
  });

  it("unknown, non-webhook and other workspaces' triggers all answer the same 404", async () => {
    const hook = await createHook(member.client);
    const cron = await member.client.post(`/api/v1/workspaces/${wid}/schedules`, {
      name: "Cron",
      agentId,
      kind: "cron",
      cron: "0 9 * * *",
      prompt: "x",
      notifyUrl: "http://127.0.0.1:9/notify",
    });
    expect(cron.statusCode, cron.body).toBe(201);
    shown.set(cron.json().secret, 1);
    const other = await signUp(app, { name: "Outsider" });
    for (const path of [
      `/api/v1/hooks/${wid}/${randomUUID()}`,
      `/api/v1/hooks/${other.workspaceId}/${hook.id}`,
      `/api/v1/hooks/${wid}/not-a-uuid`,
      // A cron schedule has a secret (for its notifications) but is no trigger.
      `/api/v1/hooks/${wid}/${cron.json().id}`,
    ]) {
      const secret = path.includes(cron.json().id) ? cron.json().secret : hook.secret;
      const res = await call(path, { secret });
      expect(res, path).toMatchObject({ status: 404, body: { code: "NOT_FOUND" } });
    }
    expect(await runCount(cron.json().id)).toBe(0);
  });

  it("a paused trigger refuses calls; rotating the secret retires the old one at once", async () => {
    const hook = await createHook(member.client);
    const url = `/api/v1/workspaces/${wid}/schedules/${hook.id}`;
    expect((await member.client.patch(url, { enabled: false })).statusCode).toBe(200);
    const paused = await call(hook.hookPath, { secret: hook.secret });
    expect(paused).toMatchObject({ status: 409, body: { code: "SCHEDULE_PAUSED" } });
    // Paused says nothing to someone without the secret.
    expect((await call(hook.hookPath, { secret: "whsec_wrong" })).status).toBe(401);
    expect((await member.client.patch(url, { enabled: true })).statusCode).toBe(200);

    const rotated = await member.client.post(`${url}/rotate-secret`);
    expect(rotated.statusCode).toBe(200);
    const { secret } = rotated.json();
    shown.set(secret, 1);
    expect(secret).not.toBe(hook.secret);
    expect((await call(hook.hookPath, { secret: hook.secret })).body.code).toBe("SIGNATURE_INVALID");
    expect((await call(hook.hookPath, { secret })).status).toBe(202);
    expect(await runCount(hook.id)).toBe(1);
  });

  it("needs no session or CSRF token, and a caller's own Authorization header does not get in the way", async () => {
    const hook = await createHook(member.client);
    const cookie = [...member.client.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const withCookie = await call(hook.hookPath, { secret: hook.secret, headers: { cookie } });
    expect(withCookie.status).toBe(202);
    const withBearer = await call(hook.hookPath, {
      secret: hook.secret,
      headers: { authorization: "Bearer some-other-systems-token" },
    });
    expect(withBearer.status).toBe(202);
  });

  it("rate-limits each trigger on its own: the call over the limit gets 429 and records no run", async () => {
    const hook = await createHook(member.client);
    const other = await createHook(member.client);
    for (let i = 0; i < RATE; i++) expect((await call(hook.hookPath, { secret: hook.secret })).status).toBe(202);
    const over = await call(hook.hookPath, { secret: hook.secret });
    expect(over).toMatchObject({ status: 429, body: { code: "RATE_LIMITED" } });
    expect(await runCount(hook.id)).toBe(RATE);
    // Another trigger's budget is its own.
    expect((await call(other.hookPath, { secret: other.secret })).status).toBe(202);
  });

  it("the secret appears only in the response that showed it: not in other responses, the audit trail, the queue or the log", async () => {
    expect(shown.size).toBeGreaterThanOrEqual(7);
    // Every response any test here read so far, plus the lists and views that could carry it.
    for (const path of [
      `/api/v1/workspaces/${wid}/schedules`,
      `/api/v1/workspaces/${wid}/audit`,
      `/api/v1/workspaces/${wid}/sessions`,
    ]) {
      await owner.client.get(path);
      await member.client.get(path);
    }
    const leaks: string[] = [];
    const audit = await db.owner.query("select row_to_json(a)::text as t from audit_log a");
    const jobs = await db.owner.query("select data::text as t from pgboss.job");
    const stored = await db.owner.query("select row_to_json(s)::text as t from schedules s");
    for (const [secret, times] of shown) {
      const core = secret.slice("whsec_".length);
      const inResponses = responses.filter((r) => r.includes(core)).length;
      if (inResponses !== times) leaks.push(`${secret.slice(0, 10)}… in ${inResponses} responses (shown ${times})`);
      if (logLines.some((l) => l.includes(core))) leaks.push("Reef's log");
      if (audit.rows.some((r) => r.t.includes(core))) leaks.push("the audit trail");
      if (jobs.rows.some((r) => r.t?.includes(core))) leaks.push("the job queue");
      if (stored.rows.some((r) => r.t.includes(core))) leaks.push("the schedules table in clear");
    }
    expect(leaks).toEqual([]);
    expect(logLines.length).toBeGreaterThan(10);
  });
});
