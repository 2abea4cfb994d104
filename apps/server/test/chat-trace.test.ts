/**
 * Tool-using answers and their execution trace, end to end: real Postgres, a
 * real sandboxed OpenClaw gateway and the LLM stand-in, which makes a
 * shell-enabled agent run commands through OpenClaw's own `exec` tool. Each
 * tool call streams as a step (when it starts and when it ends), the answer
 * completes without error (foreground and background commands, several calls
 * in one turn), and the steps come back with the message in the history,
 * stored sealed.
 */
import { randomBytes } from "node:crypto";
import { buildApp } from "@reef/server";
import {
  addAgent,
  addStandInProvider,
  createTestDatabase,
  type HttpClient,
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
  textOf,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const KEY = `sk-test-${randomBytes(8).toString("hex")}`;
let db: TestDatabase;
let app: FastifyInstance;
let base = "";
let llm: LlmStandIn;

/** Commands the stand-in has the agent run, by what the person asks (`run: <json list of exec args>`). */
function callsFor(text: string) {
  const m = /^run: (\[.*\])/s.exec(text);
  if (!m) return undefined;
  return (JSON.parse(m[1] ?? "[]") as Record<string, unknown>[]).map((args) => ({ name: "exec", arguments: args }));
}
const run = (...calls: Record<string, unknown>[]) => `run: ${JSON.stringify(calls)}`;

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: KEY,
    chunkDelayMs: 10,
    reply: (text, results) => (results.length ? `Saw: ${results.join(" | ")}` : `Stand-in reply to: ${text}`),
    toolCalls: callsFor,
    toolPreamble: (text) => (text.includes("background") ? "Starting it in the background." : undefined),
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

interface Step {
  id: string;
  name: string;
  args: string;
  status: string;
  output?: string;
  truncated?: boolean;
  startedAt: string;
  durationMs?: number;
}

describe("tool-using answers and their trace", () => {
  let h: HttpClient;
  let wid = "";
  let sid = "";

  async function chat(text: string, opts: { stopWhen?: (ev: ReceivedEvent) => boolean } = {}) {
    const res = await h.send(wid, sid, text);
    expect(res.status).toBe(200);
    return readEvents(res, opts.stopWhen ? { stopWhen: opts.stopWhen } : {});
  }
  const stepsOf = (events: ReceivedEvent[]) => events.filter((e) => e.event === "tool").map((e) => e.data.step as Step);
  async function lastAnswer() {
    const page = await h.json("GET", `/api/v1/workspaces/${wid}/sessions/${sid}/messages?limit=100`);
    expect(page.status).toBe(200);
    return page.body.items.at(-1) as { id: number; role: string; status: string; content: string; trace: Step[] };
  }

  beforeAll(async () => {
    const p = await signUp(app);
    h = httpClient(base, p.client);
    wid = p.workspaceId;
    const agentId = await addAgent(h, wid, {
      name: "Ada",
      providerId: await addStandInProvider(h, wid, llm, KEY),
      model: "stand-in-model",
      temperature: 0.4,
    });
    // Commands run without asking: approvals have tests of their own.
    const grant = await h.json("PATCH", `/api/v1/workspaces/${wid}/agents/${agentId}`, {
      tools: ["shell"],
      execPolicy: "allow",
    });
    expect(grant.status, JSON.stringify(grant.body)).toBe(200);
    const session = await h.json("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId });
    expect(session.status).toBe(201);
    sid = session.body.id;
  }, 60_000);

  it("streams each call as a step that starts and ends, completes the answer, and keeps the steps with it, sealed", async () => {
    const nonce = randomBytes(6).toString("hex");
    const events = await chat(run({ command: `echo out-${nonce}` }, { command: `echo err-${nonce} >&2; exit 3` }));
    expect(events.filter((e) => e.event === "error")).toEqual([]);
    expect(events.at(-1)).toMatchObject({ event: "done", data: { status: "complete" } });
    const streamed = stepsOf(events);
    expect(streamed).toHaveLength(4);
    const ids = [...new Set(streamed.map((s) => s.id))];
    expect(ids).toHaveLength(2);
    for (const id of ids) {
      const [start, end] = streamed.filter((s) => s.id === id);
      expect(start).toMatchObject({ name: "exec", status: "running" });
      expect(start?.output).toBeUndefined();
      expect(end?.status).not.toBe("running");
      expect(end?.durationMs).toBeGreaterThanOrEqual(0);
      // The step's end comes before the words that depend on it.
      expect(events.indexOf(events.find((e) => e.data.step === end) as ReceivedEvent)).toBeLessThan(
        events.findIndex((e) => e.event === "delta" && String(e.data.text).includes("Saw")),
      );
    }
    expect(textOf(events)).toContain(`out-${nonce}`);
    // The agent's temperature reaches every model call (it is in the gateway's config, not in the turn).
    expect(llm.requests.at(-1)?.body.temperature).toBe(0.4);

    const answer = await lastAnswer();
    expect(answer).toMatchObject({ role: "assistant", status: "complete" });
    expect(answer.trace).toHaveLength(2);
    const ok = answer.trace.find((s) => s.output === `out-${nonce}`);
    const failed = answer.trace.find((s) => s.output?.includes(`err-${nonce}`));
    expect(ok).toMatchObject({ name: "exec", status: "ok" });
    expect(JSON.parse(ok?.args ?? "{}")).toEqual({ command: `echo out-${nonce}` });
    expect(failed?.status).toBe("error");
    expect(failed?.output).toMatch(/exited with code 3/);
    expect(Date.parse(ok?.startedAt ?? "")).toBeGreaterThan(Date.now() - 120_000);
    // The person's own message has no trace.
    const page = await h.json("GET", `/api/v1/workspaces/${wid}/sessions/${sid}/messages?limit=100`);
    expect(page.body.items.at(-2)).toMatchObject({ role: "user", trace: [] });
    // At rest the trace is sealed: the database holds neither the commands nor their output.
    const { rows } = await db.owner.query("select trace from chat_messages where id = $1", [answer.id]);
    expect(rows[0]?.trace).toMatch(/^v1\./);
    expect(rows[0]?.trace).not.toContain(nonce);
  }, 180_000);

  it("completes an answer whose command runs in the background, with words said before the call", async () => {
    const events = await chat(`${run({ command: "sleep 1; echo bg-done", background: true })} in the background`);
    expect(events.filter((e) => e.event === "error")).toEqual([]);
    expect(events.at(-1)).toMatchObject({ event: "done", data: { status: "complete" } });
    expect(textOf(events)).toMatch(/^Starting it in the background\.\s+Saw: Command still running/);
    const answer = await lastAnswer();
    expect(answer.content).toBe(textOf(events));
    expect(answer.trace).toMatchObject([{ name: "exec", status: "ok" }]);
    expect(JSON.parse(answer.trace[0]?.args ?? "{}")).toMatchObject({ background: true });
  }, 120_000);

  it("keeps a few KB of a long output, and says it was cut", async () => {
    const events = await chat(run({ command: "head -c 20000 /dev/zero | tr '\\0' x" }));
    expect(events.at(-1)).toMatchObject({ event: "done", data: { status: "complete" } });
    const [step] = (await lastAnswer()).trace;
    expect(step?.truncated).toBe(true);
    expect(step?.output?.length).toBeLessThanOrEqual(4001);
    expect(step?.output?.startsWith("xxxx")).toBe(true);
    expect(stepsOf(events).at(-1)).toMatchObject({ truncated: true });
  }, 120_000);

  it("a command still running when the person stops the answer is kept as stopped", async () => {
    let stopped = false;
    const events = await chat(run({ command: "sleep 20; echo too-late" }), {
      stopWhen: (ev) => {
        if (!stopped && ev.event === "tool") {
          stopped = true;
          void h.json("POST", `/api/v1/workspaces/${wid}/sessions/${sid}/abort`);
        }
        return false;
      },
    });
    expect(events.at(-1)).toMatchObject({ event: "done", data: { status: "aborted" } });
    const answer = await lastAnswer();
    expect(answer.status).toBe("aborted");
    expect(answer.trace).toMatchObject([{ name: "exec", status: "error" }]);
    expect(answer.trace[0]?.output).toMatch(/stopped before this step finished/);
  }, 120_000);
});
