import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { FetchLike, Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { ConnectorTestResult } from "@reef/contracts";
import { approvedRequest, approveTarget, EgressRefusedError } from "../shared/guarded-http.ts";

/** What a probe needs: where, how, and the headers opened from the vault. */
export interface ProbeTarget {
  url: string;
  transport: "streamable-http" | "sse";
  /** Sent only to the connector's own origin. */
  headers: Record<string, string>;
}

export interface ProbeOptions {
  allowedHosts: readonly string[];
  /** The whole test's limit (connect, handshake, tool list); default 10 s. */
  timeoutMs?: number;
}

/** What the guarded fetch saw, to explain a failure the SDK reports vaguely. */
interface Seen {
  refused: boolean;
  connectError: string | undefined;
  status: number | undefined;
  contentType: string | undefined;
  redirect: string | undefined;
}

const NO_BODY = new Set([101, 204, 205, 304]);

function headersOf(res: IncomingMessage): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.append(name, v);
  }
  return out;
}

async function bodyText(body: RequestInit["body"]): Promise<string | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return body;
  return new Response(body).text();
}

/**
 * A `fetch` for the MCP SDK that keeps to the outbound address policy: each
 * request's host is resolved and checked ({@link approveTarget}) and the socket
 * connects only to the approved addresses (no DNS rebinding). Redirects are not
 * followed (a redirect could lead into a private network, and MCP endpoints do
 * not redirect), and the sealed headers go only to the connector's own origin.
 * Response bodies stream (SSE).
 */
export function guardedMcpFetch(opts: {
  origin: string;
  headers: Record<string, string>;
  allowedHosts: readonly string[];
  signal: AbortSignal;
  seen?: Seen;
}): FetchLike {
  return async (input, init = {}) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : String(input));
    const signal = init.signal ? AbortSignal.any([init.signal, opts.signal]) : opts.signal;
    let target: Awaited<ReturnType<typeof approveTarget>>;
    try {
      target = await approveTarget(url, { allowedHosts: opts.allowedHosts, signal });
    } catch (err) {
      if (err instanceof EgressRefusedError && opts.seen) opts.seen.refused = true;
      throw err;
    }
    const headers = new Headers(init.headers);
    if (url.origin === opts.origin) for (const [k, v] of Object.entries(opts.headers)) headers.set(k, v);
    const body = await bodyText(init.body);
    const outgoing: Record<string, string> = {};
    headers.forEach((v, k) => {
      outgoing[k] = v;
    });
    outgoing.host = url.host;
    if (body !== undefined) outgoing["content-length"] = String(Buffer.byteLength(body));
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      // A fresh connection per request (no agent): no pooled socket outlives the check that approved it.
      const req = approvedRequest(url, target, { method: init.method ?? "GET", headers: outgoing, signal }, resolve);
      req.on("error", (err) => {
        if (opts.seen && !signal.aborted) opts.seen.connectError = (err as NodeJS.ErrnoException).code ?? err.message;
        reject(err);
      });
      req.end(body);
    });
    const status = res.statusCode ?? 0;
    if (opts.seen) {
      opts.seen.status = status;
      opts.seen.contentType = res.headers["content-type"];
      if (status >= 300 && status < 400) opts.seen.redirect = res.headers.location;
    }
    const hasBody = !NO_BODY.has(status) && init.method !== "HEAD";
    if (!hasBody) res.resume();
    return new Response(hasBody ? (Readable.toWeb(res) as ReadableStream) : null, {
      status: status < 200 || status > 599 ? 502 : status,
      headers: headersOf(res),
    });
  };
}

function explain(seen: Seen, err: unknown, timedOut: boolean): NonNullable<ConnectorTestResult["error"]> {
  if (seen.refused) {
    return {
      code: "URL_NOT_ALLOWED",
      message:
        "Reef may not call this address: it is not a public address (or does not resolve), and the operator has not allowed its host for connectors.",
    };
  }
  if (timedOut) return { code: "TIMEOUT", message: "The server did not answer within 10 seconds." };
  if (seen.status === 401 || seen.status === 403) {
    return {
      code: "AUTH_FAILED",
      message: `The server refused the credentials (HTTP ${seen.status}): check the token or headers.`,
    };
  }
  if (seen.status === undefined && seen.connectError) {
    return { code: "UNREACHABLE", message: `Nothing answered at this address (${seen.connectError}).` };
  }
  if (seen.redirect !== undefined) {
    return {
      code: "NOT_MCP",
      message: `The server redirects elsewhere (HTTP ${seen.status}); give the final MCP endpoint URL instead.`,
    };
  }
  const type = (seen.contentType ?? "").toLowerCase();
  const speaksMcp = type.includes("application/json") || type.includes("text/event-stream");
  if (seen.status !== undefined && (seen.status === 404 || seen.status === 405 || !speaksMcp)) {
    return {
      code: "NOT_MCP",
      message: `The server answered (HTTP ${seen.status}${type ? `, ${type.split(";")[0]}` : ""}) but not as an MCP server: check the URL's path and the transport.`,
    };
  }
  const detail = err instanceof Error ? err.message : String(err);
  return { code: "PROTOCOL_ERROR", message: `The MCP handshake or tool list failed: ${detail.slice(0, 300)}` };
}

/**
 * Connects to an MCP server with the official SDK client and lists its tools,
 * under the outbound address policy and a time limit. Never throws: a failure
 * is an answer with a code and a sentence a person understands.
 */
export async function probeConnector(target: ProbeTarget, opts: ProbeOptions): Promise<ConnectorTestResult> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("timeout")), timeoutMs);
  const seen: Seen = {
    refused: false,
    connectError: undefined,
    status: undefined,
    contentType: undefined,
    redirect: undefined,
  };
  const url = new URL(target.url);
  const fetch = guardedMcpFetch({
    origin: url.origin,
    headers: target.headers,
    allowedHosts: opts.allowedHosts,
    signal: controller.signal,
    seen,
  });
  const transport: Transport =
    target.transport === "sse"
      ? (new SSEClientTransport(url, { fetch }) as Transport)
      : (new StreamableHTTPClientTransport(url, { fetch }) as Transport);
  const client = new Client({ name: "reef-connector-test", version: "1.0.0" });
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener("abort", () => reject(new Error("timeout")), { once: true });
  });
  try {
    const listed = await Promise.race([
      (async () => {
        await client.connect(transport, { signal: controller.signal, timeout: timeoutMs });
        const tools: { name: string; description?: string }[] = [];
        let cursor: string | undefined;
        // Servers page their tool lists; a handful of pages is plenty for a test.
        for (let page = 0; page < 20; page++) {
          const res = await client.listTools(cursor ? { cursor } : {}, {
            signal: controller.signal,
            timeout: timeoutMs,
          });
          for (const t of res.tools)
            tools.push(t.description ? { name: t.name, description: t.description } : { name: t.name });
          cursor = res.nextCursor;
          if (!cursor) break;
        }
        return tools;
      })(),
      aborted,
    ]);
    const version = client.getServerVersion();
    return {
      ok: true,
      tools: listed,
      server: version ? { name: version.name, version: version.version } : null,
      error: null,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    return {
      ok: false,
      tools: [],
      server: null,
      error: explain(seen, err, controller.signal.aborted),
      durationMs: Date.now() - started,
    };
  } finally {
    clearTimeout(timer);
    aborted.catch(() => {});
    controller.abort(new Error("done"));
    await client.close().catch(() => {});
  }
}
