import type { ServerResponse } from "node:http";
import {
  chatSessionSchema,
  createSessionBodySchema,
  dailyUsageSchema,
  listSessionsQuerySchema,
  llmCallSchema,
  messageSchema,
  pageOf,
  pageQuerySchema,
  sendMessageBodySchema,
  updateSessionBodySchema,
  usageSchema,
} from "@reef/contracts";
import type { ChatEvent, ChatService, QuotaService, TurnSubscription } from "@reef/core";
import type { FastifyReply } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";
import { EVENT_STREAM_HEADERS, writeDrained } from "./stream-write.ts";

const wid = z.object({ wid: z.uuid() });
const one = wid.extend({ chatSessionId: z.uuid() });
const KEEPALIVE_MS = 10_000;

/** Writes one server-sent event, waiting for the socket to drain when the client reads slowly. */
function send(raw: ServerResponse, event: string, data: unknown): Promise<void> {
  return writeDrained(raw, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function payloadOf(ev: ChatEvent): unknown {
  const { type: _type, ...rest } = ev;
  return rest;
}

/**
 * Streams a turn's events as server-sent events. The turn runs detached: the
 * client going away only stops this stream, never the answer (Stop does).
 */
async function streamTurn(reply: FastifyReply, sub: TurnSubscription, log: FastifyReply["log"]): Promise<void> {
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    ...EVENT_STREAM_HEADERS,
  });
  raw.on("close", () => {
    if (!raw.writableFinished) sub.close();
  });
  const keepalive = setInterval(() => raw.write(": keepalive\n\n"), KEEPALIVE_MS);
  try {
    await send(raw, "accepted", { userMessageId: sub.userMessageId, assistantMessageId: sub.assistantMessageId });
    for await (const ev of sub.events) {
      if (raw.destroyed) break;
      await send(raw, ev.type, payloadOf(ev));
    }
  } catch (err) {
    log.error({ err }, "chat stream failed");
  } finally {
    sub.close();
    clearInterval(keepalive);
    raw.end();
  }
}

const EVENTS =
  "Events: `accepted` {userMessageId, assistantMessageId}, `runtime` {state} while a stopped workspace wakes (`starting` with `expectedSeconds`, `queued` with a `position` while the server is at its cap of running workspaces), `delta` {text, replace?} (with `replace` the answer so far is this text instead), `tool` {step} when a tool call starts and again when it ends (same `step.id`), `approval` {approval} when a command waits for a person and again when it is decided or expires, `usage` {promptTokens, completionTokens}, then `done` {messageId, status} or `error` {messageId, code, message, providerId?} (`code`: one of CHAT_ERROR_CODES).";

export function chatRoutes(deps: { chat: ChatService; quotas: QuotaService }): FastifyPluginAsyncZod {
  const { chat, quotas } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/sessions",
      {
        schema: {
          tags: ["chat"],
          summary:
            "Your chat sessions in this workspace: pinned first, then newest activity first; `q` filters by title",
          params: wid,
          querystring: listSessionsQuerySchema,
          response: { 200: pageOf(chatSessionSchema) },
        },
      },
      async (request) => chat.listSessions(requireActor(request), request.params.wid, request.query),
    );
    app.post(
      "/api/v1/workspaces/:wid/sessions",
      {
        schema: {
          tags: ["chat"],
          summary: "Start a chat session with an agent",
          params: wid,
          body: createSessionBodySchema,
          response: { 201: chatSessionSchema },
        },
      },
      async (request, reply) =>
        reply.status(201).send(await chat.createSession(requireActor(request), request.params.wid, request.body)),
    );
    app.get(
      "/api/v1/workspaces/:wid/sessions/:chatSessionId",
      { schema: { tags: ["chat"], params: one, response: { 200: chatSessionSchema } } },
      async (request) => chat.getSession(requireActor(request), request.params.wid, request.params.chatSessionId),
    );
    app.patch(
      "/api/v1/workspaces/:wid/sessions/:chatSessionId",
      {
        schema: {
          tags: ["chat"],
          summary: "Rename or pin your session",
          params: one,
          body: updateSessionBodySchema,
          response: { 200: chatSessionSchema },
        },
      },
      async (request) =>
        chat.updateSession(requireActor(request), request.params.wid, request.params.chatSessionId, request.body),
    );
    app.get(
      "/api/v1/workspaces/:wid/sessions/:chatSessionId/stream",
      {
        schema: {
          tags: ["chat"],
          summary: "Follow the answer streaming in this session (text/event-stream); 204 when none is",
          description: `The state so far first (the whole text as one \`delta\` with \`replace\`, each tool step and approval, a runtime still waking), then live events. ${EVENTS}`,
          params: one,
        },
      },
      async (request, reply) => {
        const sub = await chat.attach(requireActor(request), request.params.wid, request.params.chatSessionId);
        if (!sub) return reply.status(204).send();
        await streamTurn(reply, sub, request.log);
      },
    );
    app.delete(
      "/api/v1/workspaces/:wid/sessions/:chatSessionId",
      {
        schema: {
          tags: ["chat"],
          summary: "Delete a session and its messages",
          params: one,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await chat.deleteSession(requireActor(request), request.params.wid, request.params.chatSessionId);
        return reply.status(204).send(null);
      },
    );
    app.get(
      "/api/v1/workspaces/:wid/sessions/:chatSessionId/messages",
      {
        schema: {
          tags: ["chat"],
          summary: "The session's history, oldest first (`order=desc`: newest first, to page back from the end)",
          params: one,
          querystring: pageQuerySchema.extend({ order: z.enum(["asc", "desc"]).default("asc") }),
          response: { 200: pageOf(messageSchema) },
        },
      },
      async (request) =>
        chat.listMessages(requireActor(request), request.params.wid, request.params.chatSessionId, request.query),
    );
    app.post(
      "/api/v1/workspaces/:wid/sessions/:chatSessionId/messages",
      {
        schema: {
          tags: ["chat"],
          summary: "Send a message; the answer streams back as text/event-stream",
          description: `${EVENTS} Closing the connection does not stop the answer: it is still written and stored, and \`GET …/stream\` follows it again; only \`POST …/abort\` stops it. With \`replaceFrom\` (a user message id of this session), that message and everything after it are deleted first, and the agent forgets them.`,
          params: one,
          body: sendMessageBodySchema,
        },
      },
      async (request, reply) => {
        // Everything that can be refused (not yours, quota, validation) is refused here, as JSON.
        const turn = await chat.startTurn(
          requireActor(request),
          request.params.wid,
          request.params.chatSessionId,
          request.body.text,
          { replaceFrom: request.body.replaceFrom },
        );
        await streamTurn(reply, turn.subscription, request.log);
      },
    );
    app.post(
      "/api/v1/workspaces/:wid/sessions/:chatSessionId/abort",
      {
        schema: {
          tags: ["chat"],
          summary: "Stop the answer being generated in this session",
          description:
            "Works from any replica: the one writing the answer stops it at once when it is this one, else on its next heartbeat (a few seconds). The answer is stored `aborted` with what was said so far. `aborted: false` when nothing was streaming.",
          params: one,
          response: { 200: z.object({ aborted: z.boolean() }) },
        },
      },
      async (request) => chat.abort(requireActor(request), request.params.wid, request.params.chatSessionId),
    );
    app.get(
      "/api/v1/workspaces/:wid/usage",
      {
        schema: {
          tags: ["chat"],
          summary: "This month's messages and tokens, and the workspace's allowances",
          params: wid,
          response: { 200: usageSchema },
        },
      },
      async (request) => quotas.usage(requireActor(request), request.params.wid),
    );
    app.get(
      "/api/v1/workspaces/:wid/usage/daily",
      {
        schema: {
          tags: ["chat"],
          summary:
            "Messages sent, and LLM calls and their tokens (background calls included), per day (UTC) over the last `days` days, oldest first",
          params: wid,
          querystring: z.object({ days: z.coerce.number().int().min(1).max(90).default(30) }),
          response: { 200: dailyUsageSchema },
        },
      },
      async (request) => ({
        items: await quotas.daily(requireActor(request), request.params.wid, request.query.days),
      }),
    );
    app.get(
      "/api/v1/workspaces/:wid/usage/calls",
      {
        schema: {
          tags: ["chat"],
          summary: "The workspace's LLM calls through Reef, newest first: model, tokens, latency and outcome",
          params: wid,
          querystring: pageQuerySchema,
          response: { 200: pageOf(llmCallSchema) },
        },
      },
      async (request) => quotas.listCalls(requireActor(request), request.params.wid, request.query),
    );
  };
}
