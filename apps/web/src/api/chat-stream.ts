import { createParser } from "eventsource-parser";
import { requestHeaders, toApiError } from "./client.ts";
import type { Approval, TraceStep } from "./types.ts";

/**
 * The stable codes of a stream's `error` event (CHAT_ERROR_CODES in
 * @reef/contracts): PROVIDER_UNREACHABLE, PROVIDER_TIMEOUT, PROVIDER_AUTH,
 * PROVIDER_ERROR, UNAVAILABLE, QUOTA_EXCEEDED, RATE_LIMITED, INTERRUPTED, INTERNAL.
 */
export type ChatErrorCode =
  | "PROVIDER_UNREACHABLE"
  | "PROVIDER_TIMEOUT"
  | "PROVIDER_AUTH"
  | "PROVIDER_ERROR"
  | "UNAVAILABLE"
  | "QUOTA_EXCEEDED"
  | "RATE_LIMITED"
  | "INTERRUPTED"
  | "INTERNAL";

export type StreamEvent =
  | { event: "accepted"; data: { userMessageId: number; assistantMessageId: number } }
  /** The workspace wakes; `expectedSeconds`: how long a start usually takes (null: not measured yet). */
  | { event: "runtime"; data: { state: "starting"; expectedSeconds?: number | null } }
  | { event: "runtime"; data: { state: "running" } }
  /** The server is at its cap of running workspaces: this one waits in line (1: next). */
  | { event: "runtime"; data: { state: "queued"; position: number } }
  /** More of the answer; with `replace` the answer so far is `text` instead (always so first on a re-attach). */
  | { event: "delta"; data: { text: string; replace?: true } }
  | { event: "usage"; data: { promptTokens: number; completionTokens: number } }
  /** A tool step started, or ended (sent again with the same `id`). */
  | { event: "tool"; data: { step: TraceStep } }
  /** A command waits for a person's approval, or was decided or timed out (sent again with the same `id`). */
  | { event: "approval"; data: { approval: Approval } }
  | { event: "done"; data: { messageId: number; status: "complete" | "aborted" } }
  | {
      event: "error";
      data: { messageId: number; code: ChatErrorCode | (string & {}); message: string; providerId?: string };
    };

/** Feeds a server-sent event stream to `onEvent` until it ends. */
async function readStream(res: Response, onEvent: (ev: StreamEvent) => void): Promise<void> {
  if (!res.body) return;
  const parser = createParser({
    onEvent(e) {
      try {
        onEvent({ event: e.event, data: JSON.parse(e.data) } as StreamEvent);
      } catch {}
    },
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    parser.feed(decoder.decode(value, { stream: true }));
  }
}

/**
 * Sends a chat message and calls `onEvent` for each server-sent event as it
 * arrives. Rejects with an ApiError when the message is refused before the
 * answer starts (quota, permissions, a session that is gone). Aborting `signal`
 * only stops listening: the answer goes on (Stop is `POST …/abort`).
 * `replaceFrom`: a user message id of this session; it and everything after it
 * are deleted first (regenerate, edit and resend).
 */
export async function sendMessage(
  path: string,
  text: string,
  onEvent: (ev: StreamEvent) => void,
  signal: AbortSignal,
  opts: { replaceFrom?: number } = {},
): Promise<void> {
  const res = await fetch(path, {
    method: "POST",
    headers: { ...requestHeaders("POST"), accept: "text/event-stream" },
    credentials: "same-origin",
    body: JSON.stringify(opts.replaceFrom === undefined ? { text } : { text, replaceFrom: opts.replaceFrom }),
    signal,
  });
  if (!res.ok || !res.body) throw await toApiError(res);
  await readStream(res, onEvent);
}

/**
 * Follows the answer streaming in a session (`GET …/sessions/:sid/stream`):
 * `accepted`, the state so far (the whole text as a replacing delta, tool
 * steps, approvals), then live events until `done` or `error`.
 * @returns false when nothing streams there (204), true once the stream ended.
 */
export async function attachStream(
  path: string,
  onEvent: (ev: StreamEvent) => void,
  signal: AbortSignal,
): Promise<boolean> {
  const res = await fetch(path, {
    method: "GET",
    headers: { ...requestHeaders("GET"), accept: "text/event-stream" },
    credentials: "same-origin",
    signal,
  });
  if (res.status === 204) return false;
  if (!res.ok || !res.body) throw await toApiError(res);
  await readStream(res, onEvent);
  return true;
}
