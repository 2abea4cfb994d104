import type { ServerResponse } from "node:http";
import {
  chatSessionSchema,
  createSessionBodySchema,
  dailyUsageSchema,
  llmCallSchema,
  messageSchema,
  pageOf,
  pageQuerySchema,
  sendMessageBodySchema,
  usageSchema,
} from "@reef/contracts";
import type { ChatEvent, ChatService, QuotaService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });
const one = wid.extend({ chatSessionId: z.uuid() });
const KEEPALIVE_MS = 10_000;

/** Writes one server-sent event, waiting for the socket to drain when the client reads slowly. */
async function send(raw: ServerResponse, event: string, data: unknown): Promise<void> {
  if (raw.destroyed) return;
  if (!raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        raw.off("drain", done);
        raw.off("close", done);
        resolve();
      };
      raw.once("drain", done);
      raw.once("close", done);
    });
  }
}

function payloadOf(ev: ChatEvent): unknown {
  const { type: _type, ...rest } = ev;
  return rest;
}

export function chatRoutes(deps: { chat: ChatService; quotas: QuotaService }): FastifyPluginAsyncZod {
  const { chat, quotas } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/sessions",
      {
        schema: {
          tags: ["chat"],
          summary: "Your chat sessions in this workspace, newest first",
          params: wid,
          querystring: pageQuerySchema.extend({ agentId: z.uuid().optional() }),
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
          summary: "The session's history, oldest first",
          params: one,
          querystring: pageQuerySchema,
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
          description:
            "Events: `accepted` {userMessageId, assistantMessageId}, `runtime` {state} while a stopped workspace wakes (`queued` with a `position` while the server is at its cap of running workspaces), `delta` {text, replace?} (with `replace` the answer so far is this text instead), `tool` {step} when a tool call starts and again when it ends (same `step.id`), `approval` {approval} when a command waits for a person and again when it is decided or expires, `usage` {promptTokens, completionTokens}, then `done` {messageId, status} or `error` {messageId, code, message}. Closing the connection stops the answer upstream; what was said so far is kept.",
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
        );
        const abort = new AbortController();
        const raw = reply.raw;
        reply.hijack();
        raw.writeHead(200, {
          ...(reply.getHeaders() as Record<string, string>),
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache, no-transform",
          "x-accel-buffering": "no",
          connection: "keep-alive",
        });
        raw.on("close", () => {
          if (!raw.writableFinished) abort.abort();
        });
        const keepalive = setInterval(() => raw.write(": keepalive\n\n"), KEEPALIVE_MS);
        try {
          await send(raw, "accepted", {
            userMessageId: turn.userMessageId,
            assistantMessageId: turn.assistantMessageId,
          });
          for await (const ev of turn.events(abort.signal)) {
            if (abort.signal.aborted) break;
            await send(raw, ev.type, payloadOf(ev));
          }
        } catch (err) {
          request.log.error({ err }, "chat stream failed");
        } finally {
          clearInterval(keepalive);
          raw.end();
        }
      },
    );
    app.post(
      "/api/v1/workspaces/:wid/sessions/:chatSessionId/abort",
      {
        schema: {
          tags: ["chat"],
          summary: "Stop the answer being generated in this session",
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
