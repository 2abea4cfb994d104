import type { ServerResponse } from "node:http";

/** The headers of a streamed answer: server-sent events, never cached, compressed or buffered by a proxy. */
export const EVENT_STREAM_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
  connection: "keep-alive",
} as const;

/**
 * Writes `text` to a streamed answer (chat's event stream, the OpenAI-compatible API's), waiting for the socket to
 * drain when the client reads slowly, so a slow reader holds the writer back instead of growing a buffer. Nothing is
 * written once the client has gone.
 */
export async function writeDrained(raw: ServerResponse, text: string): Promise<void> {
  if (raw.destroyed) return;
  if (!raw.write(text)) {
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
