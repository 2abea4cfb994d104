import { WebSocket as UndiciWebSocket } from "undici";
import { GatewayRequestError } from "./gateway-chat-client.ts";
import { gatewayTarget } from "./gateway-endpoint.ts";

/** One frame of the gateway's WebSocket protocol (protocol 4), as far as Reef reads it. */
export interface GatewayFrame {
  type?: string;
  id?: string;
  ok?: boolean;
  event?: string;
  payload?: unknown;
  error?: { message?: unknown; code?: unknown; details?: unknown };
}

/** Where a channel delivers what it hears: events, and the answers to requests. */
export interface ChannelListener {
  /** Every event frame (`chat`, `agent`, `exec.approval.*`…); the listener picks its own. */
  event(frame: GatewayFrame): void;
  /** The connection is gone: nothing more will arrive. */
  closed(err: GatewayRequestError): void;
}

/** The gateway's WebSocket protocol version Reef speaks. */
const PROTOCOL = 4;
/** How long opening a connection (WebSocket upgrade and `connect`) may take. */
const OPEN_TIMEOUT_MS = 15_000;
/** How long an idle shared connection stays open for the next turn. */
const IDLE_CLOSE_MS = 30_000;

export const frameError = (f: GatewayFrame) =>
  typeof f.error?.message === "string" ? f.error.message : `gateway error ${String(f.error?.code ?? "")}`.trim();

/**
 * One operator connection to a gateway's WebSocket protocol, shared by every
 * turn Reef runs on that gateway at once. It connects as OpenClaw's trusted
 * backend client (the gateway token; no device pairing on loopback or the
 * runtime's socket) and advertises `tool-events` (tool calls with their
 * arguments and results, sent only to the connection that started the run) and
 * `exec-approvals` / `approvals` (approval requests, sent only to connections
 * that say they can show them).
 *
 * A channel reads every frame as it arrives: the gateway drops events for a
 * subscriber that falls behind rather than waiting, so pacing belongs to each
 * turn's own buffer, not to the socket.
 */
export class GatewayChannel {
  private readonly ws: WebSocket;
  private readonly listeners = new Set<ChannelListener>();
  /** Request id → who waits for its answer; a request may be answered twice (`agent`: accepted, then final). */
  private readonly answers = new Map<string, (f: GatewayFrame) => void>();
  private seq = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private gone: GatewayRequestError | undefined;
  readonly ready: Promise<void>;
  onGone: (() => void) | undefined;

  constructor(endpoint: URL, token: string) {
    const { url, dispatcher } = gatewayTarget(endpoint, "/");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // A socket endpoint needs undici's WebSocket (it takes a dispatcher); an HTTP one keeps the global.
    this.ws = dispatcher ? (new UndiciWebSocket(url, { dispatcher }) as unknown as WebSocket) : new WebSocket(url);
    this.ws.addEventListener("message", (ev) => this.onMessage(ev));
    this.ws.addEventListener("close", () =>
      this.fail(new GatewayRequestError("the workspace runtime stopped while answering", { unreachable: true })),
    );
    this.ready = this.open(token);
    // An unobserved failure still closes the channel; callers see it through `ready` or `closed`.
    this.ready.catch(() => {});
  }

  private async open(token: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new GatewayRequestError("the workspace runtime did not answer in time", { unreachable: true })),
        OPEN_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([
        timeout,
        new Promise<void>((resolve, reject) => {
          this.ws.addEventListener("open", () => resolve(), { once: true });
          this.ws.addEventListener(
            "error",
            () => reject(new GatewayRequestError("the workspace runtime did not answer", { unreachable: true })),
            { once: true },
          );
        }),
      ]);
      const hello = await Promise.race([
        timeout,
        this.request("connect", {
          minProtocol: PROTOCOL,
          maxProtocol: PROTOCOL,
          client: { id: "gateway-client", version: "reef", platform: process.platform, mode: "backend" },
          role: "operator",
          scopes: ["operator.admin", "operator.write", "operator.read", "operator.approvals"],
          caps: ["tool-events", "exec-approvals", "approvals"],
          auth: { token },
        }),
      ]);
      if (!hello.ok) throw new GatewayRequestError(`the workspace runtime refused Reef: ${frameError(hello)}`);
    } catch (err) {
      this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private onMessage(ev: MessageEvent) {
    let frame: GatewayFrame;
    try {
      frame = JSON.parse(String(ev.data)) as GatewayFrame;
    } catch {
      return;
    }
    if (frame.type === "res" && frame.id) this.answers.get(frame.id)?.(frame);
    else if (frame.type === "event") for (const l of this.listeners) l.event(frame);
  }

  private fail(err: GatewayRequestError) {
    if (this.gone) return;
    this.gone = err;
    clearTimeout(this.idleTimer);
    this.onGone?.();
    for (const resolve of this.answers.values()) resolve({ type: "res", ok: false, error: { message: err.message } });
    this.answers.clear();
    for (const l of [...this.listeners]) l.closed(err);
    this.listeners.clear();
  }

  /** Whether the connection is closed (or closing): a new turn needs a new channel. */
  get isGone(): boolean {
    return this.gone !== undefined;
  }

  /**
   * Sends a request. `onAnswer` receives every answer to it (most methods
   * answer once; `agent` answers when accepted and again when the run ends).
   * @returns the request id.
   */
  send(method: string, params: unknown, onAnswer: (f: GatewayFrame) => void): string {
    const id = `reef-${++this.seq}`;
    if (this.gone) {
      // No id: what `request` takes for "the connection is gone".
      queueMicrotask(() => onAnswer({ type: "res", ok: false, error: { message: this.gone?.message } }));
      return id;
    }
    this.answers.set(id, onAnswer);
    this.ws.send(JSON.stringify({ type: "req", id, method, params }));
    return id;
  }

  /** Stops routing answers to a request (its caller is done with it). */
  forget(id: string) {
    this.answers.delete(id);
  }

  /** One request, its first answer. Rejects with an unreachable error when the connection goes. */
  request(method: string, params: unknown): Promise<GatewayFrame> {
    return new Promise((resolve, reject) => {
      const id = this.send(method, params, (f) => {
        this.forget(id);
        if (this.gone && !f.id) reject(this.gone);
        else resolve(f);
      });
    });
  }

  /** Hears events until removed. A listener added to a closed channel is told at once. */
  listen(l: ChannelListener): () => void {
    if (this.gone) {
      const err = this.gone;
      queueMicrotask(() => l.closed(err));
      return () => {};
    }
    clearTimeout(this.idleTimer);
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
      if (this.listeners.size === 0 && !this.gone) {
        // Kept open for the next turn a while; closed when nobody uses it.
        this.idleTimer = setTimeout(() => this.close(), IDLE_CLOSE_MS);
        this.idleTimer.unref();
      }
    };
  }

  close() {
    this.fail(new GatewayRequestError("the connection to the workspace runtime was closed", { unreachable: true }));
    try {
      this.ws.close();
    } catch {}
  }
}

const channels = new Map<string, GatewayChannel>();

/**
 * The shared channel to a gateway, opened on first use. A gateway that
 * restarted has a new token, so it gets a new channel; the old one closed with
 * the old process.
 */
export async function gatewayChannel(endpoint: URL, token: string): Promise<GatewayChannel> {
  const key = `${endpoint.href}\n${token}`;
  let ch = channels.get(key);
  if (!ch || ch.isGone) {
    const fresh = new GatewayChannel(endpoint, token);
    fresh.onGone = () => {
      if (channels.get(key) === fresh) channels.delete(key);
    };
    channels.set(key, fresh);
    ch = fresh;
  }
  await ch.ready;
  return ch;
}

/** Closes every shared channel (shutdown, tests). */
export function closeGatewayChannels() {
  for (const ch of [...channels.values()]) ch.close();
  channels.clear();
}
