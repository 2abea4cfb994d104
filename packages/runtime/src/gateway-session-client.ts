import { WebSocket as UndiciWebSocket } from "undici";
import { gatewayTarget } from "./gateway-endpoint.ts";

/** What Reef needs to reach a running gateway's control protocol. */
export interface GatewaySessionTarget {
  /** The gateway's endpoint (http, or `unix:<socket path>`); its WebSocket listens on the same port or socket. */
  endpoint: URL;
  /** The gateway token: sent only to the gateway. */
  token: string;
}

interface Frame {
  type?: string;
  id?: string;
  event?: string;
  ok?: boolean;
  error?: { message?: unknown; code?: unknown };
}

/** The gateway's WebSocket protocol version Reef speaks. */
const PROTOCOL = 4;

type Request = (method: string, params: unknown) => Promise<Frame & { payload?: unknown }>;

const errorOf = (f: Frame) =>
  typeof f.error?.message === "string" ? f.error.message : `gateway error ${String(f.error?.code ?? "")}`.trim();

/**
 * Opens the gateway's WebSocket control protocol as OpenClaw's trusted local
 * backend client (on loopback with the shared token it needs no device
 * pairing), runs `fn` with a request function, and closes it.
 */
async function withGatewayControl<T>(
  target: GatewaySessionTarget,
  timeoutMs: number,
  fn: (request: Request) => Promise<T>,
): Promise<T> {
  const { url, dispatcher } = gatewayTarget(target.endpoint, "/");
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // A socket endpoint needs undici's WebSocket (it takes a dispatcher); an HTTP one keeps the global.
  const ws: WebSocket = dispatcher
    ? (new UndiciWebSocket(url, { dispatcher }) as unknown as WebSocket)
    : new WebSocket(url);
  const pending = new Map<string, (f: Frame) => void>();
  let seq = 0;
  const request: Request = (method, params) =>
    new Promise((resolve) => {
      const id = `reef-${++seq}`;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  const run = async () => {
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error("the gateway's WebSocket did not open")), { once: true });
    });
    ws.addEventListener("message", (ev) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(ev.data)) as Frame;
      } catch {
        return;
      }
      if (frame.type === "res" && frame.id) {
        pending.get(frame.id)?.(frame);
        pending.delete(frame.id);
      }
    });
    const hello = await request("connect", {
      minProtocol: PROTOCOL,
      maxProtocol: PROTOCOL,
      client: { id: "gateway-client", version: "reef", platform: process.platform, mode: "backend" },
      role: "operator",
      scopes: ["operator.admin", "operator.write", "operator.read"],
      caps: [],
      auth: { token: target.token },
    });
    if (!hello.ok) throw new Error(`the gateway refused Reef's connection: ${errorOf(hello)}`);
    return fn(request);
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the gateway did not answer in time")), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}

/** One request on a running gateway's control protocol. @returns its payload; throws on an error answer. */
export function gatewayRequest(
  target: GatewaySessionTarget,
  method: string,
  params: unknown,
  opts: { timeoutMs?: number } = {},
): Promise<unknown> {
  return withGatewayControl(target, opts.timeoutMs ?? 15_000, async (request) => {
    const res = await request(method, params);
    if (!res.ok) throw new Error(`${method} failed: ${errorOf(res)}`);
    return res.payload;
  });
}

/**
 * Deletes sessions, transcripts included, from a running gateway
 * (`sessions.delete`). A key the gateway does not know counts as deleted.
 *
 * @returns the keys the gateway did not delete, with why.
 */
export function deleteGatewaySessions(
  target: GatewaySessionTarget,
  keys: string[],
  opts: { timeoutMs?: number } = {},
): Promise<{ failed: { key: string; error: string }[] }> {
  if (keys.length === 0) return Promise.resolve({ failed: [] });
  return withGatewayControl(target, opts.timeoutMs ?? 15_000, async (request) => {
    const failed: { key: string; error: string }[] = [];
    for (const key of keys) {
      const res = await request("sessions.delete", { key, deleteTranscript: true });
      // A session that never ran a turn was never created in the gateway.
      if (!res.ok && !/not found|unknown session|no session|does not exist/i.test(errorOf(res))) {
        failed.push({ key, error: errorOf(res) });
      }
    }
    return { failed };
  });
}
