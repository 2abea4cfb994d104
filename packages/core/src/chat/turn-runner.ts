import type { MessageStatus } from "@reef/db";
import { deleteGatewaySessions, GatewayRequestError, streamGatewayTurn } from "@reef/runtime";
import type { ChatAgent } from "../agents/agent-service.ts";
import type { ApprovalRelay, ApprovalTurn, ApprovalView } from "../approvals/approval-relay.ts";
import type { ProviderFailure, ProviderFailures } from "../outbound/provider-failures.ts";
import type { RuntimeAhead, RuntimeConnection, RuntimeManager } from "../runtime/runtime-manager.ts";
import type { RequestContext } from "../shared/context.ts";
import type { AnswerStore } from "./answer-store.ts";
import type { ChatEvent } from "./turn-registry.ts";
import { createTraceRecorder } from "./turn-trace.ts";

export type Owner = { userId: string; apiKeyId: null } | { userId: null; apiKeyId: string };

const DEAD_RUNTIME =
  "Your workspace's runtime stopped while answering. What was said so far is kept; send your message again to continue.";

export const INTERRUPTED =
  "This answer was cut off because Reef stopped while writing it. What was said so far is kept; send your message again to continue.";

/** Everything one turn needs, decided in the transaction that accepted the message. */
export interface TurnPlan {
  ctx: RequestContext;
  workspaceId: string;
  session: { id: string; key: string };
  agent: ChatAgent;
  owner: Owner;
  /** What the agent is sent: the person's text, preceded by the kept conversation after an edit. */
  prompt: string;
  assistantMessageId: number;
  /** The agent's provider, named in a provider error. */
  provider: { id: string; name: string } | null;
  /**
   * The conversation was edited (replaceFrom), and no turn has completed since:
   * the gateway forgets its session before this turn, and `prompt` re-tells the
   * kept turns. A completed turn clears the session's `gatewayRetellPending`.
   */
  forget: boolean;
  /** The runtime, looked up while the message was being stored (see {@link lookAhead}). */
  ahead?: Promise<RuntimeAhead | undefined> | undefined;
}

/**
 * Starts readying a workspace's runtime for a turn whose message is still being
 * stored: called once the sender is authorised, it runs beside that transaction
 * (see {@link RuntimeManager.readyIfRunning}: a stopped gateway is started by the
 * turn itself, after the message is accepted, with its progress shown). A running
 * gateway's row lock, or a paused one's resume, then costs the turn nothing.
 * Never rejects.
 */
export function lookAhead(
  runtimes: Pick<RuntimeManager, "readyIfRunning">,
  ctx: RequestContext,
  workspaceId: string,
): Promise<RuntimeAhead | undefined> {
  return runtimes.readyIfRunning(ctx, workspaceId).catch(() => undefined);
}

/** How a turn reaches the workspace's gateway (the real client, or a stand-in in tests). */
export interface GatewayChat {
  streamTurn: typeof streamGatewayTurn;
  deleteSessions: typeof deleteGatewaySessions;
}

const REAL_GATEWAY: GatewayChat = { streamTurn: streamGatewayTurn, deleteSessions: deleteGatewaySessions };

/** A gateway's error text, classified into a chat error code (see CHAT_ERROR_CODES). */
export function classifyProviderError(message: string): string {
  if (/\b(401|403)\b|unauthori[sz]ed|invalid[_ ]api[_ ]key|authentication|permission/i.test(message)) {
    return "PROVIDER_AUTH";
  }
  if (/\b429\b|rate[_ ]limit|too many requests/i.test(message)) return "RATE_LIMITED";
  if (/budget|insufficient_quota|quota/i.test(message)) return "QUOTA_EXCEEDED";
  if (/timed? ?out|timeout/i.test(message)) return "PROVIDER_TIMEOUT";
  return "PROVIDER_ERROR";
}

/**
 * Typed errors whose words reach the person as they are, by the stream code
 * they get: no room to start the workspace is `UNAVAILABLE` (the words say which cap).
 */
const TYPED_CODES: Record<string, string> = {
  UNAVAILABLE: "UNAVAILABLE",
  RUNTIME_LIMIT_REACHED: "UNAVAILABLE",
  CAPACITY_FULL: "UNAVAILABLE",
  QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
  RATE_LIMITED: "RATE_LIMITED",
};

/** A wake's progress events, each `starting` carrying how long a start usually takes here. */
async function* withExpected<T>(
  wake: AsyncGenerator<ChatEvent, T>,
  expectedSeconds: number | null,
): AsyncGenerator<ChatEvent, T> {
  try {
    for (let r = await wake.next(); ; r = await wake.next()) {
      if (r.done) return r.value;
      yield r.value.type === "runtime" && r.value.state === "starting" ? { ...r.value, expectedSeconds } : r.value;
    }
  } finally {
    await wake.return(undefined as T);
  }
}

/**
 * The gateway's error as one sentence a person reads: without its leading
 * warning sign, with the provider's name for its id, ending in one full stop.
 */
export function gatewayErrorSentence(message: string, provider: { id: string; name: string } | null): string {
  let text = message.replace(/^(?:\s|\u26a0|\ufe0f)+/u, "").replace(/[\s.]+$/u, "");
  if (provider) text = text.replaceAll(provider.id, provider.name);
  return `The agent could not answer: ${text}.`;
}

function providerMessage(f: ProviderFailure, name: string | undefined): string {
  const who = name ? `The AI provider “${name}”` : "The AI provider";
  return f.kind === "unreachable"
    ? `${who} could not be reached: it refused the connection (it may be down, or its address is wrong). Send your message again once it is back; an administrator can check the provider's settings.`
    : `${who} refused this workspace's key. An administrator should check the provider's API key.`;
}

/**
 * Runs one turn on the workspace's gateway and yields its events, saving the
 * answer as it streams. `signal` (the turn registry's) stops it: reason `stop`
 * ends it `aborted`, `interrupt` (shutdown) ends it `interrupted`; both keep
 * what was said. A provider the LLM proxy found unreachable ends it at once.
 */
export function createTurnRunner(deps: {
  runtimes: RuntimeManager;
  approvals?: ApprovalRelay | undefined;
  answers: AnswerStore;
  providerFailures?: ProviderFailures | undefined;
  flushEveryMs: number;
  heartbeatMs: number;
  gateway?: GatewayChat | undefined;
  log?: { warn(obj: object, msg: string): void } | undefined;
}) {
  const { answers } = deps;
  const gateway = deps.gateway ?? REAL_GATEWAY;

  /** Hands an approval event to the relay; a failure there is logged, never the turn's. */
  async function relay(workspaceId: string, call: () => Promise<ApprovalView | null> | undefined) {
    try {
      return (await call()) ?? null;
    } catch (err) {
      deps.log?.warn({ err, workspaceId }, "could not relay an approval request");
      return null;
    }
  }

  return async function* runTurn(plan: TurnPlan, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const { ctx, workspaceId, session, agent, owner, assistantMessageId } = plan;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) controller.abort(signal.reason);
    let providerFailure: ProviderFailure | undefined;
    const unwatch = plan.provider
      ? deps.providerFailures?.watch(workspaceId, plan.provider.id, (f) => {
          providerFailure ??= f;
          controller.abort("provider");
        })
      : undefined;
    let content = "";
    const trace = createTraceRecorder();
    const answer = { workspaceId, sessionId: session.id, messageId: assistantMessageId };
    // Stop pressed on another replica: that replica marked the row, and the same UPDATE that beats
    // or flushes reads the mark, so it ends here as a local Stop would (`aborted`).
    const stopIfAsked = (r: { stopRequested: boolean }) => {
      if (r.stopRequested && !controller.signal.aborted) controller.abort("stop");
    };
    // The heartbeat tells every replica this answer is alive, also while nothing arrives (a runtime
    // waking, a command waiting for a person's approval).
    let beating = false;
    const heartbeat = setInterval(() => {
      if (beating) return;
      beating = true;
      answers
        .beat(answer)
        .then(stopIfAsked)
        .catch((err: unknown) => deps.log?.warn({ err, workspaceId }, "chat heartbeat failed"))
        .finally(() => {
          beating = false;
        });
    }, deps.heartbeatMs);
    heartbeat.unref();
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    let settled = false;
    let lastFlush = Date.now();
    const flush = async () => {
      lastFlush = Date.now();
      stopIfAsked(await answers.flush(answer, { content, trace: trace.json() }));
    };
    const settle = async (status: MessageStatus, error?: { code: string; message: string }) => {
      settled = true;
      clearInterval(heartbeat);
      trace.settle();
      await answers.finish(answer, {
        content,
        status,
        usage,
        trace: trace.json(),
        retold: plan.forget,
        ...(error ? { error: error.message, errorCode: error.code } : {}),
      });
    };
    const providerError = (f: ProviderFailure) => ({
      type: "error" as const,
      messageId: assistantMessageId,
      code: f.kind === "unreachable" ? "PROVIDER_UNREACHABLE" : "PROVIDER_AUTH",
      message: providerMessage(f, plan.provider?.name),
      providerId: f.providerId,
    });
    try {
      let conn: RuntimeConnection;
      const ahead = await plan.ahead;
      const view = ahead?.view ?? (await deps.runtimes.get(workspaceId));
      if (view.state !== "running") {
        yield { type: "runtime", state: "starting", expectedSeconds: view.expectedStartSeconds };
      } else if (view.pausedAt) {
        // Resuming a paused gateway takes about a second: still worth saying why the answer is not there yet.
        yield { type: "runtime", state: "starting", expectedSeconds: 1 };
      }
      // Readied beside the message's transaction, or still under way (then joined, with its progress).
      conn =
        ahead?.connection() ??
        (yield* withExpected(
          deps.runtimes.ensureRunningWithProgress(ctx, workspaceId, controller.signal),
          view.expectedStartSeconds,
        ));
      if (plan.forget) {
        // The conversation was edited: the gateway's transcript still holds the removed turns.
        const { failed } = await gateway.deleteSessions(conn, [session.key]);
        if (failed.length) throw new Error(`the gateway kept the edited conversation: ${failed[0]?.error}`);
      }
      const approvalTurn = (): ApprovalTurn => ({
        workspaceId,
        sessionId: session.id,
        sessionKey: session.key,
        messageId: assistantMessageId,
        agentId: agent.id,
        owner,
        gateway: { endpoint: conn.endpoint, token: conn.token },
      });
      for (let attempt = 0; ; attempt++) {
        try {
          for await (const ev of gateway.streamTurn({
            endpoint: conn.endpoint,
            token: conn.token,
            agentId: agent.id,
            sessionKey: session.key,
            text: plan.prompt,
            instructions: agent.instructions,
            signal: controller.signal,
          })) {
            if (ev.type === "delta") {
              content = ev.replace ? ev.text : content + ev.text;
              yield ev;
            } else if (ev.type === "tool") {
              const step = trace.record(ev.step);
              if (step) yield { type: "tool", step };
            } else if (ev.type === "approval-requested") {
              const approval = await relay(workspaceId, () => deps.approvals?.requested(approvalTurn(), ev.request));
              if (approval) yield { type: "approval", approval };
            } else if (ev.type === "approval-resolved") {
              const approval = await relay(workspaceId, () =>
                deps.approvals?.resolved(approvalTurn(), ev.gatewayApprovalId, ev.decision),
              );
              if (approval) yield { type: "approval", approval };
            } else if (ev.type === "usage") {
              usage = { promptTokens: ev.promptTokens, completionTokens: ev.completionTokens };
            } else if (ev.type === "aborted" && !providerFailure) {
              // Stopped in the runtime by someone else (another replica, a deleted session).
              await settle("aborted");
              yield { type: "done", messageId: assistantMessageId, status: "aborted" };
              return;
            } else {
              if (providerFailure) {
                const out = providerError(providerFailure);
                await settle("error", out);
                yield out;
                return;
              }
              const message = ev.type === "error" ? ev.message : "the agent run ended";
              const out = {
                type: "error" as const,
                messageId: assistantMessageId,
                code: classifyProviderError(message),
                message: gatewayErrorSentence(message, plan.provider),
                ...(plan.provider ? { providerId: plan.provider.id } : {}),
              };
              await settle("error", out);
              yield out;
              return;
            }
            if ((ev.type === "delta" || ev.type === "tool") && Date.now() - lastFlush > deps.flushEveryMs)
              await flush();
          }
          break;
        } catch (err) {
          // A runtime that died while idle: nothing was said or run yet, so wake a fresh one and retry once.
          const retry =
            err instanceof GatewayRequestError &&
            err.unreachable &&
            content === "" &&
            trace.isEmpty &&
            attempt === 0 &&
            !controller.signal.aborted;
          if (!retry || !(await deps.runtimes.reportUnreachable(workspaceId))) throw err;
          const expected = (await deps.runtimes.get(workspaceId)).expectedStartSeconds;
          yield { type: "runtime", state: "starting", expectedSeconds: expected };
          conn = yield* withExpected(
            deps.runtimes.ensureRunningWithProgress(ctx, workspaceId, controller.signal),
            expected,
          );
        }
      }
      await settle("complete");
      if (usage) yield { type: "usage", ...usage };
      yield { type: "done", messageId: assistantMessageId, status: "complete" };
    } catch (err) {
      if (providerFailure) {
        const out = providerError(providerFailure);
        await settle("error", out);
        yield out;
        return;
      }
      if (controller.signal.aborted && controller.signal.reason === "interrupt") {
        await settle("interrupted", { code: "INTERRUPTED", message: INTERRUPTED });
        yield { type: "error", messageId: assistantMessageId, code: "INTERRUPTED", message: INTERRUPTED };
        return;
      }
      if (controller.signal.aborted) {
        await settle("aborted");
        yield { type: "done", messageId: assistantMessageId, status: "aborted" };
        return;
      }
      let code = "INTERNAL";
      let message: string;
      if (err instanceof GatewayRequestError && err.unreachable) {
        // Mark it so the next message wakes a fresh runtime instead of knocking on a dead one.
        await deps.runtimes.reportUnreachable(workspaceId).catch(() => false);
        message =
          content || !trace.isEmpty
            ? DEAD_RUNTIME
            : "Your workspace's runtime did not answer. Send your message again.";
        code = "UNAVAILABLE";
      } else if (err instanceof GatewayRequestError) {
        message = gatewayErrorSentence(err.message, plan.provider);
      } else if (err instanceof Error && "code" in err && typeof err.code === "string" && TYPED_CODES[err.code]) {
        code = TYPED_CODES[err.code] ?? "INTERNAL";
        message = err.message;
      } else {
        deps.log?.warn({ err, workspaceId }, "chat turn failed");
        message = "Something went wrong while answering. What was said so far is kept; send your message again.";
      }
      await settle("error", { code, message });
      yield { type: "error", messageId: assistantMessageId, code, message };
    } finally {
      unwatch?.();
      clearInterval(heartbeat);
      signal.removeEventListener("abort", onAbort);
      // Left mid-stream without an end (nothing should do that now): stop upstream and keep what was said.
      if (!settled) {
        controller.abort("stop");
        await settle("interrupted", { code: "INTERRUPTED", message: INTERRUPTED }).catch((err: unknown) =>
          deps.log?.warn({ err }, "could not save an interrupted answer"),
        );
      }
    }
  };
}
