import { randomUUID } from "node:crypto";
import { frameError, GatewayChannel, type GatewayFrame, gatewayChannel } from "./gateway-channel.ts";
import { GatewayRequestError } from "./gateway-chat-client.ts";

/** A tool call of the agent's, as the gateway reported it (raw: the chat service truncates and stores it). */
export interface GatewayToolStep {
  /** The tool call's id (unique within the run). */
  id: string;
  name: string;
  /** The call's arguments as the model gave them. */
  args: unknown;
  /** `denied`: the command needed an approval and was refused (by a person, a timeout or a policy). */
  status: "running" | "ok" | "error" | "denied";
  /** What the tool returned (its text), once it ended. */
  output?: string;
  startedAtMs: number;
  endedAtMs?: number;
}

/** What a gateway said when one of its runs asked for approval (matches `GatewayApprovalRequest` in @reef/core). */
export interface GatewayApprovalEvent {
  /** The gateway's approval id (what `exec.approval.resolve` / `plugin.approval.resolve` take). */
  gatewayApprovalId: string;
  kind: "exec" | "plugin";
  /** The command, or the plugin action's title and description. */
  subject: string;
  cwd: string | null;
  sessionKey: string | null;
  expiresAtMs: number | null;
}

export type GatewayApprovalDecisionSeen = "allow-once" | "allow-always" | "deny";

/** One event of an agent turn run over the gateway's WebSocket protocol. */
export type GatewayTurnEvent =
  /** More of the answer; `replace`: the answer so far is this text instead (the gateway rewrote it). */
  | { type: "delta"; text: string; replace?: true }
  | { type: "usage"; promptTokens: number; completionTokens: number }
  /** The run failed in the gateway (the model refused, a provider error…): nothing more follows. */
  | { type: "error"; message: string }
  /** Someone stopped the run in the gateway (not this consumer): nothing more follows. */
  | { type: "aborted" }
  /** A tool call started or ended (the same `step.id` twice). */
  | { type: "tool"; step: GatewayToolStep }
  | { type: "approval-requested"; request: GatewayApprovalEvent }
  /** An approval of this run was answered (by anyone), or withdrawn (`decision` null). */
  | { type: "approval-resolved"; gatewayApprovalId: string; decision: GatewayApprovalDecisionSeen | null };

export interface GatewayTurnRequest {
  /** The gateway's endpoint: its base URL, or `unix:<socket path>` for a sandboxed gateway. */
  endpoint: URL;
  /** The gateway token (full operator access): sent only to the gateway. */
  token: string;
  agentId: string;
  /** Routes the turn to one gateway session, which holds the conversation so far. */
  sessionKey: string;
  text: string;
  /** The agent's standing instructions, added to the gateway's system prompt for this turn. */
  instructions?: string | undefined;
  /** Aborting it cancels the run in the gateway (`sessions.abort`) and ends the stream. */
  signal: AbortSignal;
  /**
   * `shared` (default): one connection per gateway carries every turn running
   * on it, kept open a while between turns; `own`: a connection for this turn
   * alone (what the benchmark compares against).
   */
  connection?: "shared" | "own";
}

const DONE = Symbol("done");
/** After the answer's final chat event, how long to wait for the run's result (its token usage). */
const RESULT_GRACE_MS = 10_000;
/** How long the gateway gets to confirm it cancelled a run the consumer left. */
const ABORT_WAIT_MS = 3_000;

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (v && typeof v === "object" ? (v as Rec) : {});
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** The text of a chat message snapshot (`{role, content: [{type: "text", text}]}`), if it has any. */
function messageText(message: unknown): string | undefined {
  const content = rec(message).content;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return undefined;
  return content
    .filter((b) => rec(b).type === "text")
    .map((b) => str(rec(b).text) ?? "")
    .join("");
}

/** A tool result's text: its text blocks, else the tool's aggregated output, else its JSON. */
function resultText(result: unknown): string {
  if (typeof result === "string") return result;
  const r = rec(result);
  if (Array.isArray(r.content)) {
    const text = r.content.map((b) => str(rec(b).text) ?? "").join("\n");
    if (text) return text;
  }
  const aggregated = str(rec(r.details).aggregated);
  if (aggregated) return aggregated;
  return result === undefined ? "" : JSON.stringify(result);
}

/** What OpenClaw answers a command refused for want of approval (`Exec denied (gateway id=…, user-denied): …`). */
const DENIED = /^Exec denied\b/;

/** One run's view of the channel: its events in order, buffered until the consumer asks. */
class TurnState {
  private readonly queue: (GatewayTurnEvent | typeof DONE)[] = [];
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly steps = new Map<string, GatewayToolStep>();
  /** Approval id → the tool call it holds (when the gateway says). */
  private readonly approvals = new Map<string, string | null>();
  private readonly deniedCalls = new Set<string>();
  private streamed = "";
  private grace: NodeJS.Timeout | undefined;
  private accepted = false;
  /** The run ended (result, error or abort seen): leaving it needs no cancellation. */
  ended = false;

  readonly runId: string;
  private readonly sessionKey: string;

  constructor(runId: string, sessionKey: string) {
    this.runId = runId;
    this.sessionKey = sessionKey;
  }

  private push(ev: GatewayTurnEvent | typeof DONE) {
    const last = this.queue.at(-1);
    // A consumer that reads slowly gets the answer in fewer, larger pieces, never a longer queue.
    if (ev !== DONE && ev.type === "delta" && !ev.replace && last && last !== DONE && last.type === "delta") {
      this.queue[this.queue.length - 1] = { ...last, text: last.text + ev.text };
    } else {
      this.queue.push(ev);
    }
    this.wake?.();
  }

  private end(ev?: GatewayTurnEvent) {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.grace);
    if (ev) this.push(ev);
    this.push(DONE);
  }

  /** Wakes a waiting `next` (the consumer's signal aborted). */
  interrupt() {
    this.wake?.();
  }

  /** The next event, or DONE; throws when the connection went away or `signal` aborted. */
  async next(signal: AbortSignal): Promise<GatewayTurnEvent | typeof DONE> {
    for (;;) {
      const ev = this.queue.shift();
      if (ev !== undefined) return ev;
      if (this.failure) throw this.failure;
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }

  /** The connection is gone. After the answer's final event that only costs the usage figures. */
  fail(err: GatewayRequestError) {
    if (this.ended) return;
    if (this.grace) {
      this.end();
      return;
    }
    this.failure = err;
    this.wake?.();
  }

  /** An answer to the `agent` request: accepted, or the run's result. */
  answer(f: GatewayFrame) {
    const p = rec(f.payload);
    if (this.ended) return;
    if (!f.ok) {
      // No id: the connection went away (the channel reports that too).
      if (!f.id)
        this.fail(new GatewayRequestError("the workspace runtime stopped while answering", { unreachable: true }));
      else if (this.accepted) this.end({ type: "error", message: frameError(f) });
      else {
        this.failure = new GatewayRequestError(`the workspace runtime refused the message (${frameError(f)})`);
        this.wake?.();
      }
      return;
    }
    this.accepted = true;
    const status = str(p.status);
    if (status === "accepted" || status === "started" || status === "in_flight") return;
    if (status === "ok") {
      const usage = rec(rec(rec(rec(p.result).meta).agentMeta).usage);
      if (typeof usage.input === "number" && typeof usage.output === "number") {
        this.push({ type: "usage", promptTokens: usage.input, completionTokens: usage.output });
      }
      this.end();
    } else if (status === "timeout" || str(p.summary) === "aborted") {
      this.end({ type: "aborted" });
    } else {
      this.end({ type: "error", message: str(p.summary) ?? str(p.error) ?? "the agent run failed" });
    }
  }

  event(f: GatewayFrame) {
    if (this.ended) return;
    const p = rec(f.payload);
    switch (f.event) {
      case "chat":
        if (p.runId === this.runId) this.chat(p);
        return;
      case "agent":
        if (p.runId === this.runId && p.stream === "tool") this.tool(rec(p.data), p.ts);
        return;
      case "exec.approval.requested":
      case "plugin.approval.requested":
        this.approvalRequested(f.event.startsWith("plugin") ? "plugin" : "exec", p);
        return;
      case "exec.approval.resolved":
      case "plugin.approval.resolved":
      case "plugin.approval.removed":
        this.approvalResolved(p);
        return;
    }
  }

  private chat(p: Rec) {
    const state = str(p.state);
    if (state === "delta" && typeof p.deltaText === "string") {
      if (p.replace === true) {
        this.streamed = p.deltaText;
        this.push({ type: "delta", text: p.deltaText, replace: true });
      } else if (p.deltaText) {
        this.streamed += p.deltaText;
        this.push({ type: "delta", text: p.deltaText });
      }
    } else if (state === "final") {
      // The final snapshot is the answer as stored: catch up if the deltas fell short of it.
      const final = messageText(p.message);
      if (final !== undefined && final !== this.streamed) {
        if (final.startsWith(this.streamed)) this.push({ type: "delta", text: final.slice(this.streamed.length) });
        else this.push({ type: "delta", text: final, replace: true });
        this.streamed = final;
      }
      // The run's result (with its usage) follows; if it never does, the answer is still complete.
      this.grace = setTimeout(() => this.end(), RESULT_GRACE_MS);
      this.grace.unref();
    } else if (state === "error") {
      this.end({ type: "error", message: str(p.errorMessage) ?? "the agent run failed" });
    } else if (state === "aborted") {
      this.end({ type: "aborted" });
    }
  }

  private tool(d: Rec, ts: unknown) {
    const id = str(d.toolCallId);
    if (!id) return;
    const at = typeof ts === "number" ? ts : Date.now();
    const phase = str(d.phase);
    if (phase === "start") {
      const step: GatewayToolStep = {
        id,
        name: str(d.name) ?? "tool",
        args: d.args,
        status: "running",
        startedAtMs: at,
      };
      this.steps.set(id, step);
      this.push({ type: "tool", step: { ...step } });
    } else if (phase === "result") {
      const started = this.steps.get(id);
      const output = resultText(d.result);
      const details = rec(rec(d.result).details);
      const failed =
        d.isError === true ||
        details.status === "failed" ||
        (typeof details.exitCode === "number" && details.exitCode !== 0);
      const step: GatewayToolStep = {
        id,
        name: started?.name ?? str(d.name) ?? "tool",
        args: started?.args ?? d.args,
        status: this.deniedCalls.has(id) || DENIED.test(output) ? "denied" : failed ? "error" : "ok",
        output,
        startedAtMs: started?.startedAtMs ?? at,
        endedAtMs: at,
      };
      this.steps.set(id, step);
      this.push({ type: "tool", step: { ...step } });
    }
  }

  private approvalRequested(kind: "exec" | "plugin", p: Rec) {
    const id = str(p.id);
    const r = rec(p.request);
    // A request names its run when the gateway knows it; a plugin's may only name the session.
    const ours = typeof r.runId === "string" ? r.runId === this.runId : r.sessionKey === this.sessionKey;
    if (!id || !ours || this.approvals.has(id)) return;
    this.approvals.set(id, str(r.toolCallId) ?? null);
    const title = str(r.title) ?? "";
    const description = str(r.description) ?? "";
    const subject =
      kind === "exec"
        ? (str(r.command) ?? "")
        : [title, description].filter(Boolean).join(": ") || (str(r.toolName) ?? "plugin action");
    this.push({
      type: "approval-requested",
      request: {
        gatewayApprovalId: id,
        kind,
        subject,
        cwd: str(r.cwd) ?? null,
        sessionKey: str(r.sessionKey) ?? null,
        expiresAtMs: typeof p.expiresAtMs === "number" ? p.expiresAtMs : null,
      },
    });
  }

  private approvalResolved(p: Rec) {
    const id = str(p.id);
    if (!id || !this.approvals.has(id)) return;
    const d = str(p.decision);
    const decision = d === "allow-once" || d === "allow-always" || d === "deny" ? d : null;
    const call = this.approvals.get(id);
    if (call && decision !== "allow-once" && decision !== "allow-always") this.deniedCalls.add(call);
    this.push({ type: "approval-resolved", gatewayApprovalId: id, decision });
  }
}

/**
 * Runs one agent turn on a workspace gateway over its WebSocket protocol (the
 * `agent` method, with the agent's instructions as extra system prompt) and
 * yields the answer, the tool calls and the approval requests as they happen.
 * The answer's text comes from the gateway's `chat` events (cumulative, so a
 * rewritten answer arrives as a `replace`), tool calls from its `agent` tool
 * stream, token usage from the run's result.
 *
 * Events are buffered per turn until the consumer asks (consecutive deltas
 * merged), so a slow reader costs memory bounded by the answer, and the
 * gateway never sees a slow subscriber. A consumer that stops early (abort, or
 * leaving the loop) cancels the run in the gateway. A gateway that cannot be
 * reached, or whose connection drops mid-run, ends the stream with a
 * `GatewayRequestError` marked `unreachable`.
 */
export async function* streamGatewayTurn(req: GatewayTurnRequest): AsyncGenerator<GatewayTurnEvent> {
  req.signal.throwIfAborted();
  const own = req.connection === "own";
  let ch: GatewayChannel;
  try {
    if (own) {
      ch = new GatewayChannel(req.endpoint, req.token);
      await ch.ready;
    } else ch = await gatewayChannel(req.endpoint, req.token);
  } catch (err) {
    if (req.signal.aborted || err instanceof GatewayRequestError) throw err;
    throw new GatewayRequestError("the workspace runtime did not answer", { unreachable: true, cause: err });
  }
  const turn = new TurnState(randomUUID(), req.sessionKey);
  const unlisten = ch.listen({ event: (f) => turn.event(f), closed: (err) => turn.fail(err) });
  const interrupt = () => turn.interrupt();
  req.signal.addEventListener("abort", interrupt, { once: true });
  const requestId = ch.send(
    "agent",
    {
      agentId: req.agentId,
      sessionKey: req.sessionKey,
      message: req.text,
      idempotencyKey: turn.runId,
      ...(req.instructions?.trim() ? { extraSystemPrompt: req.instructions } : {}),
    },
    (f) => turn.answer(f),
  );
  try {
    for (;;) {
      const ev = await turn.next(req.signal);
      if (ev === DONE) return;
      yield ev;
    }
  } finally {
    if (!turn.ended && !ch.isGone) {
      // The consumer left mid-run: a closed connection does not stop a run, so say so.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        ch.request("sessions.abort", { key: req.sessionKey, runId: turn.runId }).catch(() => undefined),
        new Promise((resolve) => {
          timer = setTimeout(resolve, ABORT_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    req.signal.removeEventListener("abort", interrupt);
    ch.forget(requestId);
    unlisten();
    if (own) ch.close();
  }
}
