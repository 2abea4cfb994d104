import { lookup } from "node:dns/promises";
import http, { type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { canonicalAddress, classifyAddress } from "./address-class.ts";

/**
 * Raised when Reef will not call a URL: its host resolves to a non-public
 * address the operator has not allowed, it does not resolve, or a redirect
 * leads to such a place. Decided before connecting, so it says nothing about
 * what (if anything) listens there.
 */
export class EgressRefusedError extends Error {
  constructor() {
    super("refused by the outbound address policy");
    this.name = "EgressRefusedError";
  }
}

/** The answer to a guarded GET: status and body (capped), never the peer's address. */
export interface GuardedResponse {
  status: number;
  text: string;
}

export interface GuardedGetOptions {
  headers: Record<string, string>;
  timeoutMs: number;
  /** Operator-allowed non-public hosts: `host`, `host:port`, `[v6]:port`. */
  allowedHosts: readonly string[];
  maxRedirects?: number;
  maxBytes?: number;
}

interface HostEntry {
  host: string;
  port: number | undefined;
}

/** Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
export function parseHostEntry(entry: string): HostEntry | undefined {
  const text = entry.trim().toLowerCase();
  if (!text) return undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracketed?.[1]) return { host: canonicalAddress(bracketed[1]), port: portOf(bracketed[2]) };
  if (isIP(text) === 6) return { host: canonicalAddress(text), port: undefined };
  const withPort = /^([^:]+)(?::(\d{1,5}))?$/.exec(text);
  if (!withPort?.[1]) return undefined;
  return { host: canonicalAddress(withPort[1].replace(/\.$/, "")), port: portOf(withPort[2]) };
}

function portOf(text: string | undefined): number | undefined {
  return text === undefined ? undefined : Number(text);
}

/** Whether the operator allowed `host` (a name or an address) on `port`. */
export function hostAllowed(allowed: readonly string[], host: string, port: number): boolean {
  const name = canonicalAddress(host.replace(/\.$/, ""));
  return allowed.some((entry) => {
    const e = parseHostEntry(entry);
    return e !== undefined && e.host === name && (e.port === undefined || e.port === port);
  });
}

interface Target {
  url: URL;
  host: string;
  port: number;
  addresses: { address: string; family: number }[];
}

function withDeadline<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Resolves the URL's host and checks every address it resolves to. Refused
 * unless each is public, or the operator allowed the host name or the address
 * (on that port). A name that does not resolve is refused the same way, so
 * answers do not tell which internal names exist.
 */
async function checkTarget(url: URL, allowed: readonly string[], signal: AbortSignal): Promise<Target> {
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new EgressRefusedError();
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  let addresses: { address: string; family: number }[];
  const literal = isIP(host);
  if (literal) {
    addresses = [{ address: host, family: literal }];
  } else {
    try {
      addresses = await withDeadline(lookup(host, { all: true, verbatim: true }), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new EgressRefusedError();
    }
  }
  if (addresses.length === 0) throw new EgressRefusedError();
  const byName = hostAllowed(allowed, host, port);
  for (const { address } of addresses) {
    if (!byName && classifyAddress(address) !== "public" && !hostAllowed(allowed, address, port)) {
      throw new EgressRefusedError();
    }
  }
  return { url, host, port, addresses };
}

/** Connects only to the addresses {@link checkTarget} approved: no second DNS answer can slip in. */
function pinnedLookup(addresses: Target["addresses"]): LookupFunction {
  return (_hostname, options, callback) => {
    const first = addresses[0];
    if (!first) return callback(new EgressRefusedError() as NodeJS.ErrnoException, "", 4);
    if (options.all) return (callback as unknown as (e: null, a: Target["addresses"]) => void)(null, addresses);
    callback(null, first.address, first.family);
  };
}

/** A GET, or a POST of `body`, to the checked target only. */
function send(
  target: Target,
  headers: Record<string, string>,
  signal: AbortSignal,
  body?: string,
): Promise<IncomingMessage> {
  const { url } = target;
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      {
        protocol: url.protocol,
        hostname: target.host,
        port: target.port,
        path: `${url.pathname}${url.search}`,
        method: body === undefined ? "GET" : "POST",
        headers: {
          ...headers,
          host: url.host,
          ...(body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }),
        },
        // A fresh connection per request: no pooled socket outlives the check that approved it.
        agent: false,
        lookup: pinnedLookup(target.addresses),
        signal,
      },
      resolve,
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function readBody(res: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      res.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * A GET to a URL a member supplied, under the outbound address policy: the
 * host is resolved and checked before connecting, the connection goes to the
 * checked address (DNS rebinding cannot swap it), and every redirect hop is
 * checked the same way. Headers other than `accept` (the API key) are dropped
 * when a redirect leaves the original origin.
 *
 * @throws EgressRefusedError when the policy refuses a hop; a `TimeoutError`
 *   after `timeoutMs` in all; the socket's error when a connection fails.
 */
export async function guardedGet(url: string, opts: GuardedGetOptions): Promise<GuardedResponse> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  const maxRedirects = opts.maxRedirects ?? 3;
  const origin = new URL(url).origin;
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    const target = await checkTarget(current, opts.allowedHosts, signal);
    const headers = current.origin === origin ? opts.headers : { accept: opts.headers.accept ?? "application/json" };
    let res: IncomingMessage;
    try {
      res = await send(target, headers, signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw err;
    }
    const location = res.headers.location;
    if (REDIRECTS.has(res.statusCode ?? 0) && location) {
      res.resume();
      if (hop >= maxRedirects) throw new Error("too many redirects");
      current = new URL(location, current);
      continue;
    }
    try {
      return { status: res.statusCode ?? 0, text: await readBody(res, opts.maxBytes ?? 4 * 1024 * 1024) };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw err;
    }
  }
}

/**
 * A POST of `body` to a URL a member supplied (a notification), under the same
 * outbound address policy as {@link guardedGet}. Redirects are not followed (a
 * redirect is not a delivery) and the answer's body is not read.
 *
 * @returns the response's status.
 * @throws EgressRefusedError when the policy refuses the URL; a `TimeoutError`
 *   after `timeoutMs`; the socket's error when the connection fails.
 */
export async function guardedPost(
  url: string,
  opts: { headers: Record<string, string>; body: string; timeoutMs: number; allowedHosts: readonly string[] },
): Promise<number> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  const target = await checkTarget(new URL(url), opts.allowedHosts, signal);
  let res: IncomingMessage;
  try {
    res = await send(target, opts.headers, signal, opts.body);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  }
  res.resume();
  return res.statusCode ?? 0;
}

/**
 * Checks a URL against the outbound address policy without calling it, for
 * refusing a base URL when it is saved rather than when it is first used.
 *
 * @throws EgressRefusedError when the policy refuses it.
 */
export async function assertCallable(
  url: string,
  opts: { allowedHosts: readonly string[]; timeoutMs: number },
): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new EgressRefusedError();
  }
  await checkTarget(parsed, opts.allowedHosts, AbortSignal.timeout(opts.timeoutMs));
}

/** Where a call approved by {@link approveTarget} may connect, and the lookup that pins it there. */
export interface ApprovedTarget {
  host: string;
  port: number;
  /** The addresses the policy approved (sorted), e.g. to key a connection pool on. */
  addresses: readonly string[];
  /** Answers only with the approved addresses: pass it as the request's `lookup`. */
  lookup: LookupFunction;
}

/**
 * The outbound address policy for a caller that makes its own request (the LLM
 * proxy streams bodies both ways, which {@link guardedGet} does not): checks the
 * URL's host as every guarded call does, and returns a lookup that connects
 * only to what was checked. The caller must not follow redirects on its own.
 *
 * @throws EgressRefusedError when the policy refuses it.
 */
export async function approveTarget(
  url: URL,
  opts: { allowedHosts: readonly string[]; signal: AbortSignal },
): Promise<ApprovedTarget> {
  const target = await checkTarget(url, opts.allowedHosts, opts.signal);
  return {
    host: target.host,
    port: target.port,
    addresses: target.addresses.map((a) => a.address).sort(),
    lookup: pinnedLookup(target.addresses),
  };
}

/**
 * A request to `url` that connects only where {@link approveTarget} approved (`target`); the caller sets the headers
 * (`host` among them) and sends the body. Without `agent`, a fresh connection: no pooled socket outlives the check
 * that approved it.
 */
export function approvedRequest(
  url: URL,
  target: ApprovedTarget,
  opts: { method: string; headers: OutgoingHttpHeaders; signal: AbortSignal; agent?: http.Agent | false },
  onResponse?: (res: IncomingMessage) => void,
): ClientRequest {
  const client = url.protocol === "https:" ? https : http;
  return client.request(
    {
      protocol: url.protocol,
      hostname: target.host,
      port: target.port,
      path: `${url.pathname}${url.search}`,
      method: opts.method,
      headers: opts.headers,
      agent: opts.agent ?? false,
      lookup: target.lookup,
      signal: opts.signal,
    },
    onResponse,
  );
}
