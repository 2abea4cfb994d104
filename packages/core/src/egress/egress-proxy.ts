import http, { type IncomingMessage, type ServerResponse } from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import {
  type EgressPolicy,
  type EgressRefusalReason,
  normalizeHost,
  parseAuthority,
  REFUSAL_TEXT,
  type ResolvedAddress,
} from "./egress-policy.ts";
import type { EgressRefusalRecorder } from "./egress-refusals.ts";

/** The header a refusal carries: a stable {@link EgressRefusalReason} code for tools and tests. */
export const REFUSED_HEADER = "x-reef-egress-refused";

/**
 * Where a gateway's outbound traffic other than LLM calls goes: Reef's HTTP
 * CONNECT and forward proxy (`HTTPS_PROXY` / `HTTP_PROXY` inside the sandbox),
 * under the egress policy. Core's outbound server hands it the requests.
 */
export interface EgressProxy {
  /** A CONNECT request of a runtime: tunnel to the target if policy allows, else answer 403 and count the refusal. */
  connect(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: { workspaceId: string }): void;
  /** A plain-HTTP absolute-URI request (HTTP_PROXY): forward if allowed, else 403 and count. */
  forward(req: IncomingMessage, res: ServerResponse, ctx: { workspaceId: string }): void;
}

export interface EgressProxyDeps {
  policy: Pick<EgressPolicy, "decide">;
  refusals: Pick<EgressRefusalRecorder, "record">;
  log?: { warn(obj: object, msg: string): void } | undefined;
  /** How long opening the upstream connection may take. */
  connectTimeoutMs?: number | undefined;
  /** A tunnel or forwarded request with no bytes either way for this long is closed. */
  idleTimeoutMs?: number | undefined;
  /** Open tunnels and forwarded requests one workspace may hold at once (file descriptors are shared by all). */
  maxConnectionsPerWorkspace?: number | undefined;
  /** Opens the upstream TCP connection to a checked IP address (tests: observe where it dials). */
  connect?: ((opts: { host: string; port: number }) => net.Socket) | undefined;
}

/** Addresses tried per connection, in the resolver's order, before giving up. */
const MAX_ATTEMPTS = 4;

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: never passed on. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]);

function dropHeader(name: string, named: Set<string>): boolean {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || lower.startsWith("proxy-") || named.has(lower);
}

/** Headers the `Connection` header names are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(",") : (value ?? "");
  return new Set(
    text
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** Raw header pairs minus hop-by-hop and proxy headers, duplicates (set-cookie) kept. */
function endToEnd(raw: string[], connection: string | string[] | undefined, ...also: string[]): string[] {
  const named = connectionTokens(connection);
  for (const name of also) named.add(name);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!dropHeader(name, named)) out.push(name, raw[i + 1] as string);
  }
  return out;
}

/** An answer written straight to a CONNECT socket (there is no ServerResponse for it). */
function answerRaw(socket: Duplex, status: number, text: string, body: string, headers: Record<string, string> = {}) {
  if (socket.destroyed || !socket.writable) return;
  const lines = [
    `HTTP/1.1 ${status} ${text}`,
    "content-type: text/plain; charset=utf-8",
    `content-length: ${Buffer.byteLength(body)}`,
    "connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  // Whatever the client already sent (a TLS hello) is read and dropped, so closing does not reset the answer away.
  socket.resume();
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}\n`);
  setTimeout(() => socket.destroy(), 2000).unref();
}

/**
 * Reef's egress proxy for gateways. CONNECT (`HTTPS_PROXY`) opens a TCP tunnel
 * and absolute-URI requests (`HTTP_PROXY`) are forwarded, both only where
 * {@link EgressPolicy} allows, to the addresses it resolved and checked.
 * Forwarded requests are sent as they are, redirects included and never
 * followed here: the client follows them, and each hop comes back through the
 * proxy and its checks. Refusals answer 403 with a short reason and the
 * {@link REFUSED_HEADER} code at once, and are counted in the background.
 */
export function createEgressProxy(deps: EgressProxyDeps): EgressProxy {
  const connectTimeoutMs = deps.connectTimeoutMs ?? 10_000;
  const idleTimeoutMs = deps.idleTimeoutMs ?? 300_000;
  const maxPerWorkspace = deps.maxConnectionsPerWorkspace ?? 256;
  const open = new Map<string, number>();

  /** Takes a connection slot of the workspace; the returned release is safe to call more than once. */
  function acquire(workspaceId: string): (() => void) | undefined {
    const n = open.get(workspaceId) ?? 0;
    if (n >= maxPerWorkspace) return undefined;
    open.set(workspaceId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (open.get(workspaceId) ?? 1) - 1;
      if (left <= 0) open.delete(workspaceId);
      else open.set(workspaceId, left);
    };
  }

  function refused(workspaceId: string, host: string, port: number, reason: EgressRefusalReason) {
    deps.refusals.record({ workspaceId, host, port, reason });
    return { body: REFUSAL_TEXT[reason], headers: { [REFUSED_HEADER]: reason } };
  }

  function dialOne(address: string, port: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const upstream = (deps.connect ?? net.connect)({ host: address, port });
      upstream.setTimeout(connectTimeoutMs, () => upstream.destroy(new Error("connect timed out")));
      upstream.once("error", reject);
      upstream.once("connect", () => {
        upstream.off("error", reject);
        upstream.setTimeout(0);
        resolve(upstream);
      });
    });
  }

  /**
   * Opens a TCP connection to one of the addresses the policy checked, tried
   * in turn (an IPv6 answer on a host without IPv6 falls back to IPv4). It
   * dials the IP itself, never the name: a second DNS answer cannot slip in.
   */
  async function dial(port: number, addresses: ResolvedAddress[]): Promise<net.Socket> {
    let last: unknown = new Error("no address");
    for (const { address } of addresses.slice(0, MAX_ATTEMPTS)) {
      try {
        return await dialOne(address, port);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  function tunnel(client: Duplex, upstream: net.Socket, head: Buffer, release: () => void) {
    const teardown = () => {
      release();
      client.destroy();
      upstream.destroy();
    };
    for (const side of [client, upstream]) {
      side.on("error", teardown);
      side.on("close", teardown);
    }
    upstream.setTimeout(idleTimeoutMs, teardown);
    if ("setTimeout" in client && typeof client.setTimeout === "function")
      (client as net.Socket).setTimeout(idleTimeoutMs, teardown);
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  return {
    connect(req, socket, head, ctx) {
      const { workspaceId } = ctx;
      // Until the tunnel is up, an error (the client hung up) just ends this attempt.
      const early = () => socket.destroy();
      socket.on("error", early);
      const target = parseAuthority(req.url ?? "");
      if (!target) {
        answerRaw(socket, 400, "Bad Request", "CONNECT needs host:port.");
        return;
      }
      const { host, port } = target;
      const release = acquire(workspaceId);
      if (!release) {
        const r = refused(workspaceId, host, port, "too_many_connections");
        answerRaw(socket, 403, "Forbidden", r.body, r.headers);
        return;
      }
      socket.once("close", release);
      void (async () => {
        let decision: Awaited<ReturnType<EgressProxyDeps["policy"]["decide"]>>;
        try {
          decision = await deps.policy.decide(workspaceId, host, port);
        } catch (err) {
          release();
          deps.log?.warn({ err, workspaceId }, "egress proxy could not decide a connection");
          answerRaw(socket, 503, "Service Unavailable", "Reef could not check this connection; try again.");
          return;
        }
        if (!decision.allowed) {
          release();
          const r = refused(workspaceId, host, port, decision.reason);
          answerRaw(socket, 403, "Forbidden", r.body, r.headers);
          return;
        }
        if (socket.destroyed) return release();
        let upstream: net.Socket;
        try {
          upstream = await dial(port, decision.addresses);
        } catch {
          release();
          answerRaw(socket, 502, "Bad Gateway", `Could not connect to ${host}:${port}.`);
          return;
        }
        if (socket.destroyed) {
          upstream.destroy();
          return release();
        }
        socket.off("error", early);
        tunnel(socket, upstream, head, release);
      })();
    },

    forward(req, res, ctx) {
      const { workspaceId } = ctx;
      const bad = (text: string) => {
        res.writeHead(400, { "content-type": "text/plain; charset=utf-8", connection: "close" });
        res.end(`${text}\n`);
      };
      let url: URL;
      try {
        url = new URL(req.url ?? "");
      } catch {
        return bad("A proxy request needs an absolute http:// URL.");
      }
      if (url.protocol !== "http:") return bad("Only http:// URLs are forwarded; use CONNECT for https.");
      const host = normalizeHost(url.hostname);
      if (!host) return bad("The URL's host is not a host name or IP address.");
      const port = url.port ? Number(url.port) : 80;
      const release = acquire(workspaceId);
      const refuse = (reason: EgressRefusalReason) => {
        const r = refused(workspaceId, host, port, reason);
        res.writeHead(403, { "content-type": "text/plain; charset=utf-8", ...r.headers });
        res.end(`${r.body}\n`);
      };
      if (!release) return refuse("too_many_connections");
      res.once("close", release);
      void (async () => {
        let decision: Awaited<ReturnType<EgressProxyDeps["policy"]["decide"]>>;
        try {
          decision = await deps.policy.decide(workspaceId, host, port);
        } catch (err) {
          deps.log?.warn({ err, workspaceId }, "egress proxy could not decide a request");
          res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
          res.end("Reef could not check this request; try again.\n");
          return;
        }
        if (!decision.allowed) return refuse(decision.reason);
        if (res.destroyed) return;
        const headers = endToEnd(req.rawHeaders, req.headers.connection, "host");
        headers.push("host", url.host);
        // The body arrives decoded; without a length it goes on chunked again, as it came.
        if (req.headers["transfer-encoding"] && !req.headers["content-length"])
          headers.push("transfer-encoding", "chunked");
        let socket: net.Socket;
        try {
          socket = await dial(port, decision.addresses);
        } catch {
          res.writeHead(502, { "content-type": "text/plain; charset=utf-8" });
          res.end(`Could not connect to ${url.host}.\n`);
          return;
        }
        if (res.destroyed) return void socket.destroy();
        socket.setTimeout(idleTimeoutMs);
        const upstream = http.request({
          method: req.method,
          path: `${url.pathname}${url.search}`,
          headers: headers as unknown as http.OutgoingHttpHeaders,
          // Its own connection, to the checked address: no pooled socket outlives the check that approved it.
          createConnection: () => socket,
        });
        socket.on("timeout", () => upstream.destroy(new Error("timed out")));
        upstream.on("response", (answer) => {
          res.writeHead(
            answer.statusCode ?? 502,
            answer.statusMessage,
            endToEnd(answer.rawHeaders, answer.headers.connection) as unknown as http.OutgoingHttpHeaders,
          );
          answer.pipe(res);
          answer.on("error", () => res.destroy());
        });
        upstream.on("error", () => {
          if (res.headersSent) return void res.destroy();
          res.writeHead(502, { "content-type": "text/plain; charset=utf-8" });
          res.end(`Could not reach ${url.host}.\n`);
        });
        // The client gave up: stop the upstream request too.
        res.once("close", () => {
          if (!res.writableFinished) upstream.destroy();
        });
        req.pipe(upstream);
      })();
    },
  };
}
