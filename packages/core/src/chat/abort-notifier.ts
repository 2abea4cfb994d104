import type { Tx } from "@reef/db";
import { sql } from "drizzle-orm";
import pg from "pg";

/** The Postgres channel a Stop travels on; the payload is the session's id. */
export const CHAT_ABORT_CHANNEL = "reef_chat_abort";

/** How long a lost LISTEN connection waits before it reconnects (the heartbeat covers the gap). */
const RECONNECT_MS = 5_000;

/**
 * Stop pressed on one replica reaches the replica relaying the answer at once:
 * the Stop's transaction NOTIFYs the session's id (delivered only when the mark
 * commits), and every replica LISTENs on a dedicated connection and stops the
 * turn if it runs there. Where LISTEN is unavailable (a transaction pooler), or
 * while the connection is lost, nothing breaks: the relaying replica still reads
 * the mark on its next heartbeat or save, only later.
 */
export interface AbortNotifier {
  /** Queues the notification in `tx`, the transaction that marked the answer: sent when it commits, never if it rolls back. */
  notify(tx: Tx, sessionId: string): Promise<void>;
  /** Listens from now on, calling `onAbort` with each stopped session's id (on every replica, the sender's too). */
  listen(onAbort: (sessionId: string) => void): void;
  /** Stops listening and closes the connection. */
  close(): Promise<void>;
}

export function createAbortNotifier(deps: {
  /** The app role's URL (see Database.appUrl): LISTEN needs a connection of its own, outside the pool. */
  appUrl: string;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  reconnectMs?: number;
}): AbortNotifier {
  const reconnectMs = deps.reconnectMs ?? RECONNECT_MS;
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let warned = false;

  async function connect(onAbort: (sessionId: string) => void): Promise<void> {
    if (closed) return;
    const c = new pg.Client({ connectionString: deps.appUrl });
    const lost = (err?: Error) => {
      if (client !== c) return;
      client = undefined;
      c.end().catch(() => {});
      if (closed) return;
      if (!warned) {
        warned = true;
        deps.log?.warn({ err }, "chat Stop notifications paused; Stop reaches other replicas at their next heartbeat");
      }
      retry = setTimeout(() => void connect(onAbort), reconnectMs);
      retry.unref();
    };
    client = c;
    c.on("error", lost);
    c.on("end", () => lost());
    c.on("notification", (n) => {
      if (n.channel === CHAT_ABORT_CHANNEL && n.payload) onAbort(n.payload);
    });
    try {
      await c.connect();
      await c.query(`listen ${CHAT_ABORT_CHANNEL}`);
      if (warned) deps.log?.info({}, "chat Stop notifications resumed");
      warned = false;
    } catch (err) {
      lost(err as Error);
    }
  }

  return {
    async notify(tx, sessionId) {
      await tx.execute(sql`select pg_notify(${CHAT_ABORT_CHANNEL}, ${sessionId})`);
    },
    listen(onAbort) {
      if (client || closed) return;
      void connect(onAbort);
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
