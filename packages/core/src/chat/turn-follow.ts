import type { MessageStatus } from "@reef/db";
import type { ChatEvent } from "./turn-registry.ts";

/** The stored answer as a follower sees it on each poll. */
export interface StoredAnswer {
  content: string;
  status: MessageStatus;
  error: string | null;
  /** The error's stable code as the relaying replica stored it. */
  errorCode: string | null;
}

/**
 * Follows an answer another replica is streaming, through its stored row: on
 * each poll, the whole text as a replacing delta when it changed, until the row
 * stops streaming (then `done` or `error` as the POST stream would have ended).
 * `read` also settles a row whose heartbeat stopped (that replica died).
 */
export async function* followStoredAnswer(
  messageId: number,
  read: () => Promise<StoredAnswer | null>,
  signal: AbortSignal,
  pollMs = 1000,
): AsyncGenerator<ChatEvent> {
  let sent = "";
  for (;;) {
    const row = await read();
    if (!row) {
      // Deleted (the session, or an edit of the conversation).
      yield { type: "done", messageId, status: "aborted" };
      return;
    }
    if (row.content !== sent) {
      sent = row.content;
      yield { type: "delta", text: row.content, replace: true };
    }
    if (row.status === "complete" || row.status === "aborted") {
      yield { type: "done", messageId, status: row.status };
      return;
    }
    if (row.status !== "streaming") {
      const code = row.errorCode ?? (row.status === "interrupted" ? "INTERRUPTED" : "INTERNAL");
      yield { type: "error", messageId, code, message: row.error ?? "The answer ended with an error." };
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, pollMs);
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
    if (signal.aborted) return;
  }
}
