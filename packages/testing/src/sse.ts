import { createParser } from "eventsource-parser";

/** One server-sent event as a test saw it, with when it arrived. */
export interface ReceivedEvent {
  event: string;
  data: Record<string, unknown>;
  atMs: number;
}

/**
 * Reads a `text/event-stream` response to its end (or until `stopWhen` says so,
 * then cancels it as a client closing the page would), recording arrival times.
 * `res` is a fetch response, or the body of one read another way (a node:http
 * response is an async iterable of chunks).
 */
export async function readEvents(
  res: Response | AsyncIterable<Uint8Array>,
  opts: { stopWhen?: (ev: ReceivedEvent, all: ReceivedEvent[]) => boolean } = {},
): Promise<ReceivedEvent[]> {
  const started = performance.now();
  const events: ReceivedEvent[] = [];
  let stop = false;
  const parser = createParser({
    onEvent(e) {
      const ev = {
        event: e.event ?? "message",
        data: JSON.parse(e.data) as Record<string, unknown>,
        atMs: performance.now() - started,
      };
      events.push(ev);
      if (opts.stopWhen?.(ev, events)) stop = true;
    },
  });
  const decoder = new TextDecoder();
  // A fetch body and a node:http response are both async iterables of chunks; leaving the loop early cancels
  // the stream, as a client closing the page would.
  const chunks = res instanceof Response ? res.body : res;
  if (!chunks) return events;
  for await (const chunk of chunks) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    if (stop) break;
  }
  return events;
}

/** The answer text of a chat stream: its deltas joined. */
export function textOf(events: ReceivedEvent[]): string {
  return events
    .filter((e) => e.event === "delta")
    .map((e) => String(e.data.text))
    .join("");
}
