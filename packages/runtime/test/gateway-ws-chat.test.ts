/**
 * Agent turns over the gateway's WebSocket protocol, against a real sandboxed
 * OpenClaw gateway and the LLM stand-in: the answer streams, tool calls arrive
 * as steps (foreground, background, several in one turn, failing), commands
 * waiting for approval arrive as requests and resolve, a consumer that leaves
 * cancels the run in the gateway, and a gateway that goes away ends the turn as
 * unreachable.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { chmod, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LlmStandIn, startLlmStandIn } from "@reef/testing/llm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RuntimeHandle } from "../src/driver.ts";
import { closeGatewayChannels } from "../src/gateway-channel.ts";
import { GatewayRequestError } from "../src/gateway-chat-client.ts";
import { gatewayRequest } from "../src/gateway-session-client.ts";
import { type GatewayTurnEvent, type GatewayTurnRequest, streamGatewayTurn } from "../src/gateway-ws-chat.ts";
import type { GatewaySettings } from "../src/openclaw-config.ts";
import { ProcessDriver } from "../src/process/process-driver.ts";
import { probeSandbox } from "../src/process/sandbox-probe.ts";
import { createOutboundStub, type OutboundStub } from "./outbound-stub.ts";

const sandboxable = probeSandbox().available;
const KEY = `sk-canary-${randomBytes(8).toString("hex")}`;
const root = join(tmpdir(), `reef-wschat-${process.pid}`);
const LONG = Array.from({ length: 80 }, (_, i) => `word${i}`).join(" ");
let llm: LlmStandIn;
let stub: OutboundStub;

/** Commands the stand-in runs, by what the person asks (`run: <json list of exec args>`). */
function callsFor(text: string) {
  const m = /^run: (\[.*\])/s.exec(text);
  if (!m) return undefined;
  return (JSON.parse(m[1] ?? "[]") as Record<string, unknown>[]).map((args) => ({ name: "exec", arguments: args }));
}

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: KEY,
    chunkDelayMs: 25,
    reply: (text, results) =>
      results.length ? `Saw: ${results.join(" | ")}` : text.includes("long") ? LONG : `Stand-in reply to: ${text}`,
    toolCalls: callsFor,
    toolPreamble: (text) => (text.includes("background") ? "Starting it in the background." : undefined),
  });
  stub = createOutboundStub({ upstream: llm.baseUrl, apiKey: KEY });
  await mkdir(root, { recursive: true, mode: 0o755 });
  await chmod(root, 0o755);
});
afterAll(async () => {
  closeGatewayChannels();
  await llm?.close();
  await rm(root, { recursive: true, force: true });
});

const settings: GatewaySettings = {
  providers: [
    {
      id: "standin",
      baseUrl: "https://vendor.invalid/v1",
      api: "openai-completions",
      models: [{ id: "stand-in-model" }],
    },
  ],
  agents: [
    {
      id: "doer",
      name: "doer",
      model: "standin/stand-in-model",
      tools: ["shell"],
      execPolicy: "allow",
      temperature: 0.25,
    },
    { id: "asker", name: "asker", model: "standin/stand-in-model", tools: ["shell"], execPolicy: "ask" },
  ],
};

interface Turn {
  events: GatewayTurnEvent[];
  text: string;
  error?: unknown;
}

describe.runIf(sandboxable)("chat over the gateway's WebSocket protocol", () => {
  let driver: ProcessDriver;
  const w = { workspaceId: randomUUID(), token: randomBytes(24).toString("base64url"), cred: `cred-${randomUUID()}` };
  let h: RuntimeHandle & { endpoint: URL };

  beforeAll(async () => {
    driver = new ProcessDriver({ rootDir: root, sandbox: true });
    const started = await driver.start(
      {
        workspaceId: w.workspaceId,
        token: w.token,
        gateway: settings,
        limits: { memoryMb: 2048, cpus: 2, pids: 512 },
        outbound: stub.outbound({ standin: w.cred }),
      },
      AbortSignal.timeout(150_000),
    );
    h = { workspaceId: w.workspaceId, state: started.state, endpoint: started.endpoint };
  }, 180_000);
  afterAll(async () => {
    if (h) await driver.destroy(h).catch(() => {});
  }, 60_000);

  /** Runs a turn to its end, collecting what it yields; `each` sees every event as it comes. */
  async function turn(
    text: string,
    opts: Partial<GatewayTurnRequest> & {
      agentId?: string;
      each?: (ev: GatewayTurnEvent) => Promise<void> | void;
    } = {},
  ): Promise<Turn> {
    const out: Turn = { events: [], text: "" };
    try {
      for await (const ev of streamGatewayTurn({
        endpoint: h.endpoint,
        token: w.token,
        agentId: opts.agentId ?? "doer",
        sessionKey: opts.sessionKey ?? `agent:${opts.agentId ?? "doer"}:t-${randomUUID()}`,
        text,
        signal: opts.signal ?? AbortSignal.timeout(120_000),
        ...(opts.instructions ? { instructions: opts.instructions } : {}),
        ...(opts.connection ? { connection: opts.connection } : {}),
      })) {
        out.events.push(ev);
        if (ev.type === "delta") out.text = ev.replace ? ev.text : out.text + ev.text;
        await opts.each?.(ev);
      }
    } catch (err) {
      out.error = err;
    }
    return out;
  }
  const steps = (t: Turn) => t.events.flatMap((e) => (e.type === "tool" ? [e.step] : []));
  const ended = (t: Turn) => steps(t).filter((s) => s.status !== "running");

  it("streams an answer, with the agent's instructions in the system prompt and its temperature, and its usage", async () => {
    const marker = `INSTRUCTIONS-${randomUUID()}`;
    const before = llm.requests.length;
    const t = await turn("hello over the socket", { instructions: `You are Doer. ${marker}` });
    expect(t.error).toBeUndefined();
    expect(t.text).toBe("Stand-in reply to: hello over the socket");
    expect(t.events.filter((e) => e.type === "delta").length).toBeGreaterThan(1);
    const usage = t.events.find((e) => e.type === "usage");
    // The run's own figures: every model call it made (the stand-in counts a word as a token).
    expect(usage).toMatchObject({
      type: "usage",
      completionTokens: expect.any(Number),
      promptTokens: expect.any(Number),
    });
    if (usage?.type === "usage") expect(usage.completionTokens).toBeGreaterThanOrEqual(5);
    const req = llm.requests.slice(before).at(-1)?.body;
    const system = (req?.messages ?? []).filter((m) => m.role === "system").map((m) => String(m.content));
    expect(system.join("\n")).toContain(marker);
    expect(req?.temperature).toBe(0.25);
  }, 60_000);

  it("reports a foreground command as a step that starts and ends, with its arguments, output and time", async () => {
    const nonce = randomBytes(6).toString("hex");
    const t = await turn(`run: ${JSON.stringify([{ command: `echo fg-${nonce}` }])}`);
    expect(t.error).toBeUndefined();
    const [start, end] = steps(t);
    expect(start).toMatchObject({ name: "exec", status: "running", args: { command: `echo fg-${nonce}` } });
    expect(end).toMatchObject({ id: start?.id, status: "ok", output: `fg-${nonce}` });
    expect(end?.endedAtMs).toBeGreaterThanOrEqual(end?.startedAtMs ?? Number.POSITIVE_INFINITY);
    expect(t.text).toBe(`Saw: fg-${nonce}`);
  }, 60_000);

  it("completes a turn whose command runs in the background, after words said before the call", async () => {
    const t = await turn(
      `run: ${JSON.stringify([{ command: "sleep 1; echo bg-done", background: true }])} in the background`,
    );
    expect(t.error).toBeUndefined();
    expect(t.events.some((e) => e.type === "error")).toBe(false);
    expect(ended(t)).toMatchObject([{ name: "exec", status: "ok" }]);
    expect(ended(t)[0]?.output).toMatch(/still running/i);
    expect(t.text).toMatch(/^Starting it in the background\.\s+Saw: Command still running/);
  }, 60_000);

  it("reports several calls of one turn, a failing one as an error", async () => {
    const t = await turn(`run: ${JSON.stringify([{ command: "echo first" }, { command: "echo second >&2; exit 3" }])}`);
    expect(t.error).toBeUndefined();
    const done = ended(t);
    expect(done).toHaveLength(2);
    expect(done.find((s) => s.output === "first")?.status).toBe("ok");
    expect(done.find((s) => String(s.output).includes("second"))?.status).toBe("error");
    expect(new Set(steps(t).map((s) => s.id)).size).toBe(2);
  }, 60_000);

  it("relays a command that waits for approval, and runs it once allowed", async () => {
    const nonce = randomBytes(6).toString("hex");
    const sessionKey = `agent:asker:t-${randomUUID()}`;
    const t = await turn(`run: ${JSON.stringify([{ command: `echo asked-${nonce}` }])}`, {
      agentId: "asker",
      sessionKey,
      each: async (ev) => {
        if (ev.type !== "approval-requested") return;
        await gatewayRequest({ endpoint: h.endpoint, token: w.token }, "exec.approval.resolve", {
          id: ev.request.gatewayApprovalId,
          decision: "allow-once",
        });
      },
    });
    expect(t.error).toBeUndefined();
    const requested = t.events.find((e) => e.type === "approval-requested");
    expect(requested).toMatchObject({
      request: { kind: "exec", subject: `echo asked-${nonce}`, sessionKey },
    });
    if (requested?.type !== "approval-requested") throw new Error("no request");
    expect(requested.request.cwd).toMatch(/asker/);
    expect(requested.request.expiresAtMs).toBeGreaterThan(Date.now());
    expect(t.events.find((e) => e.type === "approval-resolved")).toMatchObject({
      gatewayApprovalId: requested.request.gatewayApprovalId,
      decision: "allow-once",
    });
    expect(ended(t)).toMatchObject([{ status: "ok", output: `asked-${nonce}` }]);
  }, 90_000);

  it("marks a refused command as denied, and the agent hears the refusal", async () => {
    const t = await turn(`run: ${JSON.stringify([{ command: "echo never" }])}`, {
      agentId: "asker",
      each: async (ev) => {
        if (ev.type !== "approval-requested") return;
        await gatewayRequest({ endpoint: h.endpoint, token: w.token }, "exec.approval.resolve", {
          id: ev.request.gatewayApprovalId,
          decision: "deny",
        });
      },
    });
    expect(t.error).toBeUndefined();
    expect(t.events.find((e) => e.type === "approval-resolved")).toMatchObject({ decision: "deny" });
    expect(ended(t)).toMatchObject([{ status: "denied" }]);
    expect(t.text).toMatch(/Exec denied/);
  }, 90_000);

  it("cancels the run in the gateway when the consumer leaves, also while a command waits for approval", async () => {
    const control = { endpoint: h.endpoint, token: w.token };
    const waiting = new AbortController();
    const t = await turn(`run: ${JSON.stringify([{ command: "echo left" }])}`, {
      agentId: "asker",
      signal: waiting.signal,
      each: (ev) => {
        if (ev.type === "approval-requested") waiting.abort();
      },
    });
    expect(t.error).toBeInstanceOf(Error);
    // The gateway withdraws the request with the run (it denies it on its side).
    await expect
      .poll(async () => (await gatewayRequest(control, "exec.approval.list", {})) as unknown[], { timeout: 10_000 })
      .toEqual([]);

    const talking = new AbortController();
    const sessionKey = `agent:doer:t-${randomUUID()}`;
    const t2 = await turn("a long answer please", {
      sessionKey,
      signal: talking.signal,
      each: (ev) => {
        if (ev.type === "delta") talking.abort();
      },
    });
    expect(t2.error).toBeInstanceOf(Error);
    const active = async () =>
      JSON.stringify(await gatewayRequest(control, "sessions.list", { activeOnly: true, limit: 100 }));
    // Right after it left, nothing of that session runs any more (the answer alone would take seconds).
    expect(await active()).not.toContain(sessionKey);
  }, 90_000);

  it("carries turns of several sessions at once on one connection, each hearing only its own", async () => {
    const words = ["alpha", "bravo", "charlie"];
    const turns = await Promise.all(words.map((word) => turn(`say ${word}`)));
    turns.forEach((t, i) => {
      expect(t.error).toBeUndefined();
      expect(t.text).toBe(`Stand-in reply to: say ${words[i]}`);
    });
    const own = await turn("on its own connection", { connection: "own" });
    expect(own.text).toBe("Stand-in reply to: on its own connection");
  }, 90_000);

  it("ends a turn as unreachable when the gateway goes away mid-answer, and when it is not there", async () => {
    const t = await turn("a long answer please", {
      each: async (ev) => {
        if (ev.type === "delta" && !ev.replace) {
          process.kill(-Number(h.state.pid), "SIGKILL");
          await new Promise((r) => setTimeout(r, 200));
        }
      },
    });
    expect(t.error).toBeInstanceOf(GatewayRequestError);
    expect((t.error as GatewayRequestError).unreachable).toBe(true);
    const again = await turn("anyone there?");
    expect(again.error).toBeInstanceOf(GatewayRequestError);
    expect((again.error as GatewayRequestError).unreachable).toBe(true);
  }, 60_000);
});
