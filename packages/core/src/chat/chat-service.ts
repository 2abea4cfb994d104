import { randomUUID } from "node:crypto";
import { BadRequestError, ConflictError, NotFoundError } from "@reef/contracts";
import { type Db, schema, type Tx, withScope } from "@reef/db";
import { deleteGatewaySessions } from "@reef/runtime";
import { and, asc, desc, eq, gt, gte, isNull, lt, sql } from "drizzle-orm";
import type { AgentService } from "../agents/agent-service.ts";
import type { ApprovalRelay } from "../approvals/approval-relay.ts";
import { appendAudit, appendAuditAfter, lockAuditChain } from "../audit/audit-service.ts";
import type { ProviderFailures } from "../outbound/provider-failures.ts";
import type { QuotaService } from "../quotas/quota-service.ts";
import type { RuntimeManager } from "../runtime/runtime-manager.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";
import type { Vault } from "../vault/vault-service.ts";
import type { WorkspaceGate } from "../workspace/workspace-access.ts";
import type { AbortNotifier } from "./abort-notifier.ts";
import { createAnswerStore } from "./answer-store.ts";
import { type MessageView, PROVIDER_FAULTS, toMessageView } from "./message-view.ts";
import { listSessionPage } from "./session-list.ts";
import { createSessionLookup, ownedBy, ownerOf } from "./session-lookup.ts";
import { createTranscriptSealer } from "./transcript-sealing.ts";
import { followStoredAnswer } from "./turn-follow.ts";
import { gatewaySessionKey, withEarlierTurns } from "./turn-input.ts";
import { createTurnRegistry, type TurnSubscription } from "./turn-registry.ts";
import { createTurnRunner, type GatewayChat, lookAhead } from "./turn-runner.ts";

export type { MessageView } from "./message-view.ts";
export type { ChatEvent, TurnSubscription } from "./turn-registry.ts";

const { chatSessions, chatMessages, agents } = schema;
type SessionRow = typeof chatSessions.$inferSelect;
type MessageRow = typeof chatMessages.$inferSelect;

export interface SessionView {
  id: string;
  agentId: string;
  title: string;
  pinned: boolean;
  createdAt: string;
  lastMessageAt: string | null;
}

/** A message accepted and stored, whose answer runs detached; `subscription` follows it from its start. */
export interface ChatTurn {
  sessionId: string;
  userMessageId: number;
  assistantMessageId: number;
  subscription: TurnSubscription;
}

const toSessionView = (r: SessionRow): SessionView => ({
  id: r.id,
  agentId: r.agentId,
  title: r.title,
  pinned: r.pinnedAt !== null,
  createdAt: r.createdAt.toISOString(),
  lastMessageAt: r.lastMessageAt?.toISOString() ?? null,
});

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
  /** What the LLM proxy sees go wrong with providers: a turn whose provider refuses connections fails at once. */
  providerFailures?: ProviderFailures | undefined;
  /** How often the stream of an answer running on another replica re-reads it. */
  followPollMs?: number;
  /** How often a streaming answer is saved, so a crash loses at most this much. */
  flushEveryMs?: number;
  /**
   * How often a turn in flight touches its answer's heartbeat (also while the
   * runtime wakes); the same statement reads a Stop pressed on another replica.
   */
  heartbeatMs?: number;
  /** How turns reach the gateway; tests pass a stand-in. */
  gateway?: GatewayChat | undefined;
  /** Tells the other replicas a Stop at once (see abort-notifier.ts); without it they read it at their next heartbeat. */
  abortNotifier?: Pick<AbortNotifier, "notify"> | undefined;
  log?: { warn(obj: object, msg: string): void };
}) {
  const { db, gate } = deps;
  const sealer = createTranscriptSealer(deps.vault);
  const answers = createAnswerStore(db, sealer);
  const flushEveryMs = deps.flushEveryMs ?? 1000;
  const heartbeatMs = deps.heartbeatMs ?? 5000;
  // Several missed heartbeats: the Reef relaying the answer is gone.
  const staleAfterMs = heartbeatMs * 6;
  const { findSession, findSessionSettled, settleInterrupted } = createSessionLookup(staleAfterMs);

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

  /** Turns running in this process, detached from any connection (see turn-registry.ts). */
  const turns = createTurnRegistry(deps.log);
  const runTurn = createTurnRunner({
    runtimes: deps.runtimes,
    approvals: deps.approvals,
    answers,
    providerFailures: deps.providerFailures,
    flushEveryMs,
    heartbeatMs,
    gateway: deps.gateway,
    log: deps.log,
  });

  async function openMessages(tx: Tx, rows: MessageRow[]): Promise<MessageRow[]> {
    const out: MessageRow[] = [];
    for (const r of rows) {
      out.push({ ...r, content: await sealer.openMessage(tx, r), trace: await sealer.openTrace(tx, r) });
    }
    return out;
  }

  /** `text` preceded by the session's stored turns (the gateway forgot them: see docs/chat.md). */
  async function retold(tx: Tx, sessionId: string, text: string): Promise<string> {
    const kept = await openMessages(
      tx,
      await tx.select().from(chatMessages).where(eq(chatMessages.sessionId, sessionId)).orderBy(asc(chatMessages.id)),
    );
    return withEarlierTurns(kept, text);
  }

  /**
   * Deletes `fromId` (a user message of the session) and everything after it,
   * audited, and marks the session for a re-tell until a turn completes (the
   * gateway forgets the whole conversation). @returns what the agent is sent:
   * `text` preceded by the turns kept before it (see docs/chat.md).
   */
  async function replaceFrom(
    tx: Tx,
    ctx: RequestContext,
    session: SessionRow,
    fromId: number,
    text: string,
  ): Promise<string> {
    const [from] = await tx
      .select({ id: chatMessages.id })
      .from(chatMessages)
      .where(and(eq(chatMessages.id, fromId), eq(chatMessages.sessionId, session.id), eq(chatMessages.role, "user")));
    if (!from) throw new BadRequestError("That message is not in this conversation.", { field: "replaceFrom" });
    const removed = await tx
      .delete(chatMessages)
      .where(and(eq(chatMessages.sessionId, session.id), gte(chatMessages.id, fromId)))
      .returning({ id: chatMessages.id });
    await appendAudit(tx, ctx, {
      workspaceId: session.workspaceId,
      action: "chat.message.replace",
      targetType: "chat_session",
      targetId: session.id,
      details: { fromMessageId: fromId, removed: removed.length },
    });
    await tx.update(chatSessions).set({ gatewayRetellPending: true }).where(eq(chatSessions.id, session.id));
    return retold(tx, session.id, text);
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

    /** The caller's sessions: pinned first, then newest activity first; `q` filters by title. */
    listSessions(
      ctx: RequestContext,
      workspaceId: string,
      q: {
        cursor?: string | undefined;
        limit?: number | undefined;
        agentId?: string | undefined;
        q?: string | undefined;
      },
    ): Promise<Page<SessionView>> {
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const where = and(
          eq(chatSessions.workspaceId, workspaceId),
          ownedBy(ownerOf(ctx, access)),
          q.agentId ? eq(chatSessions.agentId, q.agentId) : undefined,
        );
        const page = await listSessionPage(tx, sealer, where, q);
        return { items: page.items.map(toSessionView), nextCursor: page.nextCursor };
      });
    },

    /** Renames or pins the caller's own session (audited; the title is sealed like a new one). */
    updateSession(
      ctx: RequestContext,
      workspaceId: string,
      sessionId: string,
      patch: { title?: string | undefined; pinned?: boolean | undefined },
    ): Promise<SessionView> {
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const row = await findSession(tx, ctx, access, sessionId);
        const title = patch.title?.trim();
        const set: Partial<SessionRow> = {};
        if (title !== undefined) {
          set.title = await sealer.sealTitle(tx, workspaceId, sessionId, title);
          set.titleSealed = true;
        }
        if (patch.pinned !== undefined && patch.pinned !== (row.pinnedAt !== null)) {
          set.pinnedAt = patch.pinned ? new Date() : null;
        }
        const [updated] = Object.keys(set).length
          ? await tx.update(chatSessions).set(set).where(eq(chatSessions.id, sessionId)).returning()
          : [row];
        if (!updated) throw new NotFoundError("No such session.");
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "chat.session.update",
          targetType: "chat_session",
          targetId: sessionId,
          // Never the title: it is the member's, like the transcript.
          details: { renamed: title !== undefined, ...(patch.pinned !== undefined ? { pinned: patch.pinned } : {}) },
        });
        return toSessionView({ ...updated, title: title ?? (await sealer.openTitle(tx, row)) });
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
        turns.stop(sessionId, "stop");
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
      q: { cursor?: string | undefined; limit?: number | undefined; order?: "asc" | "desc" | undefined },
    ): Promise<Page<MessageView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { id: "integer" });
      // Newest first lets a long conversation open at its end and page back.
      const newestFirst = q.order === "desc";
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const { session } = await findSessionSettled(tx, ctx, access, sessionId);
        const rows = await tx
          .select()
          .from(chatMessages)
          .where(
            and(
              eq(chatMessages.sessionId, sessionId),
              cursor ? (newestFirst ? lt : gt)(chatMessages.id, Number(cursor.id)) : undefined,
            ),
          )
          .orderBy(newestFirst ? desc(chatMessages.id) : asc(chatMessages.id))
          .limit(limit + 1);
        // Read only when an answer failed at a provider: the session's agent's (as it is now).
        let providerId: string | null = null;
        if (rows.some((r) => r.errorCode && PROVIDER_FAULTS.has(r.errorCode))) {
          const [agent] = await tx
            .select({ providerId: agents.providerId })
            .from(agents)
            .where(eq(agents.id, session.agentId));
          providerId = agent?.providerId ?? null;
        }
        return toPage(
          await openMessages(tx, rows),
          limit,
          (r) => toMessageView(r, providerId),
          (r) => ({ id: r.id }),
        );
      });
    },

    /**
     * Accepts a message: checks the caller owns the session, counts it against the
     * workspace's quota (429 QUOTA_EXCEEDED when used up), stores it with an empty
     * answer, and starts the answer detached from the caller (see turn-registry.ts);
     * the returned subscription follows it from its start. With `replaceFrom` (a
     * user message of this session), that message and all after it are deleted
     * first and the gateway forgets the conversation (see docs/chat.md).
     */
    startTurn(
      ctx: RequestContext,
      workspaceId: string,
      sessionId: string,
      text: string,
      opts: {
        replaceFrom?: number | undefined;
        /**
         * What the agent is sent instead of `text` (which is what the session
         * stores and shows): the OpenAI-compatible API retells a client's earlier
         * messages in a new session's first prompt.
         */
        prompt?: string | undefined;
      } = {},
    ): Promise<ChatTurn> {
      return gate
        .run(ctx, workspaceId, "chat:use", async (tx, access) => {
          // The sender may chat in this workspace: ready its runtime while the message is checked and stored.
          const ahead = lookAhead(deps.runtimes, ctx, workspaceId);
          const { session, live, newMessageIds } = await findSessionSettled(tx, ctx, access, sessionId, {
            newMessageIds: true,
          });
          // In this process, or (by its heartbeat) in another replica.
          if (turns.has(sessionId) || live) {
            throw new ConflictError("An answer is still arriving in this session; wait for it or stop it first.");
          }
          if (!newMessageIds) throw new Error("the session lookup returned no message ids");
          const [userId, assistantId] = newMessageIds;
          const agent = await deps.agents.forChat(tx, access, session.agentId);
          let prompt = opts.prompt ?? text;
          if (opts.replaceFrom !== undefined) prompt = await replaceFrom(tx, ctx, session, opts.replaceFrom, text);
          // An edit whose turn never completed: the gateway may still lack the kept turns, so tell them again.
          else if (session.gatewayRetellPending) prompt = await retold(tx, sessionId, text);
          const forget = opts.replaceFrom !== undefined || session.gatewayRetellPending;
          // Every write of the message in one statement (each round trip here delays the answer): the month's
          // count, the audit chain's head, the session's activity and both rows, the text sealed already (its id
          // came with the session). The head is read in the select list, so it is locked after the count in
          // every plan (the same order for every sender); the session row is already locked.
          const count = deps.quotas.messageCount(tx, workspaceId);
          const head = lockAuditChain(tx, workspaceId);
          const title = text.replace(/\s+/g, " ").slice(0, 80);
          const touch = tx
            .update(chatSessions)
            .set({
              lastMessageAt: new Date(),
              ...(session.title
                ? {}
                : { title: await sealer.sealTitle(tx, workspaceId, sessionId, title), titleSealed: true }),
            })
            .where(eq(chatSessions.id, sessionId));
          const content = await sealer.sealMessage(tx, workspaceId, sessionId, userId, text);
          const insert = tx
            .insert(chatMessages)
            .overridingSystemValue()
            .values([
              { id: userId, workspaceId, sessionId, role: "user", content, sealed: true, completedAt: new Date() },
              {
                id: assistantId,
                workspaceId,
                sessionId,
                role: "assistant",
                content: "",
                sealed: true,
                status: "streaming",
              },
            ]);
          // drizzle parenthesises each embedded statement.
          const { rows } = await tx.execute(
            sql`with counted as ${count.statement}, head as ${head}, touched as ${touch}, inserted as ${insert} select counted.*, (select last_hash from head) as last_hash from counted`,
          );
          const [counted] = rows;
          // Over an allowance, the throw rolls all of it back.
          count.enforce(counted);
          await appendAuditAfter(
            tx,
            ctx,
            {
              workspaceId,
              action: "chat.message.send",
              targetType: "chat_session",
              targetId: sessionId,
              // Never the text: transcripts are the member's, not the audit trail's.
              details: { messageId: userId, chars: text.length },
            },
            (counted?.last_hash as string | null | undefined) ?? null,
          );
          const owner = ownerOf(ctx, access);
          const key = gatewaySessionKey(workspaceId, agent.id, owner, sessionId);
          return {
            plan: {
              ctx,
              workspaceId,
              session: { id: sessionId, key },
              agent,
              owner,
              prompt,
              assistantMessageId: assistantId,
              provider: agent.provider,
              forget,
              ahead,
            },
            userMessageId: userId,
            assistantMessageId: assistantId,
          };
        })
        .then((t) => {
          const ids = { userMessageId: t.userMessageId, assistantMessageId: t.assistantMessageId };
          // A second send raced past the check above in this process: the first one wins.
          if (turns.has(sessionId)) throw new ConflictError("An answer is still arriving in this session.");
          const subscription = turns.start(sessionId, ids, (signal) => runTurn(t.plan, signal));
          return { sessionId, ...ids, subscription };
        });
    },

    /**
     * Follows the answer streaming in a session: its state so far, then live
     * events until it ends; from another replica's turn, by re-reading the stored
     * answer. @returns null when nothing streams there.
     */
    async attach(ctx: RequestContext, workspaceId: string, sessionId: string): Promise<TurnSubscription | null> {
      const stored = await gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const { live } = await findSessionSettled(tx, ctx, access, sessionId);
        // Checked inside the authorised transaction: nobody learns of someone else's turn.
        const here = turns.attach(sessionId);
        if (here) return here;
        if (!live) return null;
        const [answer] = await tx
          .select({ id: chatMessages.id })
          .from(chatMessages)
          .where(
            and(
              eq(chatMessages.sessionId, sessionId),
              eq(chatMessages.role, "assistant"),
              eq(chatMessages.status, "streaming"),
            ),
          )
          .orderBy(desc(chatMessages.id))
          .limit(1);
        if (!answer) return null;
        const [user] = await tx
          .select({ id: chatMessages.id })
          .from(chatMessages)
          .where(
            and(eq(chatMessages.sessionId, sessionId), eq(chatMessages.role, "user"), lt(chatMessages.id, answer.id)),
          )
          .orderBy(desc(chatMessages.id))
          .limit(1);
        return { userMessageId: user?.id ?? 0, assistantMessageId: answer.id };
      });
      if (stored === null || "events" in stored) return stored;
      const leave = new AbortController();
      const read = () =>
        withScope(db, { workspaceId }, async (tx) => {
          await settleInterrupted(tx, sessionId);
          const [row] = await tx.select().from(chatMessages).where(eq(chatMessages.id, stored.assistantMessageId));
          return row
            ? {
                content: await sealer.openMessage(tx, row),
                status: row.status,
                error: row.error,
                errorCode: row.errorCode,
              }
            : null;
        });
      return {
        ...stored,
        events: followStoredAnswer(stored.assistantMessageId, read, leave.signal, deps.followPollMs),
        close: () => leave.abort(),
      };
    },

    /**
     * Stops the answer streaming in a session: at once when it runs in this
     * process; on another replica, by marking its row, which that replica reads on
     * its next heartbeat or save and then stops the same way (`aborted`).
     * @returns whether one was streaming.
     */
    abort(ctx: RequestContext, workspaceId: string, sessionId: string): Promise<{ aborted: boolean }> {
      return gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        await findSession(tx, ctx, access, sessionId);
        const here = turns.stop(sessionId, "stop");
        const marked = await tx
          .update(chatMessages)
          .set({ abortRequestedAt: new Date() })
          .where(
            and(
              eq(chatMessages.sessionId, sessionId),
              eq(chatMessages.status, "streaming"),
              isNull(chatMessages.abortRequestedAt),
            ),
          )
          .returning({ id: chatMessages.id });
        const aborted = here || marked.length > 0;
        if (!here && marked.length > 0) await deps.abortNotifier?.notify(tx, sessionId);
        // A Stop that stopped something is a change to the answer: it is audited like the rest.
        if (aborted)
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "chat.message.abort",
            targetType: "chat_session",
            targetId: sessionId,
            details: { messageId: marked[0]?.id ?? null },
          });
        return { aborted };
      });
    },

    /** Stops the turn running here in a session (a scheduled run past its timeout). @returns whether one ran here. */
    stopTurn: (sessionId: string): boolean => turns.stop(sessionId, "stop"),

    /** Shutdown: the answers running here end `interrupted`, keeping their text. */
    interruptAll(): Promise<void> {
      return turns.interruptAll();
    },
  };
}

export type ChatService = ReturnType<typeof createChatService>;
