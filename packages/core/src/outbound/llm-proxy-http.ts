import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";

// The HTTP side of the LLM proxy: what it forwards, what it strips, and the
// errors it answers in each vendor's shape.

/** The only vendor APIs a gateway may reach with a workspace's key: a key must not buy fine-tuning or file access. */
const ALLOWED: { method: string; path: RegExp }[] = [
  { method: "POST", path: /^(v1\/)?chat\/completions$/ },
  { method: "POST", path: /^(v1\/)?responses$/ },
  { method: "POST", path: /^(v1\/)?messages$/ },
  { method: "POST", path: /^(v1\/)?messages\/count_tokens$/ },
  { method: "POST", path: /^(v1\/)?embeddings$/ },
  { method: "GET", path: /^(v1\/)?models(\/[A-Za-z0-9._:@/-]+)?$/ },
];

/** Never forwarded either way: they describe one connection, not the request. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
]);

/** Request headers the proxy sets itself, or that carry the gateway's credential or Reef's own state. */
const DROPPED_REQUEST = new Set(["host", "content-length", "authorization", "x-api-key", "api-key", "cookie"]);

/** The credential a gateway presents: OpenAI-style bearer or Anthropic-style `x-api-key`. */
export function credentialOf(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
  const key = req.headers["x-api-key"];
  return bearer ?? (typeof key === "string" && key ? key : undefined);
}

interface VendorError {
  status: number;
  /** OpenAI's `type` (and `code`); Anthropic's `error.type` is derived from the status. */
  type: string;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

const ANTHROPIC_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  502: "api_error",
};

/**
 * A JSON answer from a proxy (the LLM and MCP proxies) to the gateway; once an answer has begun, the connection is
 * dropped instead (the client sees a cut stream, not a second answer).
 */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** An error in the shape the gateway's SDK for this vendor parses, so its words reach the chat. */
export function sendError(res: ServerResponse, anthropic: boolean, e: VendorError): void {
  const body = anthropic
    ? { type: "error", error: { type: ANTHROPIC_TYPES[e.status] ?? "api_error", message: e.message } }
    : { error: { message: e.message, type: e.type, code: e.code, param: null } };
  sendJson(res, e.status, body, e.headers);
}

/** The gateway's request headers as the vendor gets them: no credential, no hop-by-hop, no compression. */
export function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || DROPPED_REQUEST.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  // The usage parser reads the answer as it passes: it must arrive uncompressed.
  out["accept-encoding"] = "identity";
  return out;
}

/**
 * The upstream's answer headers as the gateway gets them (the LLM and MCP proxies): no hop-by-hop, no cookies, none
 * of `alsoDropped` (lower-case names).
 */
export function answerHeaders(headers: IncomingHttpHeaders, alsoDropped: readonly string[] = []): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === "set-cookie" || alsoDropped.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/** A request body above the proxy's limit. */
export class BodyTooLargeError extends Error {}

/** The whole request body (a request is small next to its answer); rejects above `maxBytes` or when the caller hangs up. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners("data");
        req.resume();
        reject(new BodyTooLargeError());
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    req.on("end", () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    req.on("error", reject);
    // Gone before its body was read (the gateway hung up while the credential was checked).
    req.on("close", () => {
      if (!ended) reject(new Error("request closed"));
    });
    if (req.destroyed) reject(new Error("request closed"));
  });
}

/**
 * The request body as forwarded, and the model it names. A streamed chat
 * completion is asked to report usage (OpenAI sends it only when asked), so
 * every call can be metered.
 */
export function prepareBody(
  raw: Buffer,
  endpoint: string,
  contentType: string | undefined,
): { body: Buffer; model: string } {
  if (raw.length === 0 || !(contentType ?? "").includes("json")) return { body: raw, model: "" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    return { body: raw, model: "" };
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return { body: raw, model: "" };
  const o = parsed as Record<string, unknown>;
  const model = typeof o.model === "string" ? o.model.replaceAll("\u0000", "").slice(0, 200) : "";
  if (endpoint === "chat.completions" && o.stream === true) {
    const options = o.stream_options && typeof o.stream_options === "object" ? o.stream_options : {};
    if ((options as Record<string, unknown>).include_usage !== true) {
      o.stream_options = { ...options, include_usage: true };
      return { body: Buffer.from(JSON.stringify(o)), model };
    }
  }
  return { body: raw, model };
}

/** The path under the provider's base URL, if it is one the proxy forwards. */
export function allowedPath(method: string, rest: string): boolean {
  const path = rest.split("?")[0] ?? "";
  // No way out of the base URL's path: no dot segments, no encoded separators.
  if (/%|\\|\/\/|(^|\/)\.\.?(\/|$)/.test(path)) return false;
  return ALLOWED.some((a) => a.method === method && a.path.test(path));
}
