import { createParser } from "eventsource-parser";
import { requestHeaders, toApiError } from "./client.ts";
import type { Approval, TraceStep } from "./types.ts";

export type StreamEvent =
  | { event: "accepted"; data: { userMessageId: number; assistantMessageId: number } }
  | { event: "runtime"; data: { state: "starting" | "running" } }
  /** The server is at its cap of running workspaces: this one waits in line (1: next). */
  | { event: "runtime"; data: { state: "queued"; position: number } }
  | { event: "delta"; data: { text: string } }
  | { event: "usage"; data: { promptTokens: number; completionTokens: number } }
  /** A tool step started, or ended (sent again with the same `id`). */
  | { event: "tool"; data: { step: TraceStep } }
  /** A command waits for a person's approval, or was decided or timed out (sent again with the same `id`). */
  | { event: "approval"; data: { approval: Approval } }
  | { event: "done"; data: { messageId: number; status: "complete" | "aborted" } }
  | { event: "error"; data: { messageId: number; code: string; message: string } };

/**
 * Sends a chat message and calls `onEvent` for each server-sent event as it
 * arrives. Rejects with an ApiError when the message is refused before the
 * answer starts (quota, permissions, a session that is gone).
 */
export async function sendMessage(
  path: string,
  text: string,
  onEvent: (ev: StreamEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await fetch(path, {
    method: "POST",
    headers: { ...requestHeaders("POST"), accept: "text/event-stream" },
    credentials: "same-origin",
    body: JSON.stringify({ text }),
    signal,
  });
  if (!res.ok || !res.body) throw await toApiError(res);
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
