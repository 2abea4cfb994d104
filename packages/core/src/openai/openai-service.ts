import { randomUUID } from "node:crypto";
import { AppError, BadRequestError, type ChatCompletionBody, NotFoundError, UnauthorizedError } from "@reef/contracts";
import { type Db, isUuid, schema, type Tx, withScope } from "@reef/db";
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import type { AgentService } from "../agents/agent-service.ts";
import type { ChatEvent, ChatService } from "../chat/chat-service.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext } from "../shared/context.ts";
import type { Access, WorkspaceGate } from "../workspace/workspace-access.ts";
import { type Conversation, fingerprintAfter, firstPrompt, readConversation } from "./openai-conversation.ts";

const { chatSessions } = schema;

/**
 * The most models `GET /models` lists. OpenAI's list has no pagination, so
 * Reef returns every agent the key may use up to this cap (newest first).
 */
export const MAX_OPENAI_MODELS = 1000;

/** One agent as a model, in OpenAI's shape (`name` is Reef's addition, which clients ignore or show). */
export interface OpenAiModel {
  id: string;
  object: "model";
  /** When the agent was created, in Unix seconds. */
  created: number;
  owned_by: "reef";
  name: string;
}

/** A chat completion under way: its ids, and the turn's events until it ends. */
export interface Completion {
  /** `chatcmpl-…`, the same on every chunk. */
  id: string;
  /** Unix seconds. */
  created: number;
  /** The agent's id (what the client named, resolved). */
  model: string;
  /** The Reef session holding the conversation (it appears in the key's history). */
  sessionId: string;
  /**
   * The turn's events (see ChatEvent). `done` comes last, once the answer is
   * stored and the session's fingerprint names the conversation with this
   * answer, so a follow-up sent right after it continues the session.
   */
  events: AsyncIterable<ChatEvent>;
}

type KeyActor = { kind: "api_key"; keyId: string; workspaceId: string };

/** The API key calling, for the workspace in the URL: people's sessions are refused. */
function keyOf(ctx: RequestContext, workspaceId: string): KeyActor {
  const actor = ctx.actor;
  if (actor.kind !== "api_key") {
    throw new UnauthorizedError(
      "The OpenAI-compatible API takes Reef API keys only: send `Authorization: Bearer reef_…` (create a key under API keys).",
    );
  }
  // As the gate answers: a key of another workspace learns nothing about this one.
  if (actor.workspaceId !== workspaceId) throw new NotFoundError("No such workspace.");
  return actor;
}

function modelNotFound(model: string): AppError {
  return new AppError(
    "NOT_FOUND",
    `The model "${model}" does not exist, or this API key may not use it: GET /models lists the agents it may chat with.`,
    { details: { field: "model", openaiCode: "model_not_found" } },
  );
}

/**
 * Reef's agents through OpenAI's chat-completions API (see docs/openai-api.md).
 * Every agent the key may chat with is a model; a conversation is a Reef
 * session owned by the key, found again by a fingerprint of its messages (the
 * client resends them all), and every turn goes through the chat service:
 * quotas, audit, metering and the runtime's wake, as in Reef's own chat.
 */
export function createOpenAiService(deps: {
  db: Db;
  gate: WorkspaceGate;
  agents: AgentService;
  chat: ChatService;
  rateLimits: RateLimits;
  log?: { warn(obj: object, msg: string): void };
}) {
  const { gate } = deps;

  /** Each key has its own budget of OpenAI-compatible requests (`REEF_RATE_LIMIT_OPENAI`), on top of the gate's. */
  async function spend(ctx: RequestContext, key: KeyActor): Promise<void> {
    await deps.rateLimits.consume("openai", `key:${key.keyId}`, ctx, key.workspaceId);
  }

  /** The agent `model` names (its id, or its exact name), if the caller may chat with it. */
  async function resolveModel(tx: Tx, access: Access, model: string): Promise<string> {
    if (isUuid(model)) {
      try {
        return (await deps.agents.forChat(tx, access, model)).id;
      } catch (err) {
        if (err instanceof NotFoundError) throw modelNotFound(model);
        throw err;
      }
    }
    const named = await deps.agents.chatAgents(tx, access, { limit: 2, name: model });
    if (named.length > 1) {
      throw new BadRequestError(`Several agents are named "${model}": use the agent's id as the model.`, {
        field: "model",
      });
    }
    const [agent] = named;
    if (!agent) throw modelNotFound(model);
    return agent.id;
  }

  /** The key's session holding exactly the conversation this request continues, if any. */
  async function findSession(
    tx: Tx,
    key: KeyActor,
    agentId: string,
    conversation: Conversation,
  ): Promise<string | null> {
    if (conversation.continues === null) return null;
    const [row] = await tx
      .select({ id: chatSessions.id })
      .from(chatSessions)
      .where(
        and(
          eq(chatSessions.workspaceId, key.workspaceId),
          eq(chatSessions.apiKeyId, key.keyId),
          isNull(chatSessions.userId),
          eq(chatSessions.agentId, agentId),
          eq(chatSessions.openaiFingerprint, conversation.continues),
        ),
      )
      .orderBy(desc(sql`coalesce(${chatSessions.lastMessageAt}, ${chatSessions.createdAt})`))
      .limit(1);
    return row?.id ?? null;
  }

  /**
   * Names the session by its conversation with `answer`. Outside the gate: it is
   * the tail of a request already authorised (as the turn stores its answer), and
   * it must not fail on a rate limit spent meanwhile.
   */
  async function remember(key: KeyActor, sessionId: string, fingerprint: string): Promise<void> {
    await withScope(deps.db, { workspaceId: key.workspaceId }, (tx) =>
      tx
        .update(chatSessions)
        .set({ openaiFingerprint: fingerprint })
        .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.apiKeyId, key.keyId))),
    );
  }

  /**
   * The turn's events, with `done` held back until the turn has ended (the
   * session free for the next message) and the fingerprint is stored. A failed
   * or stopped answer keeps the old fingerprint, so the client's retry lands in
   * the same session.
   */
  async function* relay(
    key: KeyActor,
    sessionId: string,
    conversation: Conversation,
    events: AsyncIterable<ChatEvent>,
  ): AsyncGenerator<ChatEvent> {
    let text = "";
    let done: ChatEvent | undefined;
    for await (const ev of events) {
      if (ev.type === "delta") text = ev.replace ? ev.text : text + ev.text;
      if (ev.type === "done") {
        done = ev;
        continue;
      }
      yield ev;
    }
    if (!done) return;
    if (done.type === "done" && done.status === "complete") {
      try {
        await remember(key, sessionId, fingerprintAfter(conversation, text));
      } catch (err) {
        // The answer stands; only the next request starts a new session.
        deps.log?.warn({ err, sessionId }, "could not store an OpenAI conversation's fingerprint");
      }
    }
    yield done;
  }

  return {
    /** The agents the key may chat with, as OpenAI models (newest first, at most {@link MAX_OPENAI_MODELS}). */
    async listModels(ctx: RequestContext, workspaceId: string): Promise<{ object: "list"; data: OpenAiModel[] }> {
      const key = keyOf(ctx, workspaceId);
      await spend(ctx, key);
      const rows = await gate.run(ctx, workspaceId, "chat:use", (tx, access) =>
        deps.agents.chatAgents(tx, access, { limit: MAX_OPENAI_MODELS }),
      );
      return {
        object: "list",
        data: rows.map((a) => ({
          id: a.id,
          object: "model",
          created: Math.floor(a.createdAt.getTime() / 1000),
          owned_by: "reef",
          name: a.name,
        })),
      };
    },

    /**
     * Starts answering a chat completion: resolves the model, continues the
     * key's session holding the earlier messages or starts one (its first prompt
     * retells them), and sends the last user message through the chat service.
     * Refusals (quota, busy session, unknown model) are thrown before anything
     * is streamed.
     */
    async startCompletion(ctx: RequestContext, workspaceId: string, body: ChatCompletionBody): Promise<Completion> {
      const key = keyOf(ctx, workspaceId);
      await spend(ctx, key);
      const conversation = readConversation(body.messages);
      const found = await gate.run(ctx, workspaceId, "chat:use", async (tx, access) => {
        const agentId = await resolveModel(tx, access, body.model);
        return { agentId, sessionId: await findSession(tx, key, agentId, conversation) };
      });
      const { agentId } = found;
      let sessionId = found.sessionId;
      let turn: Awaited<ReturnType<ChatService["startTurn"]>>;
      if (sessionId) {
        // A second request on this conversation while an answer streams: 409 from startTurn.
        turn = await deps.chat.startTurn(ctx, workspaceId, sessionId, conversation.text);
      } else {
        const session = await deps.chat.createSession(ctx, workspaceId, { agentId });
        sessionId = session.id;
        try {
          turn = await deps.chat.startTurn(ctx, workspaceId, sessionId, conversation.text, {
            prompt: firstPrompt(conversation),
          });
        } catch (err) {
          // Refused (quota, say): no empty session is left in the key's history.
          await deps.chat.deleteSession(ctx, workspaceId, sessionId).catch(() => undefined);
          throw err;
        }
      }
      return {
        id: `chatcmpl-${randomUUID().replaceAll("-", "")}`,
        created: Math.floor(Date.now() / 1000),
        model: agentId,
        sessionId,
        events: relay(key, sessionId, conversation, turn.subscription.events),
      };
    },
  };
}

export type OpenAiService = ReturnType<typeof createOpenAiService>;
