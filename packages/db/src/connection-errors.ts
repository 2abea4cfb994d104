// Socket failures reaching the server: refused (it is down), reset or cut (it went away), or no route to it.
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

// SQLSTATEs of a server that is shutting down, restarting or full, besides class 08 (connection exception).
const SERVER_CODES = new Set(["57P01", "57P02", "57P03", "53300"]);

// What `pg` throws itself when a connection died or never came (it sets no code).
const PG_MESSAGES = [
  "Connection terminated",
  "is not queryable",
  "timeout exceeded when trying to connect",
  "Client was closed",
];

/**
 * True when `err` (or an error it wraps, such as Drizzle's query error) says the
 * database cannot be reached right now: refused or cut connections, a server
 * shutting down or starting up, or a connection that timed out. Such a request
 * may succeed when retried, so the API answers 503 rather than a 500 bug report.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (SOCKET_CODES.has(code) || SERVER_CODES.has(code) || /^08/.test(code))) return true;
    if (PG_MESSAGES.some((m) => e instanceof Error && e.message.includes(m))) return true;
  }
  return false;
}
