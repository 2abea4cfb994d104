/**
 * The idle tiers with a real gateway (process driver): an idle workspace's gateway is paused (every process of
 * its tree stopped), and each way a workspace is used resumes it, the same gateway, without a start: a member's
 * chat message, a scheduled run, an OpenAI-compatible API call. A paused gateway killed behind Reef's back is
 * found by the health sweep and handled as a crash. Several members and agents, as real workspaces have. An agent
 * with the shell is hostile: a process it leaves behind in a session of its own is frozen with the gateway.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { servicesOf } from "@reef/server";
import {
  addAgent,
  addStandInProvider,
  execAfterRun,
  httpClient,
  joinWorkspace,
  type LlmStandIn,
  listenTestApp,
  readEvents,
  signUp,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const KEY = "sk-runtime-tiers-0123456789";
let app: FastifyInstance;
let db: TestDatabase;
let base: string;
let llm: LlmStandIn;
let owner: Awaited<ReturnType<typeof signUp>>;
let member: Awaited<ReturnType<typeof signUp>>;
let wid = "";
const agents = { ada: "", bea: "", cy: "" };
let providerId = "";

const manager = () => servicesOf(app).runtimeManager;

/** The gateway's processes: its control group where it has one, else the tree under its pid. */
async function gatewayProcesses(): Promise<number[]> {
  const { rows } = await db.owner.query("select handle from runtimes where workspace_id = $1", [wid]);
  const handle = rows[0].handle as { pid: number; cgroup: { dirs: string[] } | null };
  const first = handle.cgroup?.dirs[0];
  if (first) {
    return readFileSync(join(first, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  }
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {}
  }
  const tree = [handle.pid];
  for (let i = 0; i < tree.length; i++) for (const [p, pp] of parent) if (pp === tree[i]) tree.push(p);
  return tree;
}

const stateOf = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0];
  } catch {
    return "gone";
  }
};

/** What the pause sweep does to a workspace unused past the pause timeout (10 minutes by default). */
async function pauseIdle() {
  await db.owner.query("update runtimes set last_activity_at = now() - interval '11 minutes' where workspace_id = $1", [
    wid,
  ]);
  expect(await manager().pauseIdle()).toEqual([wid]);
  const procs = await gatewayProcesses();
  expect(procs.length).toBeGreaterThan(1);
  expect(procs.map(stateOf).filter((s) => s !== "T" && s !== "gone")).toEqual([]);
}

const startedGateways = async () =>
  Number(
    (
      await db.owner.query(
        "select count(*)::int as n from audit_log where workspace_id = $1 and action = 'runtime.ready'",
        [wid],
      )
    ).rows[0].n,
  );
const resumes = async () =>
  Number(
    (
      await db.owner.query(
        "select count(*)::int as n from audit_log where workspace_id = $1 and action = 'runtime.resume'",
        [wid],
      )
    ).rows[0].n,
  );

async function chat(person: typeof owner, agentId: string, text: string) {
  const session = (await person.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId })).json();
  const res = await httpClient(base, person.client).send(wid, session.id, text);
  expect(res.status).toBe(200);
  return readEvents(res);
}

const answerOf = (events: Awaited<ReturnType<typeof chat>>) =>
  events
    .filter((e) => e.event === "delta")
    .map((e) => String(e.data.text))
    .join("");

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: KEY,
    models: ["stand-in-model"],
    reply: (text) => `Stand-in reply to: ${text}`,
    toolCalls: execAfterRun,
  });
  ({ app, db, base } = await listenTestApp({ config: { runtimeIdleTimeoutMinutes: 60 } }));
  owner = await signUp(app, { name: "Olive" });
  member = await signUp(app, { name: "Milo" });
  wid = owner.workspaceId;
  await joinWorkspace(owner.client, wid, member.email, member.client, "member");
  providerId = await addStandInProvider(owner.client, wid, llm, KEY);
  agents.ada = await addAgent(owner.client, wid, { name: "Ada", providerId, model: "stand-in-model" });
  agents.bea = await addAgent(owner.client, wid, { name: "Bea", providerId, model: "stand-in-model" });
}, 60_000);

afterAll(async () => {
  await stopTestApp(app, db);
  await llm?.close();
}, 60_000);

describe("idle tiers with a real gateway", () => {
  it("a paused workspace answers a member's message from the same gateway, saying it is waking", async () => {
    const first = await chat(owner, agents.ada, "cold start");
    expect(first.map((e) => e.event)).toContain("done");
    expect(await startedGateways()).toBe(1);
    await pauseIdle();
    const runtimes = (await owner.client.get(`/api/v1/workspaces/${wid}/runtime`)).json();
    expect(runtimes.pausedAt).toEqual(expect.any(String));

    const events = await chat(member, agents.bea, "after a pause");
    const waking = events.find((e) => e.event === "runtime");
    expect(waking?.data).toMatchObject({ state: "starting", expectedSeconds: 1 });
    expect(answerOf(events)).toContain("Stand-in reply to: after a pause");
    expect(await startedGateways()).toBe(1);
    expect(await resumes()).toBe(1);
    expect((await gatewayProcesses()).map(stateOf)).not.toContain("T");
  }, 180_000);

  it("a scheduled run resumes it", async () => {
    await pauseIdle();
    const schedule = (
      await owner.client.post(`/api/v1/workspaces/${wid}/schedules`, {
        name: "Nightly",
        agentId: agents.ada,
        kind: "cron",
        cron: "0 3 * * *",
        timezone: "UTC",
        prompt: "the nightly report",
      })
    ).json();
    const run = (await owner.client.post(`/api/v1/workspaces/${wid}/schedules/${schedule.id}/run`)).json();
    await expect
      .poll(
        async () =>
          (await owner.client.get(`/api/v1/workspaces/${wid}/schedules/${schedule.id}/runs/${run.id}`)).json().status,
        { timeout: 60_000, interval: 250 },
      )
      .toBe("succeeded");
    expect(await startedGateways()).toBe(1);
    expect(await resumes()).toBe(2);
  }, 120_000);

  it("an OpenAI-compatible API call resumes it", async () => {
    await pauseIdle();
    const key = (
      await owner.client.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "client", role: "member" })
    ).json().key;
    const openai = new OpenAI({ apiKey: key, baseURL: `${base}/api/v1/workspaces/${wid}/openai/v1`, maxRetries: 0 });
    const done = await openai.chat.completions.create({
      model: "Ada",
      messages: [{ role: "user", content: "through the API" }],
    });
    expect(done.choices[0]?.message.content).toContain("Stand-in reply to: through the API");
    expect(await startedGateways()).toBe(1);
    expect(await resumes()).toBe(3);
  }, 120_000);

  it("a paused gateway killed behind Reef's back is found by the health sweep and handled as a crash", async () => {
    await pauseIdle();
    const procs = await gatewayProcesses();
    for (const pid of procs) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    // Dead (a zombie counts: its exit is only not collected yet), then the next health sweep.
    await expect
      .poll(() => procs.every((p) => ["Z", "gone"].includes(stateOf(p) ?? "gone")), { timeout: 10_000 })
      .toBe(true);
    await manager().checkHealth();
    const crash = await db.owner.query(
      "select details from audit_log where workspace_id = $1 and action = 'runtime.crash' order by id desc limit 1",
      [wid],
    );
    expect(crash.rows[0]?.details.reason).toMatch(/exited unexpectedly/);
    // Restarted once, as any crash is; the next message is answered.
    const events = await chat(owner, agents.ada, "after the crash");
    expect(answerOf(events)).toContain("Stand-in reply to: after the crash");
    expect(await startedGateways()).toBe(2);
  }, 180_000);

  it("a process an agent leaves behind, busy in a session of its own, is frozen with the gateway", async () => {
    // A third agent, with the shell and no approvals: a hostile one runs what it likes.
    agents.cy = (
      await owner.client.post(`/api/v1/workspaces/${wid}/agents`, {
        name: "Cy",
        providerId,
        model: "stand-in-model",
        tools: ["shell"],
        execPolicy: "allow",
      })
    ).json().id;
    const SPINNER = "reef-tiers-spinner";
    const left = await chat(
      member,
      agents.cy,
      `run: setsid sh -c 'while :; do :; done' ${SPINNER} > /dev/null 2>&1 < /dev/null & echo left-behind`,
    );
    expect(left.map((e) => e.event)).toContain("done");
    const cmdline = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8");
      } catch {
        return "";
      }
    };
    let spinner = 0;
    await expect
      .poll(
        async () => {
          spinner = (await gatewayProcesses()).find((p) => cmdline(p).includes(SPINNER)) ?? 0;
          return spinner;
        },
        { timeout: 15_000 },
      )
      .toBeGreaterThan(0);
    const cpuTicks = () => {
      const stat = readFileSync(`/proc/${spinner}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return Number(f[11]) + Number(f[12]);
    };
    expect(stateOf(spinner)).toBe("R");

    // Paused: every process of the tree stopped, the spinner too, and it spends no CPU.
    await pauseIdle();
    expect(stateOf(spinner)).toBe("T");
    const before = cpuTicks();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(cpuTicks()).toBe(before);

    // Another member's message resumes the whole tree, the process left behind included.
    const events = await chat(owner, agents.bea, "after the spinner");
    expect(answerOf(events)).toContain("Stand-in reply to: after the spinner");
    expect(stateOf(spinner)).not.toBe("T");
  }, 240_000);
});
