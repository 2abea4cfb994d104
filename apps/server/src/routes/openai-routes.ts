import { AppError, chatCompletionBodySchema, ERROR_CODES, type OpenAiErrorBody } from "@reef/contracts";
import type { ChatEvent, Completion, OpenAiService } from "@reef/core";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { type FastifyPluginAsyncZod, hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";
import { describeValidation, type ValidationIssue } from "../plugins/validation-text.ts";
import { EVENT_STREAM_HEADERS, writeDrained as write } from "./stream-write.ts";

/** The OpenAI-compatible API's base path: clients are given `<public URL>/api/v1/workspaces/<id>/openai/v1`. */
export const OPENAI_BASE = "/api/v1/workspaces/:wid/openai/v1";

const wid = z.object({ wid: z.uuid() });
/** A comment line every so often keeps proxies from closing a quiet stream (a runtime waking, a long tool call). */
const KEEPALIVE_MS = 10_000;

const KEYS_ONLY =
  "The OpenAI-compatible API takes Reef API keys only: send `Authorization: Bearer reef_…` (create a key under API keys).";
const SERVER_FAULT = "Something went wrong on Reef's side. It has been logged; quote the request id if you report it.";

/** An error as OpenAI clients read it, with its HTTP status. */
interface OpenAiFault {
  status: number;
  error: OpenAiErrorBody["error"];
}

const fault = (status: number, type: string, code: string | null, message: string, param: string | null = null) => ({
  status,
  error: { message, type, param, code },
});

/**
 * Reef's error codes (the API's, and those a chat turn ends with: CHAT_ERROR_CODES)
 * in OpenAI's terms, so clients show them as they show OpenAI's own: the status,
 * the `type` and `code` OpenAI uses for the same situation, Reef's message.
 */
export function openAiFault(code: string, message: string, param: string | null = null): OpenAiFault {
  switch (code) {
    case "UNAUTHORIZED":
      return fault(401, "invalid_request_error", "invalid_api_key", message);
    case "CSRF_FAILED":
      return fault(401, "invalid_request_error", "invalid_api_key", KEYS_ONLY);
    case "FORBIDDEN":
      return fault(403, "invalid_request_error", "permission_denied", message);
    case "NOT_FOUND":
      return fault(404, "invalid_request_error", param === "model" ? "model_not_found" : "not_found", message, param);
    case "CONFLICT":
      return fault(409, "invalid_request_error", "conversation_busy", message);
    case "RATE_LIMITED":
      return fault(429, "requests", "rate_limit_exceeded", message);
    case "QUOTA_EXCEEDED":
      return fault(429, "insufficient_quota", "insufficient_quota", message);
    case "RUNTIME_LIMIT_REACHED":
      return fault(429, "requests", "runtime_limit_reached", message);
    case "CAPACITY_FULL":
      return fault(503, "server_error", "capacity_full", message);
    case "UNAVAILABLE":
    case "INTERRUPTED":
      return fault(503, "server_error", code.toLowerCase(), message);
    case "PROVIDER_UNREACHABLE":
    case "PROVIDER_TIMEOUT":
    case "PROVIDER_AUTH":
    case "PROVIDER_ERROR":
    case "BAD_GATEWAY":
      return fault(502, "server_error", code.toLowerCase(), message);
    default: {
      const status = ERROR_CODES[code as keyof typeof ERROR_CODES] ?? 500;
      if (status >= 500) return fault(status, "server_error", "server_error", SERVER_FAULT);
      return fault(status, "invalid_request_error", status === 400 ? null : code.toLowerCase(), message, param);
    }
  }
}

/** The field an AppError names (`details.field`), as OpenAI's `param`. */
function paramOf(details: unknown): string | null {
  const field = (details as { field?: unknown } | undefined)?.field;
  return typeof field === "string" ? field : null;
}

/** "/messages/0/content" → "messages[0].content", as OpenAI names a parameter. */
function paramOfPath(path: string | undefined): string | null {
  const parts = (path ?? "").split("/").filter(Boolean);
  if (!parts.length) return null;
  return parts.reduce((out, p) => (/^\d+$/.test(p) ? `${out}[${p}]` : out ? `${out}.${p}` : p), "");
}

function sendFault(reply: FastifyReply, f: OpenAiFault): FastifyReply {
  return reply.status(f.status).type("application/json; charset=utf-8").send({ error: f.error });
}

/** Every error of these routes, in OpenAI's shape (never Reef's internals). */
function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof AppError) {
    if ("retryAfter" in error && typeof error.retryAfter === "number") {
      reply.header("retry-after", String(Math.ceil(error.retryAfter)));
    }
    // OpenAI's SDKs retry 429s; a spent monthly allowance does not come back in seconds.
    if (error.code === "QUOTA_EXCEEDED") reply.header("x-should-retry", "false");
    if (error.status >= 500) request.log.error({ err: error }, error.message);
    return sendFault(reply, openAiFault(error.code, error.message, paramOf(error.details)));
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation as ValidationIssue[];
    const { message } = describeValidation(error.validationContext ?? "request", issues);
    return sendFault(reply, openAiFault("VALIDATION_FAILED", message, paramOfPath(issues[0]?.instancePath)));
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const message =
      error.code === "FST_ERR_CTP_INVALID_JSON_BODY"
        ? "We could not parse the JSON body of your request."
        : status === 413
          ? "The request body is too large."
          : "The request is malformed.";
    return sendFault(reply, fault(status, "invalid_request_error", null, message));
  }
  request.log.error({ err: error }, "unhandled error");
  return sendFault(reply, openAiFault("INTERNAL", SERVER_FAULT));
}

const data = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;

function usageOf(ev: Extract<ChatEvent, { type: "usage" }> | undefined) {
  const prompt = ev?.promptTokens ?? 0;
  const completion = ev?.completionTokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** Why the stream is quiet, as an SSE comment (clients ignore it; a person reading the raw stream sees activity). */
function commentFor(ev: ChatEvent): string | null {
  if (ev.type === "runtime") {
    if (ev.state === "starting") return ": waking your workspace\n\n";
    if (ev.state === "queued") return `: waiting for room to start your workspace (position ${ev.position})\n\n`;
    return ": workspace running\n\n";
  }
  if (ev.type === "tool") return `: tool ${ev.step.name} ${ev.step.status}\n\n`;
  if (ev.type === "approval") return `: approval ${ev.approval.status}\n\n`;
  return null;
}

/**
 * Streams a completion as OpenAI's `chat.completion.chunk` events. Headers wait
 * for the first thing to say (or the first keepalive), so an answer refused at
 * once (its runtime could not start, its provider refused the key) still gets
 * its HTTP status. The client going away only stops the writing: the turn goes
 * on and is read to its end, so the answer and the session's fingerprint are
 * stored as after any other answer.
 */
async function streamCompletion(
  request: FastifyRequest,
  reply: FastifyReply,
  c: Completion,
  includeUsage: boolean,
): Promise<void> {
  const raw = reply.raw;
  reply.hijack();
  let open = false;
  const begin = () => {
    if (open || raw.destroyed) return;
    open = true;
    raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      ...EVENT_STREAM_HEADERS,
      "x-reef-session-id": c.sessionId,
    });
  };
  const keepalive = setInterval(() => {
    begin();
    if (!raw.destroyed) raw.write(": keepalive\n\n");
  }, KEEPALIVE_MS);
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    data({
      id: c.id,
      object: "chat.completion.chunk",
      created: c.created,
      model: c.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
  let sent = "";
  let started = false;
  let usage: Extract<ChatEvent, { type: "usage" }> | undefined;
  const say = async (text: string) => {
    begin();
    if (!started) {
      started = true;
      await write(raw, chunk({ role: "assistant", content: "" }));
    }
    if (text) await write(raw, chunk({ content: text }));
  };
  try {
    for await (const ev of c.events) {
      if (ev.type === "delta") {
        // OpenAI's stream only appends: a rewrite that keeps what was sent sends the rest; another cannot be said.
        const next = ev.replace ? ev.text : sent + ev.text;
        if (next.startsWith(sent)) {
          const more = next.slice(sent.length);
          sent = next;
          if (more) await say(more);
        }
      } else if (ev.type === "usage") {
        usage = ev;
      } else if (ev.type === "done") {
        await say("");
        await write(raw, chunk({}, "stop"));
        if (includeUsage) {
          await write(
            raw,
            data({
              id: c.id,
              object: "chat.completion.chunk",
              created: c.created,
              model: c.model,
              system_fingerprint: null,
              choices: [],
              usage: usageOf(usage),
            }),
          );
        }
        await write(raw, "data: [DONE]\n\n");
      } else if (ev.type === "error") {
        const f = openAiFault(ev.code, ev.message);
        if (!open && !raw.destroyed) {
          open = true;
          raw.writeHead(f.status, {
            "content-type": "application/json; charset=utf-8",
            "x-reef-session-id": c.sessionId,
          });
          raw.end(JSON.stringify({ error: f.error }));
        } else {
          await write(raw, data({ error: f.error }));
        }
      } else {
        const comment = commentFor(ev);
        if (comment) {
          begin();
          await write(raw, comment);
        }
      }
    }
  } catch (err) {
    request.log.error({ err }, "OpenAI-compatible stream failed");
    if (!open && !raw.destroyed) {
      open = true;
      const f = openAiFault("INTERNAL", SERVER_FAULT);
      raw.writeHead(f.status, { "content-type": "application/json; charset=utf-8" });
      raw.end(JSON.stringify({ error: f.error }));
    } else if (!raw.destroyed) {
      await write(raw, data({ error: openAiFault("INTERNAL", SERVER_FAULT).error }));
    }
  } finally {
    clearInterval(keepalive);
    begin();
    if (!raw.writableEnded) raw.end();
  }
}

/** Reads a completion to its end and answers with one `chat.completion`, or the error it ended with. */
async function completeAtOnce(reply: FastifyReply, c: Completion): Promise<FastifyReply> {
  let text = "";
  let usage: Extract<ChatEvent, { type: "usage" }> | undefined;
  let failed: OpenAiFault | undefined;
  for await (const ev of c.events) {
    if (ev.type === "delta") text = ev.replace ? ev.text : text + ev.text;
    else if (ev.type === "usage") usage = ev;
    else if (ev.type === "error") failed = openAiFault(ev.code, ev.message);
  }
  reply.header("x-reef-session-id", c.sessionId);
  if (failed) return sendFault(reply, failed);
  return reply.send({
    id: c.id,
    object: "chat.completion",
    created: c.created,
    model: c.model,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: text, refusal: null },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: usageOf(usage),
  });
}

/**
 * The OpenAI-compatible API (docs/openai-api.md): `GET …/models` and `POST
 * …/chat/completions` under a workspace's base URL, for Reef API keys only.
 * Registered as its own encapsulated plugin so every error here, including
 * the auth plugin's refusals, comes out in OpenAI's shape.
 */
export function openaiRoutes(deps: { openai: OpenAiService }): FastifyPluginAsyncZod {
  const { openai } = deps;
  return async (app) => {
    app.setErrorHandler(handleError);
    // A person's session cookie is refused (and CSRF never applies: Bearer requests are not cookie-authenticated).
    app.addHook("onRequest", async (request) => {
      if (request.authVia !== "bearer") throw new AppError("UNAUTHORIZED", KEYS_ONLY);
    });
    app.get(
      `${OPENAI_BASE}/models`,
      {
        schema: {
          tags: ["openai"],
          summary: "OpenAI-compatible: the agents this API key may chat with, as models",
          description: `Every agent the key may chat with, newest first (at most 1000: OpenAI's list is not paginated). \`id\` is the agent's id; \`name\` its display name. API keys only; errors in OpenAI's shape \`{ error: { message, type, param, code } }\`.`,
          params: wid,
        },
      },
      async (request) => openai.listModels(requireActor(request), request.params.wid),
    );
    app.post(
      `${OPENAI_BASE}/chat/completions`,
      {
        schema: {
          tags: ["openai"],
          summary: "OpenAI-compatible: chat with an agent (streamed with `stream: true`)",
          description:
            "`model` is an agent's id or exact name. The messages continue the key's Reef session that holds the earlier ones (else a new session, whose first prompt retells them). With `stream: true`, `chat.completion.chunk` server-sent events end with `data: [DONE]`; `stream_options.include_usage` adds a usage chunk. `temperature`, `max_tokens`, tools and the like are ignored (the agent's own settings apply); image parts are refused. The header `x-reef-session-id` names the Reef session.",
          params: wid,
          body: chatCompletionBodySchema,
        },
      },
      async (request, reply) => {
        const completion = await openai.startCompletion(requireActor(request), request.params.wid, request.body);
        if (request.body.stream) {
          await streamCompletion(request, reply, completion, request.body.stream_options?.include_usage === true);
          return;
        }
        return completeAtOnce(reply, completion);
      },
    );
  };
}
