import { randomUUID } from "node:crypto";
import { ConflictError, ForbiddenError, NotFoundError } from "@reef/contracts";
import { type Db, type MessageStatus, schema, type Tx } from "@reef/db";
import { deleteGatewaySessions, GatewayRequestError, streamGatewayTurn } from "@reef/runtime";
import { and, asc, desc, eq, gt, isNull, lt } from "drizzle-orm";
import type { AgentService, ChatAgent } from "../agents/agent-service.ts";
import type { ApprovalRelay, ApprovalTurn, ApprovalView } from "../approvals/approval-relay.ts";
import { appendAudit } from "../audit/audit-service.ts";
import type { QuotaService } from "../quotas/quota-service.ts";
import type { RuntimeConnection, RuntimeManager } from "../runtime/runtime-manager.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import type { Vault } from "../vault/vault-service.ts";
import type { Access, WorkspaceGate } from "../workspace/workspace-access.ts";
import { createAnswerStore } from "./answer-store.ts";
import { createTranscriptSealer } from "./transcript-sealing.ts";
import { createTraceRecorder, parseTrace, type TraceStep } from "./turn-trace.ts";

const { chatSessions, chatMessages } = schema;
type SessionRow = typeof chatSessions.$inferSelect;
type MessageRow = typeof chatMessages.$inferSelect;

export interface SessionView {
  id: string;
  agentId: string;
  title: string;
  createdAt: string;
  lastMessageAt: string | null;
}

export interface MessageView {
  id: number;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  error: string | null;
  usage: { promptTokens: number; completionTokens: number } | null;
  /** The tools the agent used for this answer, in order (empty for a person's message or a plain answer). */
  trace: TraceStep[];
  createdAt: string;
}

/** What a client receives while an answer streams. */
export type ChatEvent =
  | { type: "runtime"; state: "starting" | "running" }
  /** The server is at its cap of running workspaces: this one waits in line (1: next). */
  | { type: "runtime"; state: "queued"; position: number }
  /** More of the answer; `replace`: the answer so far is this text instead (the agent's runtime rewrote it). */
  | { type: "delta"; text: string; replace?: true }
  /** A tool call of the agent's: sent when it starts and again when it ends (same `step.id`). */
  | { type: "tool"; step: TraceStep }
  /** A command waiting for a person's approval: sent when requested and again when decided or expired. */
  | { type: "approval"; approval: ApprovalView }
  | { type: "usage"; promptTokens: number; completionTokens: number }
  | { type: "done"; messageId: number; status: "complete" | "aborted" }
  | { type: "error"; messageId: number; code: string; message: string };

/** A message accepted and stored, whose answer is produced by iterating `events`. */
export interface ChatTurn {
  sessionId: string;
  userMessageId: number;
  assistantMessageId: number;
  /**
   * Runs the turn on the workspace's gateway and yields its events. Aborting
   * `signal` (the client went away) stops generation upstream; what was said so
   * far is kept either way.
   */
  events(signal: AbortSignal): AsyncGenerator<ChatEvent>;
}

const toSessionView = (r: SessionRow): SessionView => ({
  id: r.id,
  agentId: r.agentId,
  title: r.title,
  createdAt: r.createdAt.toISOString(),
  lastMessageAt: r.lastMessageAt?.toISOString() ?? null,
});

const toMessageView = (r: MessageRow): MessageView => ({
  id: r.id,
  role: r.role,
  content: r.content,
  status: r.status,
  error: r.error,
  usage:
    r.promptTokens !== null && r.completionTokens !== null
      ? { promptTokens: r.promptTokens, completionTokens: r.completionTokens }
      : null,
  // Opened by `openMessages` before it gets here.
  trace: parseTrace(r.trace),
  createdAt: r.createdAt.toISOString(),
});

type Owner = { userId: string; apiKeyId: null } | { userId: null; apiKeyId: string };

function ownerOf(ctx: RequestContext, access: Access): Owner {
  if (access.userId) return { userId: access.userId, apiKeyId: null };
  if (ctx.actor.kind === "api_key") return { userId: null, apiKeyId: ctx.actor.keyId };
  throw new ForbiddenError("Only people and API keys can chat.");
}

function ownedBy(owner: Owner) {
  if (owner.userId !== null) return eq(chatSessions.userId, owner.userId);
  return and(isNull(chatSessions.userId), eq(chatSessions.apiKeyId, owner.apiKeyId));
}

/**
 * The gateway session a Reef session maps to, in OpenClaw's `agent:<agentId>:<rest>`
 * form: the prefix selects the agent (a gateway with several agents and no
 * default refuses a key that does not), and the rest names the workspace, the
 * owner and the session, so two members (or two sessions) never share a gateway
 * session even if ids were guessed.
 */
export function gatewaySessionKey(workspaceId: string, agentId: string, owner: Owner, sessionId: string): string {
  const who = owner.userId ? `user-${owner.userId}` : `key-${owner.apiKeyId}`;
  return `agent:${agentId}:reef-${workspaceId}-${who}-session-${sessionId}`;
}

const DEAD_RUNTIME =
  "Your workspace's runtime stopped while answering. What was said so far is kept; send your message again to continue.";

const INTERRUPTED =
  "This answer was cut off because Reef stopped while writing it. What was said so far is kept; send your message again to continue.";

/**
 * Chat sessions per member per agent, and streamed turns relayed from the
 * workspace's own gateway. Every session belongs to one member (or API key):
 * nobody else in the workspace can list, read, continue or delete it.
 */
export function createChatService(deps: {
  db: Db;
  gate: WorkspaceGate;
  agents: AgentService;
  runtimes: RuntimeManager;
  quotas: QuotaService;
  /** Seals message contents and titles with the workspace's data key (see transcript-sealing.ts). */
  vault: Vault;
  /**
   * Where approval requests seen on a turn's gateway connection go (recorded,
   * timed, shown in the inbox); without it they are ignored here and wait in
   * the gateway.
   */
  approvals?: ApprovalRelay | undefined;
  /** How often a streaming answer is saved, so a crash loses at most this much. */
  flushEveryMs?: number;
  /** How often a turn in flight touches its answer's heartbeat (also while the runtime wakes). */
  heartbeatMs?: number;
  log?: { warn(obj: object, msg: string): void };
}) {
  const { db, gate } = deps;
  const sealer = createTranscriptSealer(deps.vault);
  const answers = createAnswerStore(db, sealer);
  const flushEveryMs = deps.flushEveryMs ?? 1000;
  const heartbeatMs = deps.heartbeatMs ?? 5000;
  // Several missed heartbeats: the Reef relaying the answer is gone.
  const staleAfterMs = heartbeatMs * 6;

  /**
   * Marks the session's answers left `streaming` by a Reef that died as cut off,
   * keeping what they said. @returns whether an answer is still really streaming.
   */
  async function settleInterrupted(tx: Tx, sessionId: string): Promise<boolean> {
    const stale = new Date(Date.now() - staleAfterMs);
    await tx
      .update(chatMessages)
      .set({ status: "error", error: INTERRUPTED, completedAt: new Date() })
      .where(
        and(
          eq(chatMessages.sessionId, sessionId),
          eq(chatMessages.status, "streaming"),
          lt(chatMessages.heartbeatAt, stale),
        ),
      );
    const [live] = await tx
      .select({ id: chatMessages.id })
      .from(chatMessages)
      .where(and(eq(chatMessages.sessionId, sessionId), eq(chatMessages.status, "streaming")))
      .limit(1);
    return live !== undefined;
  }
  /** Deletes sessions from the workspace's gateway if it is running; a failure is logged, never thrown. */
  async function forgetInGateway(ctx: RequestContext, workspaceId: string, keys: string[]): Promise<void> {
    try {
      if ((await deps.runtimes.get(workspaceId)).state !== "running") return;
      const conn = await deps.runtimes.ensureRunning(ctx, workspaceId);
      const { failed } = await deleteGatewaySessions(conn, keys);
      if (failed.length) deps.log?.warn({ workspaceId, failed }, "the gateway kept deleted chat sessions");
    } catch (err) {
      deps.log?.warn({ err, workspaceId }, "could not delete chat sessions from the gateway");
    }
  }

  /** Turns streaming in this process, by session, so `abort` can reach them. */
  const inflight = new Map<string, AbortController>();

  async function findSession(tx: Tx, ctx: RequestContext, access: Access, sessionId: string): Promise<SessionRow> {
    const owner = ownerOf(ctx, access);
    const [row] = await tx
      .select()
      .from(chatSessions)
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.workspaceId, access.workspaceId), ownedBy(owner)));
    if (!row) throw new NotFoundError("No such session.");
    return row;
  }

  /** Views of the caller's own rows, opened one after another: the first fills the vault's key cache for the rest. */
  async function openSessions(tx: Tx, rows: SessionRow[]): Promise<SessionRow[]> {
    const out: SessionRow[] = [];
    for (const r of rows) out.push({ ...r, title: await sealer.openTitle(tx, r) });
    return out;
  }
  async function openMessages(tx: Tx, rows: MessageRow[]): Promise<MessageRow[]> {
    const out: MessageRow[] = [];
    for (const r of rows) {
      out.push({ ...r, content: await sealer.openMessage(tx, r), trace: await sealer.openTrace(tx, r) });
    }
    return out;
  }

  /** Hands an approval event to the relay; a failure there is logged, never the turn's. */
  async function relay(workspaceId: string, call: () => Promise<ApprovalView | null> | undefined) {
    try {
      return (await call()) ?? null;
    } catch (err) {
      deps.log?.warn({ err, workspaceId }, "could not relay an approval request");
      return null;
    }
  }

  function runTurn(
    ctx: RequestContext,
    workspaceId: string,
    session: { id: string; key: string },
    agent: ChatAgent,
    owner: Owner,
    text: string,
    assistantMessageId: number,
  ) {
    return async function* events(signal: AbortSignal): AsyncGenerator<ChatEvent> {
      const controller = new AbortController();
      const onAbort = () => controller.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      if (signal.aborted) controller.abort();
      inflight.set(session.id, controller);
      let content = "";
      const trace = createTraceRecorder();
      const answer = { workspaceId, sessionId: session.id, messageId: assistantMessageId };
      // The heartbeat tells every replica this answer is alive, also while nothing arrives (a runtime
      // waking, a command waiting for a person's approval).
      let beating = false;
      const heartbeat = setInterval(() => {
        if (beating) return;
        beating = true;
        answers
          .beat(answer)
          .catch((err: unknown) => deps.log?.warn({ err, workspaceId }, "chat heartbeat failed"))
          .finally(() => {
            beating = false;
          });
      }, heartbeatMs);
      heartbeat.unref();
      let usage: { promptTokens: number; completionTokens: number } | undefined;
      let settled = false;
      let lastFlush = Date.now();
      const flush = async () => {
        lastFlush = Date.now();
        await answers.flush(answer, { content, trace: trace.json() });
      };
      const settle = async (status: MessageStatus, error?: string) => {
        settled = true;
        clearInterval(heartbeat);
        trace.settle();
        await answers.finish(answer, { content, status, usage, trace: trace.json(), ...(error ? { error } : {}) });
      };
      try {
        let conn: RuntimeConnection;
        if ((await deps.runtimes.get(workspaceId)).state !== "running") yield { type: "runtime", state: "starting" };
        conn = yield* deps.runtimes.ensureRunningWithProgress(ctx, workspaceId, controller.signal);
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
            for await (const ev of streamGatewayTurn({
              endpoint: conn.endpoint,
              token: conn.token,
              agentId: agent.id,
              sessionKey: session.key,
              text,
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
              } else if (ev.type === "aborted") {
                // Stopped in the runtime by someone else (another replica, a deleted session).
                await settle("aborted");
                yield { type: "done", messageId: assistantMessageId, status: "aborted" };
                return;
              } else {
                await settle("error", ev.message);
                yield { type: "error", messageId: assistantMessageId, code: "BAD_GATEWAY", message: ev.message };
                return;
              }
              if ((ev.type === "delta" || ev.type === "tool") && Date.now() - lastFlush > flushEveryMs) await flush();
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
            yield { type: "runtime", state: "starting" };
            conn = yield* deps.runtimes.ensureRunningWithProgress(ctx, workspaceId, controller.signal);
          }
        }
        await settle("complete");
        if (usage) yield { type: "usage", ...usage };
        yield { type: "done", messageId: assistantMessageId, status: "complete" };
      } catch (err) {
        if (controller.signal.aborted) {
          await settle("aborted");
          yield { type: "done", messageId: assistantMessageId, status: "aborted" };
          return;
        }
        let code = "BAD_GATEWAY";
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
          message = `The agent could not answer: ${err.message}.`;
        } else if (
          err &&
          typeof err === "object" &&
          "code" in err &&
          typeof err.code === "string" &&
          err instanceof Error
        ) {
          code = err.code;
          message = err.message;
        } else {
          deps.log?.warn({ err, workspaceId }, "chat turn failed");
          code = "INTERNAL";
          message = "Something went wrong while answering. What was said so far is kept.";
        }
        await settle("error", message);
        yield { type: "error", messageId: assistantMessageId, code, message };
      } finally {
        clearInterval(heartbeat);
        signal.removeEventListener("abort", onAbort);
        if (inflight.get(session.id) === controller) inflight.delete(session.id);
        // The consumer left mid-stream (client gone): stop upstream and keep what was said.
        if (!settled) {
          controller.abort();
          await settle("aborted").catch((err: unknown) => deps.log?.warn({ err }, "could not save an aborted answer"));
        }
      }
    };
  }

  return {
    createSession(
      ctx: RequestContext,
      workspaceId: string,
      input: { agentId: string; title?: string | undefined },
    ): Promise<SessionView> {
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const owner = ownerOf(ctx, access);
        const agent = await deps.agents.forChat(tx, access, input.agentId);
        // The id is chosen here: the sealed title is bound to it.
        const id = randomUUID();
        const title = await sealer.sealTitle(tx, workspaceId, id, input.title?.trim() ?? "");
        const [row] = await tx
          .insert(chatSessions)
          .values({ id, workspaceId, agentId: agent.id, ...owner, title, titleSealed: true })
          .returning();
        if (!row) throw new Error("session insert returned nothing");
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "chat.session.create",
          targetType: "chat_session",
          targetId: row.id,
          details: { agentId: agent.id },
        });
        return toSessionView({ ...row, title: input.title?.trim() ?? "" });
      });
    },

    listSessions(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined; agentId?: string | undefined },
    ): Promise<Page<SessionView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const rows = await tx
          .select()
          .from(chatSessions)
          .where(
            and(
              eq(chatSessions.workspaceId, workspaceId),
              ownedBy(ownerOf(ctx, access)),
              q.agentId ? eq(chatSessions.agentId, q.agentId) : undefined,
              olderThan(chatSessions.createdAt, chatSessions.id, cursor),
            ),
          )
          .orderBy(desc(chatSessions.createdAt), desc(chatSessions.id))
          .limit(limit + 1);
        return toPage(await openSessions(tx, rows), limit, toSessionView, (r) => ({
          createdAt: r.createdAt.toISOString(),
          id: r.id,
        }));
      });
    },

    getSession(ctx: RequestContext, workspaceId: string, sessionId: string): Promise<SessionView> {
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const row = await findSession(tx, ctx, access, sessionId);
        return toSessionView({ ...row, title: await sealer.openTitle(tx, row) });
      });
    },

    /**
     * Deletes a session, and its conversation from the workspace's gateway when
     * that is running (a stopped gateway keeps it until the runtime is destroyed:
     * no agent can reach it, as session tools see only their own session).
     */
    async deleteSession(ctx: RequestContext, workspaceId: string, sessionId: string): Promise<void> {
      const key = await gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const row = await findSession(tx, ctx, access, sessionId);
        inflight.get(sessionId)?.abort();
        await tx.delete(chatSessions).where(eq(chatSessions.id, sessionId));
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "chat.session.delete",
          targetType: "chat_session",
          targetId: sessionId,
        });
        return gatewaySessionKey(workspaceId, row.agentId, ownerOf(ctx, access), sessionId);
      });
      await forgetInGateway(ctx, workspaceId, [key]);
    },

    /** The session's messages, oldest first, keyset-paginated. */
    listMessages(
      ctx: RequestContext,
      workspaceId: string,
      sessionId: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<MessageView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { id: "integer" });
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        await findSession(tx, ctx, access, sessionId);
        await settleInterrupted(tx, sessionId);
        const rows = await tx
          .select()
          .from(chatMessages)
          .where(
            and(eq(chatMessages.sessionId, sessionId), cursor ? gt(chatMessages.id, Number(cursor.id)) : undefined),
          )
          .orderBy(asc(chatMessages.id))
          .limit(limit + 1);
        return toPage(await openMessages(tx, rows), limit, toMessageView, (r) => ({ id: r.id }));
      });
    },

    /**
     * Accepts a message: checks the caller owns the session, counts it against the
     * workspace's quota (429 QUOTA_EXCEEDED when used up), stores it with an empty
     * answer, and returns the turn that produces the answer.
     */
    startTurn(ctx: RequestContext, workspaceId: string, sessionId: string, text: string): Promise<ChatTurn> {
      return gate
        .run(ctx, workspaceId, "chat:use", async (tx, access) => {
          const session = await findSession(tx, ctx, access, sessionId);
          // In this process, or (by its heartbeat) in another replica.
          if (inflight.has(sessionId) || (await settleInterrupted(tx, sessionId))) {
            throw new ConflictError("An answer is still arriving in this session; wait for it or stop it first.");
          }
          const agent = await deps.agents.forChat(tx, access, session.agentId);
          await deps.quotas.reserveMessage(tx, workspaceId);
          // The text is sealed once the row has its id (bound into the ciphertext), in this transaction.
          const [user] = await tx
            .insert(chatMessages)
            .values({ workspaceId, sessionId, role: "user", content: "", sealed: true, completedAt: new Date() })
            .returning({ id: chatMessages.id });
          const [assistant] = await tx
            .insert(chatMessages)
            .values({ workspaceId, sessionId, role: "assistant", content: "", sealed: true, status: "streaming" })
            .returning({ id: chatMessages.id });
          if (!user || !assistant) throw new Error("message insert returned nothing");
          await tx
            .update(chatMessages)
            .set({ content: await sealer.sealMessage(tx, workspaceId, sessionId, user.id, text) })
            .where(eq(chatMessages.id, user.id));
          const title = text.replace(/\s+/g, " ").slice(0, 80);
          await tx
            .update(chatSessions)
            .set({
              lastMessageAt: new Date(),
              ...(session.title
                ? {}
                : { title: await sealer.sealTitle(tx, workspaceId, sessionId, title), titleSealed: true }),
            })
            .where(eq(chatSessions.id, sessionId));
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "chat.message.send",
            targetType: "chat_session",
            targetId: sessionId,
            // Never the text: transcripts are the member's, not the audit trail's.
            details: { messageId: user.id, chars: text.length },
          });
          const owner = ownerOf(ctx, access);
          const key = gatewaySessionKey(workspaceId, agent.id, owner, sessionId);
          return {
            session: { id: sessionId, key },
            agent,
            owner,
            userMessageId: user.id,
            assistantMessageId: assistant.id,
          };
        })
        .then((t) => ({
          sessionId,
          userMessageId: t.userMessageId,
          assistantMessageId: t.assistantMessageId,
          events: runTurn(ctx, workspaceId, t.session, t.agent, t.owner, text, t.assistantMessageId),
        }));
    },

    /** Stops the answer streaming in a session (in this process). @returns whether one was streaming. */
    abort(ctx: RequestContext, workspaceId: string, sessionId: string): Promise<{ aborted: boolean }> {
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        await findSession(tx, ctx, access, sessionId);
        const controller = inflight.get(sessionId);
        controller?.abort();
        return { aborted: controller !== undefined };
      });
    },
  };
}

export type ChatService = ReturnType<typeof createChatService>;
