import { createParser, type EventSourceMessage } from "eventsource-parser";
import { gatewayFetch } from "./gateway-endpoint.ts";

/** One event of a streamed agent turn, as Reef relays it. */
export type ChatStreamEvent =
  | { type: "delta"; text: string }
  | { type: "usage"; promptTokens: number; completionTokens: number }
  | { type: "error"; message: string };

export interface ChatTurnRequest {
  /** The gateway's endpoint: its base URL, or `unix:<socket path>` for a sandboxed gateway. */
  endpoint: URL;
  /** The gateway token (full operator access): sent only to the gateway. */
  token: string;
  agentId: string;
  /** Routes the turn to one gateway session, which holds the conversation so far. */
  sessionKey: string;
  text: string;
  /** The agent's standing instructions, sent as the system prompt of every turn. */
  instructions?: string | undefined;
  temperature?: number | null | undefined;
  /** Aborting it closes the connection; the gateway then cancels the agent run. */
  signal: AbortSignal;
}

/** The gateway could not be reached or refused the turn before any answer began. */
export class GatewayRequestError extends Error {
  readonly status: number | undefined;
  /** True when nothing answered at all (connection refused or reset): the runtime may be gone. */
  readonly unreachable: boolean;
  constructor(message: string, opts: { status?: number; unreachable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.status = opts.status;
    this.unreachable = opts.unreachable ?? false;
  }
}

interface CompletionChunk {
  choices?: { delta?: { content?: unknown } }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  error?: { message?: unknown };
}

function readError(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === "string") return parsed.error.message;
  } catch {}
  return body.slice(0, 200);
}

/**
 * Runs one agent turn on a workspace gateway through its OpenAI-compatible
 * endpoint (`POST /v1/chat/completions`, `model: "openclaw/<agentId>"`, streamed,
 * usage included) and yields the answer as it arrives. Backpressure is the
 * consumer's: the next chunk is read only when it asks for the next event.
 */
export async function* streamChatTurn(req: ChatTurnRequest): AsyncGenerator<ChatStreamEvent> {
  const messages: { role: string; content: string }[] = [];
  if (req.instructions?.trim()) messages.push({ role: "system", content: req.instructions });
  messages.push({ role: "user", content: req.text });
  let res: Response;
  try {
    res = await gatewayFetch(req.endpoint, "/v1/chat/completions", {
      method: "POST",
      headers: {
        authorization: `Bearer ${req.token}`,
        "content-type": "application/json",
        accept: "text/event-stream",
        "x-openclaw-session-key": req.sessionKey,
      },
      body: JSON.stringify({
        model: `openclaw/${req.agentId}`,
        stream: true,
        stream_options: { include_usage: true },
        messages,
        ...(typeof req.temperature === "number" ? { temperature: req.temperature } : {}),
      }),
      signal: req.signal,
    });
  } catch (err) {
    if (req.signal.aborted) throw err;
    throw new GatewayRequestError("the workspace runtime did not answer", { unreachable: true, cause: err });
  }
  if (!res.ok || !res.body) {
    const body = await res.text().catch(() => "");
    throw new GatewayRequestError(
      `the workspace runtime refused the message (HTTP ${res.status}: ${readError(body)})`,
      {
        status: res.status,
      },
    );
  }

  const pending: ChatStreamEvent[] = [];
  let done = false;
  const parser = createParser({
    onEvent(event: EventSourceMessage) {
      if (event.data === "[DONE]") {
        done = true;
        return;
      }
      let chunk: CompletionChunk;
      try {
        chunk = JSON.parse(event.data) as CompletionChunk;
      } catch {
        return;
      }
      if (chunk.error) {
        pending.push({
          type: "error",
          message: typeof chunk.error.message === "string" ? chunk.error.message : "the agent run failed",
        });
        return;
      }
      const content = chunk.choices?.[0]?.delta?.content;
      if (typeof content === "string" && content.length > 0) pending.push({ type: "delta", text: content });
      const u = chunk.usage;
      if (u && typeof u.prompt_tokens === "number" && typeof u.completion_tokens === "number") {
        pending.push({ type: "usage", promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens });
      }
    },
  });
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (req.signal.aborted) throw err;
        throw new GatewayRequestError("the workspace runtime stopped while answering", {
          unreachable: true,
          cause: err,
        });
      }
      if (chunk.done) break;
      parser.feed(decoder.decode(chunk.value, { stream: true }));
      while (pending.length) yield pending.shift() as ChatStreamEvent;
      if (done) return;
    }
  } finally {
    // A consumer that stops early (abort, client gone) closes the connection, which cancels the run.
    await reader.cancel().catch(() => {});
  }
  // The stream ended without [DONE]: the gateway went away mid-answer.
  throw new GatewayRequestError("the workspace runtime stopped while answering", { unreachable: true });
}
