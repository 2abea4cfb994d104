import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { pipeline, Transform } from "node:stream";
import { type Db, extendScope, isUuid, schema, withScope } from "@reef/db";
import { and, eq } from "drizzle-orm";
import { openConnectorHeaders } from "../connectors/connector-credentials.ts";
import { type ApprovedTarget, approvedRequest, approveTarget, EgressRefusedError } from "../shared/guarded-http.ts";
import type { Vault } from "../vault/vault-service.ts";
import { hashMcpCredential } from "./connector-credentials.ts";
import type { ProxyCaller } from "./llm-proxy.ts";
import { answerHeaders, credentialOf, sendJson } from "./llm-proxy-http.ts";

const { agentConnectors, connectorCredentials, connectors } = schema;

/** Whether connectors are on platform-wide, and the non-public hosts they may reach (platform setting, else config). */
export interface ConnectorPolicy {
  enabled: boolean;
  allowedHosts: readonly string[];
}

export interface McpProxyDeps {
  db: Db;
  vault: Vault;
  /** Read per call (the platform settings cache it): switching connectors off stops the next call. */
  connectorPolicy: () => Promise<ConnectorPolicy>;
  /** Largest request body forwarded (a tool call's arguments). Default 8 MiB. */
  maxBodyBytes?: number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** `/mcp/<connectorId>` (the endpoint) or `/mcp/<connectorId>/~/<path>` (another path of its origin), split. */
export interface McpTarget {
  connectorId: string;
  /** The path after `~/` (no leading slash), or undefined for the connector's endpoint itself. */
  path: string | undefined;
  /** The request's query, with its `?`, or "". */
  search: string;
}

/** Parses a request path under `prefix` (`/mcp/` or `/internal/mcp/`); undefined when it is not the proxy's. */
export function mcpTarget(url: string, prefix: string): McpTarget | undefined {
  if (!url.startsWith(prefix)) return undefined;
  const q = url.indexOf("?");
  const path = q < 0 ? url.slice(prefix.length) : url.slice(prefix.length, q);
  const search = q < 0 ? "" : url.slice(q);
  const slash = path.indexOf("/");
  if (slash < 0) return path ? { connectorId: path, path: undefined, search } : undefined;
  const connectorId = path.slice(0, slash);
  const rest = path.slice(slash);
  if (rest === "/") return { connectorId, path: undefined, search };
  if (!rest.startsWith("/~/")) return undefined;
  return { connectorId, path: rest.slice(3), search };
}

/** The only request headers the MCP transports need; everything else (the gateway's credential included) stays. */
const PASSED_REQUEST = ["accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id"];

/**
 * Besides hop-by-hop headers and cookies, never forwarded back: the SSE rewrite changes the body's length, and the
 * body arrives uncompressed (asked for with `accept-encoding: identity`).
 */
const answerHeadersOf = (headers: IncomingHttpHeaders) =>
  answerHeaders(headers, ["content-length", "content-encoding"]);

/** An error in Reef's shape `{ error: { code, message } }`. */
const sendError = (res: ServerResponse, status: number, code: string, message: string) =>
  sendJson(res, status, { error: { code, message } });

/** A path under the connector's origin the proxy forwards: no way out of it (dot segments, encoded separators). */
function safePath(path: string): boolean {
  // A leading slash would make `<origin>//<path>`: an empty segment the server may read as another authority.
  return !/^\/|%2f|%5c|%2e|\\|\/\/|(^|\/)\.\.?(\/|$)/i.test(path);
}

/**
 * Rewrites a legacy SSE server's `endpoint` event (where the client posts its
 * messages: a path or URL on the server's origin) to the proxy's
 * `<prefix>/<connectorId>/~/<path>` form, so the gateway posts through Reef
 * too. Other events pass as they are, each as soon as it is complete.
 */
function sseRewriter(origin: string, proxyBase: string): Transform {
  let pending = "";
  let event: string[] = [];
  const rewrite = (lines: string[]): string[] => {
    const isEndpoint = lines.some((l) => /^event:\s?endpoint$/.test(l));
    if (!isEndpoint) return lines;
    return lines.map((l) => {
      const m = /^data:\s?(.*)$/.exec(l);
      if (!m) return l;
      let u: URL;
      try {
        u = new URL(m[1] ?? "", `${origin}/`);
      } catch {
        return "data: ";
      }
      // Elsewhere than the server's own origin: not followed (the gateway would post there without Reef).
      if (u.origin !== origin) return "data: ";
      return `data: ${proxyBase}/~${u.pathname}${u.search}`;
    });
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      pending += chunk.toString("utf8");
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      let out = "";
      for (const raw of parts) {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (line === "") {
          out += `${rewrite(event).join("\n")}\n\n`;
          event = [];
        } else event.push(line);
      }
      done(null, out);
    },
    flush(done) {
      const rest = [...event, ...(pending ? [pending] : [])];
      done(null, rest.length ? `${rewrite(rest).join("\n")}\n` : "");
    },
  });
}

/** Holds back an error answer (small) and removes the connector's secrets from it, in case the server echoes them. */
function scrubbed(answer: IncomingMessage, secrets: string[], res: ServerResponse, status: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  answer.on("data", (c: Buffer) => {
    size += c.length;
    if (size <= 256 * 1024) chunks.push(c);
  });
  answer.on("end", () => {
    let text = Buffer.concat(chunks).toString("utf8");
    for (const s of secrets) if (s.length >= 4) text = text.replaceAll(s, "[redacted]");
    res.writeHead(status, { ...answerHeadersOf(answer.headers), "content-length": Buffer.byteLength(text) });
    res.end(text);
  });
  answer.on("error", () => res.destroy());
}

type Grant =
  | { kind: "ok"; workspaceId: string; url: string; headers: Record<string, string> }
  | { kind: "credential" }
  | { kind: "connector" }
  | { kind: "disabled" };

/**
 * Reef's MCP proxy: a gateway reaches its workspace's HTTP connectors here,
 * with the credential minted for its runtime. Each call is checked against
 * the database (the credential, that the connector is the workspace's and
 * enabled, that connectors are on platform-wide), the connector's headers are
 * opened from the vault for that call only, and the call goes to the
 * connector's URL under the outbound address policy, pinned to the addresses
 * checked. Answers stream back unbuffered (SSE included).
 */
export function createMcpProxy(deps: McpProxyDeps) {
  const maxBodyBytes = deps.maxBodyBytes ?? 8 * 1024 * 1024;

  async function authorize(credential: string | undefined, connectorId: string, caller: ProxyCaller): Promise<Grant> {
    if (!credential) return { kind: "credential" };
    const hash = hashMcpCredential(credential);
    const scope = {
      ...(caller.workspaceId ? { workspaceId: caller.workspaceId } : {}),
      lookup: { connector_credential: hash },
    };
    return withScope(deps.db, scope, async (tx): Promise<Grant> => {
      const [cred] = await tx
        .select({ workspaceId: connectorCredentials.workspaceId })
        .from(connectorCredentials)
        .where(eq(connectorCredentials.credentialHash, hash));
      // Over a runtime's socket, another workspace's credential is no credential at all.
      if (!cred || (caller.workspaceId && cred.workspaceId !== caller.workspaceId)) return { kind: "credential" };
      if (!caller.workspaceId) await extendScope(tx, { workspaceId: cred.workspaceId });
      if (!isUuid(connectorId)) return { kind: "connector" };
      const [row] = await tx
        .select()
        .from(connectors)
        .where(and(eq(connectors.id, connectorId), eq(connectors.workspaceId, cred.workspaceId)));
      if (!row?.enabled || !row.url || row.transport === "stdio") return { kind: "connector" };
      // A connector no agent may use is not in the gateway's config: a call for it comes from outside OpenClaw's policy.
      const [used] = await tx
        .select({ agentId: agentConnectors.agentId })
        .from(agentConnectors)
        .where(eq(agentConnectors.connectorId, row.id))
        .limit(1);
      if (!used) return { kind: "connector" };
      if (!(await deps.connectorPolicy()).enabled) return { kind: "disabled" };
      const headers = await openConnectorHeaders(tx, deps.vault, row);
      return { kind: "ok", workspaceId: cred.workspaceId, url: row.url, headers };
    });
  }

  /**
   * Serves one call. `prefix` is the path the gateway used up to the
   * connector id (`/mcp` or `/internal/mcp`): a legacy SSE server's message
   * endpoint is rewritten under it.
   */
  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    target: McpTarget,
    caller: ProxyCaller,
    prefix: string,
  ): Promise<void> {
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    const grant = await authorize(credentialOf(req), target.connectorId, caller);
    if (grant.kind === "credential") {
      return sendError(
        res,
        401,
        "UNAUTHENTICATED",
        "Reef's MCP proxy does not accept this credential: it is not this runtime's, or was rotated.",
      );
    }
    if (grant.kind === "connector") return sendError(res, 404, "NOT_FOUND", "No such connector in this workspace.");
    if (grant.kind === "disabled") {
      return sendError(res, 403, "CONNECTORS_DISABLED", "Connectors are switched off on this Reef.");
    }
    const endpoint = new URL(grant.url);
    let url: URL;
    if (target.path === undefined) {
      url = new URL(endpoint);
      for (const [k, v] of new URLSearchParams(target.search)) url.searchParams.append(k, v);
    } else {
      if (!safePath(target.path))
        return sendError(res, 404, "NOT_FOUND", "Reef's MCP proxy does not forward this path.");
      url = new URL(`${endpoint.origin}/${target.path}${target.search}`);
    }
    let approved: ApprovedTarget;
    try {
      const { allowedHosts } = await deps.connectorPolicy();
      approved = await approveTarget(url, { allowedHosts, signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err instanceof EgressRefusedError) {
        deps.log?.warn(
          { workspaceId: grant.workspaceId, connectorId: target.connectorId, host: url.host },
          "MCP proxy refused a connector's address",
        );
        return sendError(
          res,
          403,
          "CONNECTOR_URL_NOT_ALLOWED",
          "Reef does not call this connector's URL: its host is not a public address the operator allows.",
        );
      }
      return sendError(res, 502, "CONNECTOR_UNREACHABLE", "Reef could not reach the connector.");
    }

    const method = req.method ?? "GET";
    const headers: OutgoingHttpHeaders = {};
    for (const name of PASSED_REQUEST) {
      const v = req.headers[name];
      if (v !== undefined) headers[name] = v;
    }
    // The connector's own headers (its bearer token among them) last: nothing the gateway sent replaces them.
    Object.assign(headers, grant.headers);
    headers.host = url.host;
    // The SSE rewrite reads the answer as it passes: it must arrive uncompressed.
    headers["accept-encoding"] = "identity";
    const length = req.headers["content-length"];
    if (length !== undefined) {
      if (Number(length) > maxBodyBytes) return sendError(res, 413, "TOO_LARGE", "The request is too large.");
      headers["content-length"] = length;
    }
    // A fresh connection per call (no agent): no pooled socket outlives the check that approved it.
    const upstream = approvedRequest(url, approved, { method, headers, signal: controller.signal });
    const secrets = Object.values(grant.headers).flatMap((v) => [v, v.replace(/^Bearer\s+/i, "")]);
    upstream.on("error", () => {
      if (controller.signal.aborted) return;
      if (!res.headersSent) sendError(res, 502, "CONNECTOR_UNREACHABLE", "Reef could not reach the connector.");
      else res.destroy();
    });
    upstream.on("response", (answer) => {
      const status = answer.statusCode ?? 502;
      if (status >= 300 && status < 400) {
        answer.resume();
        // Followed, a redirect would take the gateway (and its proxy credential) past Reef.
        return sendError(
          res,
          502,
          "CONNECTOR_REDIRECT",
          "The connector answered with a redirect, which Reef does not follow.",
        );
      }
      if (status >= 400) return scrubbed(answer, secrets, res, status);
      res.writeHead(status, answerHeadersOf(answer.headers));
      res.flushHeaders();
      const sse = String(answer.headers["content-type"] ?? "").includes("text/event-stream");
      const done = (err: NodeJS.ErrnoException | null) => {
        if (err && !controller.signal.aborted) controller.abort();
      };
      if (sse) pipeline(answer, sseRewriter(endpoint.origin, `${prefix}/${target.connectorId}`), res, done);
      else pipeline(answer, res, done);
    });
    if (method === "GET" || method === "HEAD" || method === "DELETE") {
      req.resume();
      upstream.end();
      return;
    }
    let size = 0;
    const cap = new Transform({
      transform(chunk: Buffer, _enc, next) {
        size += chunk.length;
        next(size > maxBodyBytes ? new Error("body too large") : null, chunk);
      },
    });
    pipeline(req, cap, upstream, (err) => {
      if (err && !controller.signal.aborted) controller.abort();
    });
  }

  return { handle };
}

export type McpProxy = ReturnType<typeof createMcpProxy>;
