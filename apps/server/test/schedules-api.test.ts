/**
 * The schedules API as members use it: validation answers with stable codes
 * (and the field), who may create, change, run and delete whose schedules,
 * whose eyes a run's output is for, paging, and the audit trail of every change.
 * The scheduler's workers are off here: runs stay queued (runs themselves are
 * tested with a real gateway in webhooks.test.ts and the scheduler's tests).
 */
import { ApiClient, addAgent, addStandInProvider, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type Person = Awaited<ReturnType<typeof signUp>>;

let t: TestApp;
let owner: Person;
let admin: Person;
let alice: Person;
let bob: Person;
let viewer: Person;
let wid: string;
let agentId: string;
let secondAgentId: string;
let base: string;

async function join(person: Person, role: string) {
  const created = await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: person.email, role });
  expect(created.statusCode, created.body).toBe(201);
  const accepted = await person.client.post(`/api/v1/invites/${created.json().token}/accept`);
  expect(accepted.statusCode, accepted.body).toBe(200);
}

const PROMPT = "Summarise the open tickets (private prompt text 7c1f)";
const cron = (extra: Record<string, unknown> = {}) => ({
  name: "Stand-up",
  agentId,
  kind: "cron",
  cron: "0 9 * * 1-5",
  timezone: "Europe/Berlin",
  prompt: PROMPT,
  ...extra,
});

beforeAll(async () => {
  t = await buildTestApp({ config: { schedulerEnabled: false } });
  owner = await signUp(t.app, { name: "Owner" });
  wid = owner.workspaceId;
  base = `/api/v1/workspaces/${wid}/schedules`;
  admin = await signUp(t.app, { name: "Admin" });
  alice = await signUp(t.app, { name: "Alice" });
  bob = await signUp(t.app, { name: "Bob" });
  viewer = await signUp(t.app, { name: "Vera" });
  await join(admin, "admin");
  await join(alice, "member");
  await join(bob, "member");
  await join(viewer, "viewer");
  // A provider nothing answers at: no run reaches it here.
  const providerId = await addStandInProvider(
    owner.client,
    wid,
    { baseUrl: "http://127.0.0.1:9/v1" },
    "sk-unused-0123456789",
  );
  agentId = await addAgent(owner.client, wid, { name: "Ada", providerId, model: "m" });
  secondAgentId = await addAgent(owner.client, wid, { name: "Bea", providerId, model: "m" });
}, 60_000);
afterAll(() => t.close());

describe("schedule validation", () => {
  // Bodies are made when each case runs (the agent exists only after beforeAll).
  const cases: [string, () => Record<string, unknown>, string, string][] = [
    ["a cron expression that does not parse", () => cron({ cron: "61 * * * *" }), "INVALID_CRON", "cron"],
    ["a cron expression with 3 fields", () => cron({ cron: "* * *" }), "INVALID_CRON", "cron"],
    ["a cron schedule without an expression", () => cron({ cron: undefined }), "INVALID_CRON", "cron"],
    ["an unknown time zone", () => cron({ timezone: "Mars/Olympus_Mons" }), "INVALID_TIMEZONE", "timezone"],
    [
      "every minute (the default minimum is 5 minutes)",
      () => cron({ cron: "* * * * *" }),
      "SCHEDULE_TOO_FREQUENT",
      "cron",
    ],
    [
      "a one-off in the past",
      () => ({ name: "Once", agentId, kind: "once", runAt: "2020-01-01T09:00:00Z", prompt: "x" }),
      "RUN_AT_IN_PAST",
      "runAt",
    ],
    [
      "a notification URL on a private address",
      () => cron({ notifyUrl: "http://10.1.2.3/hook" }),
      "NOTIFY_URL_NOT_ALLOWED",
      "notifyUrl",
    ],
    [
      "a notification URL on a link-local address",
      () => cron({ notifyUrl: "http://169.254.169.254/latest" }),
      "NOTIFY_URL_NOT_ALLOWED",
      "notifyUrl",
    ],
  ];
  it.each(cases)("refuses %s with its code and field, and creates nothing", async (_what, make, code, field) => {
    const body = make();
    const res = await alice.client.post(base, body);
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json()).toMatchObject({ code, details: { field } });
    expect(res.json().message.length).toBeGreaterThan(10);
    const n = await t.db.owner.query("select count(*)::int as n from schedules where workspace_id = $1 and name = $2", [
      wid,
      body.name,
    ]);
    expect(n.rows[0].n).toBe(0);
  });

  it("says how often a too-frequent rule fires and what the server allows", async () => {
    const res = await alice.client.post(base, cron({ cron: "*/2 * * * *" }));
    expect(res.json()).toMatchObject({ code: "SCHEDULE_TOO_FREQUENT", details: { minIntervalSeconds: 300 } });
    expect(res.json().message).toContain("2 minutes");
    expect(res.json().message).toContain("5 minutes");
  });

  it("previews the next five firings in the zone, DST-correct, and refuses bad rules the same way", async () => {
    const ok = await alice.client.get(
      `${base}/preview?cron=${encodeURIComponent("30 8 * * *")}&timezone=America/New_York`,
    );
    expect(ok.statusCode, ok.body).toBe(200);
    const { next, timezone, minIntervalSeconds } = ok.json();
    expect(timezone).toBe("America/New_York");
    expect(minIntervalSeconds).toBe(300);
    expect(next).toHaveLength(5);
    for (const at of next) {
      const local = new Intl.DateTimeFormat("en-GB", {
        timeZone: "America/New_York",
        hour: "2-digit",
        minute: "2-digit",
      }).format(new Date(at));
      expect(local).toBe("08:30");
    }
    const bad = await viewer.client.get(`${base}/preview?cron=${encodeURIComponent("* * * * *")}`);
    expect(bad.json()).toMatchObject({ code: "SCHEDULE_TOO_FREQUENT", details: { field: "cron" } });
    const zone = await viewer.client.get(
      `${base}/preview?cron=${encodeURIComponent("0 9 * * *")}&timezone=Nowhere/Land`,
    );
    expect(zone.json()).toMatchObject({ code: "INVALID_TIMEZONE", details: { field: "timezone" } });
  });

  it("a one-off in the future and a webhook need no cron; a webhook gets its hook path and a secret once", async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const once = await alice.client.post(base, { name: "Reminder", agentId, kind: "once", runAt, prompt: "Remind me" });
    expect(once.statusCode, once.body).toBe(201);
    expect(once.json()).toMatchObject({ kind: "once", runAt, nextRunAt: runAt, secret: null, hookPath: null });
    const hook = await alice.client.post(base, { name: "CI", agentId, kind: "webhook", prompt: "Build {{body.ref}}" });
    expect(hook.statusCode, hook.body).toBe(201);
    const view = hook.json();
    expect(view.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(view).toMatchObject({ nextRunAt: null, hookPath: `/api/v1/hooks/${wid}/${view.id}` });
    const again = await alice.client.get(`${base}/${view.id}`);
    expect(again.json().secret).toBeUndefined();
    expect(again.body).not.toContain(view.secret);
  });
});

describe("who may do what", () => {
  let aliceSchedule: { id: string };

  beforeAll(async () => {
    const res = await alice.client.post(base, cron({ name: "Alice's stand-up" }));
    expect(res.statusCode, res.body).toBe(201);
    aliceSchedule = res.json();
    expect(res.json()).toMatchObject({
      enabled: true,
      canManage: true,
      createdBy: { kind: "user", id: alice.user.id, name: "Alice" },
      agentName: "Ada",
      sessionId: expect.any(String),
      nextRunAt: expect.any(String),
      secret: null,
    });
  });

  it("a viewer sees schedules but cannot create one", async () => {
    const list = await viewer.client.get(base);
    expect(list.statusCode).toBe(200);
    const seen = list.json().items.find((s: { id: string }) => s.id === aliceSchedule.id);
    // Not the creator: no output session, no management.
    expect(seen).toMatchObject({ canManage: false, sessionId: null });
    const res = await viewer.client.post(base, cron({ name: "Viewer's" }));
    expect(res.statusCode, res.body).toBe(403);
  });

  it("a member cannot pause, run, rotate or delete another member's schedule; nothing changes", async () => {
    const url = `${base}/${aliceSchedule.id}`;
    expect((await bob.client.get(url)).json()).toMatchObject({ canManage: false, sessionId: null });
    for (const res of [
      await bob.client.patch(url, { enabled: false }),
      await bob.client.post(`${url}/run`),
      await bob.client.post(`${url}/rotate-secret`),
      await bob.client.delete(url),
      await viewer.client.patch(url, { enabled: false }),
    ]) {
      expect(res.statusCode, res.body).toBe(403);
    }
    const after = (await alice.client.get(url)).json();
    expect(after.enabled).toBe(true);
    const runs = await t.db.owner.query("select count(*)::int as n from schedule_runs where schedule_id = $1", [
      aliceSchedule.id,
    ]);
    expect(runs.rows[0].n).toBe(0);
    const denied = await t.db.owner.query(
      "select count(*)::int as n from audit_log where workspace_id = $1 and action = 'access.denied' and actor_id = $2",
      [wid, bob.user.id],
    );
    expect(denied.rows[0].n).toBeGreaterThanOrEqual(4);
  });

  it("an admin can pause and resume a member's schedule; the next firing follows", async () => {
    const url = `${base}/${aliceSchedule.id}`;
    const paused = await admin.client.patch(url, { enabled: false });
    expect(paused.statusCode, paused.body).toBe(200);
    expect(paused.json()).toMatchObject({ enabled: false, nextRunAt: null, canManage: true });
    const resumed = await admin.client.patch(url, { enabled: true, cron: "15 10 * * *", timezone: "Asia/Tokyo" });
    expect(resumed.statusCode, resumed.body).toBe(200);
    const next = new Date(resumed.json().nextRunAt);
    expect(
      new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Tokyo", hour: "2-digit", minute: "2-digit" }).format(next),
    ).toBe("10:15");
    // A change is validated like a creation.
    const tooOften = await admin.client.patch(url, { cron: "*/1 * * * *" });
    expect(tooOften.json()).toMatchObject({ code: "SCHEDULE_TOO_FREQUENT" });
    expect((await alice.client.get(url)).json().cron).toBe("15 10 * * *");
  });

  it("the creator may run it now (also while paused); others' run-now is refused", async () => {
    const url = `${base}/${aliceSchedule.id}`;
    await alice.client.patch(url, { enabled: false });
    const run = await alice.client.post(`${url}/run`);
    expect(run.statusCode, run.body).toBe(202);
    expect(run.json()).toMatchObject({ scheduleId: aliceSchedule.id, trigger: "manual", status: "queued" });
    const row = await t.db.owner.query("select requested_by_user_id from schedule_runs where id = $1", [run.json().id]);
    expect(row.rows[0].requested_by_user_id).toBe(alice.user.id);
    await alice.client.patch(url, { enabled: true });
  });

  it("a run's output is its creator's: hidden from others unless the schedule shares it", async () => {
    const url = `${base}/${aliceSchedule.id}`;
    const runId = (await alice.client.post(`${url}/run`)).json().id;
    const mine = (await alice.client.get(`${url}/runs/${runId}`)).json();
    expect(mine).toMatchObject({ id: runId, outputHidden: false, output: { prompt: PROMPT } });
    for (const other of [bob, viewer, admin, owner]) {
      const res = await other.client.get(`${url}/runs/${runId}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: runId, outputHidden: true, output: null });
      expect(res.body).not.toContain(PROMPT.slice(0, 20));
    }
    expect((await alice.client.patch(url, { shareOutput: true })).statusCode).toBe(200);
    expect((await viewer.client.get(`${url}/runs/${runId}`)).json()).toMatchObject({
      outputHidden: false,
      output: { prompt: PROMPT },
    });
    await alice.client.patch(url, { shareOutput: false });
    expect((await bob.client.get(`${url}/runs/${runId}`)).json().outputHidden).toBe(true);
  });

  it("an agent the member may not chat with cannot be scheduled", async () => {
    const unknown = await alice.client.post(base, cron({ agentId: "00000000-0000-4000-8000-000000000000" }));
    expect(unknown.statusCode).toBe(404);
  });

  it("an API key creates schedules as itself; a viewer key cannot", async () => {
    const minted = await owner.client.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "ci", role: "member" });
    const key = new ApiClient(t.app, { bearer: minted.json().key });
    const res = await key.post(base, cron({ name: "Key's", agentId: secondAgentId }));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ createdBy: { kind: "api_key", id: minted.json().apiKey.id }, canManage: true });
    const viewerKey = await owner.client.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "ro", role: "viewer" });
    const ro = new ApiClient(t.app, { bearer: viewerKey.json().key });
    expect((await ro.post(base, cron({ name: "RO" }))).statusCode).toBe(403);
    expect((await ro.get(base)).statusCode).toBe(200);
  });
});

describe("lists, deletion and the audit trail", () => {
  it("pages newest first, narrows by agent and by run status", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await bob.client.post(base, cron({ name: `Paged ${i}`, agentId: secondAgentId }));
      ids.push(res.json().id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await bob.client.get(
        `${base}?limit=2&agentId=${secondAgentId}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      )) as { json(): { items: { id: string; agentId: string }[]; nextCursor: string | null } };
      const body = page.json();
      expect(body.items.length).toBeLessThanOrEqual(2);
      for (const s of body.items) expect(s.agentId).toBe(secondAgentId);
      seen.push(...body.items.map((s) => s.id));
      cursor = body.nextCursor;
    } while (cursor);
    const mine = seen.filter((id) => ids.includes(id));
    expect(mine).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);

    const first = ids[0] as string;
    for (let i = 0; i < 3; i++) await bob.client.post(`${base}/${first}/run`);
    const runs = (await bob.client.get(`${base}/${first}/runs?limit=2`)).json();
    expect(runs.items).toHaveLength(2);
    expect(runs.nextCursor).toEqual(expect.any(String));
    const rest = (
      await bob.client.get(`${base}/${first}/runs?limit=2&cursor=${encodeURIComponent(runs.nextCursor)}`)
    ).json();
    expect(rest.items).toHaveLength(1);
    expect((await bob.client.get(`${base}/${first}/runs?status=succeeded`)).json().items).toEqual([]);
    expect((await bob.client.get(`${base}/${first}/runs?status=queued`)).json().items).toHaveLength(3);
    expect((await bob.client.get(`${base}/${first}/runs?cursor=bogus`)).statusCode).toBe(400);
  });

  it("audits every change (create, update, pause, resume, run now, rotate, delete) without the prompt or secret", async () => {
    const created = (await alice.client.post(base, cron({ name: "Audited" }))).json();
    const url = `${base}/${created.id}`;
    await alice.client.patch(url, { name: "Audited 2" });
    await alice.client.patch(url, { enabled: false });
    await alice.client.patch(url, { enabled: true });
    await alice.client.post(`${url}/run`);
    const { secret } = (await alice.client.post(`${url}/rotate-secret`)).json();
    expect(secret).toMatch(/^whsec_/);
    expect((await alice.client.delete(url)).statusCode).toBe(204);
    expect((await alice.client.get(url)).statusCode).toBe(404);
    const rows = await t.db.owner.query(
      "select action, actor_id, details from audit_log where workspace_id = $1 and target_id = $2 order by id",
      [wid, created.id],
    );
    expect(rows.rows.map((r) => r.action)).toEqual([
      "schedule.create",
      "schedule.update",
      "schedule.pause",
      "schedule.resume",
      "schedule.run_now",
      "schedule.rotate_secret",
      "schedule.delete",
    ]);
    for (const r of rows.rows) {
      expect(r.actor_id).toBe(alice.user.id);
      expect(r.details.scheduleId).toBe(created.id);
      const text = JSON.stringify(r.details);
      expect(text).not.toContain("private prompt text");
      expect(text).not.toContain(secret);
    }
    expect(rows.rows[0].details).toMatchObject({ kind: "cron", enabled: true, agentId });
    expect(rows.rows[2].details).toMatchObject({ enabled: false });
    // Deleting took its runs with it.
    const runs = await t.db.owner.query("select count(*)::int as n from schedule_runs where schedule_id = $1", [
      created.id,
    ]);
    expect(runs.rows[0].n).toBe(0);
  });

  it("the secret is stored sealed, never in clear", async () => {
    const hook = (await alice.client.post(base, { name: "Sealed", agentId, kind: "webhook", prompt: "x" })).json();
    const row = await t.db.owner.query("select secret_sealed from schedules where id = $1", [hook.id]);
    expect(row.rows[0].secret_sealed).toEqual(expect.any(String));
    expect(row.rows[0].secret_sealed).not.toContain(hook.secret);
    expect(row.rows[0].secret_sealed).not.toContain(hook.secret.slice(6));
  });
});
