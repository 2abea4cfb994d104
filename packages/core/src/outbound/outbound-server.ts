import { lchown, lstat, unlink } from "node:fs/promises";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Db } from "@reef/db";
import { type GatewaySettings, LLM_PROXY_PATH, MCP_PROXY_PATH, type RuntimeOutbound } from "@reef/runtime";
import type { EgressProxy } from "../egress/egress-proxy.ts";
import type { QuotaService } from "../quotas/quota-service.ts";
import type { Vault } from "../vault/vault-service.ts";
import { rotateMcpCredential } from "./connector-credentials.ts";
import { rotateCredentials } from "./llm-credentials.ts";
import { createLlmProxy, type LlmProxyDeps, type ProxyCaller } from "./llm-proxy.ts";
import { type ConnectorPolicy, createMcpProxy, mcpTarget } from "./mcp-proxy.ts";

/**
 * Refuses every CONNECT and forward request: what the outbound server does
 * when it is given no egress proxy (tests of the LLM proxy alone), never
 * something that lets a gateway out unchecked.
 */
export const REFUSE_ALL_EGRESS: EgressProxy = {
  connect(_req, socket) {
    socket.on("error", () => {});
    socket.end("HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nRefused by Reef.\n");
  },
  forward(_req, res) {
    res.writeHead(403, { "content-type": "text/plain", connection: "close" });
    res.end("Refused by Reef.\n");
  },
};

export interface RuntimeOutboundDeps {
  db: Db;
  vault: Vault;
  quotas: Pick<QuotaService, "tokenLimitFor" | "recordTokens">;
  /** Non-public hosts the operator allows providers on (the same list provider probes obey). */
  allowedHosts: () => Promise<readonly string[]>;
  /** Everything a gateway sends that is not an LLM call; refused when absent. */
  egress?: EgressProxy;
  /**
   * Where gateways on another network (containers, pods) reach Reef's main
   * server, e.g. `http://reef.reef.svc:7420`; the LLM proxy is served under
   * `/internal` there. Absent: such gateways get no outbound URL.
   */
  callbackUrl?: string | undefined;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** See {@link LlmProxyDeps.onProviderFailure}. */
  onProviderFailure?: LlmProxyDeps["onProviderFailure"];
  /** Whether connectors are on and the non-public hosts they may reach; absent: the MCP proxy refuses every call. */
  connectorPolicy?: () => Promise<ConnectorPolicy>;
}

/** Where Reef's main server serves the LLM proxy for gateways that cannot use a socket. */
export const INTERNAL_PREFIX = "/internal";

const LLM_PREFIX = `${LLM_PROXY_PATH}/`;
const MCP_PREFIX = `${MCP_PROXY_PATH}/`;

/** `/llm/<providerId>/<rest>` (with its query) split, or undefined when the path is not the proxy's. */
function llmTarget(url: string, prefix: string): { providerId: string; rest: string } | undefined {
  if (!url.startsWith(prefix)) return undefined;
  const tail = url.slice(prefix.length);
  const slash = tail.indexOf("/");
  if (slash <= 0) return undefined;
  return { providerId: tail.slice(0, slash), rest: tail.slice(slash + 1) };
}

function notFound(res: ServerResponse) {
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message: "Not found.", type: "invalid_request_error", code: "not_found" } }));
}

/**
 * Runs `fn` (which binds a socket, synchronously) under `mask`: the socket is
 * created private, with no moment at which another user may connect and no
 * chmod on a path the gateway could have swapped for a symlink. The mask is
 * the process's for these microseconds: a file another thread creates at that
 * very moment is created stricter, never looser.
 */
function withUmask<T>(mask: number, fn: () => T): T {
  const previous = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(previous);
  }
}

/**
 * Builds each runtime's outbound side: at every start, fresh LLM credentials
 * (one per provider, the previous start's revoked) and the server that
 * carries everything the gateway sends out: `/llm/<providerId>/…` to Reef's
 * LLM proxy, CONNECT and absolute-URI requests to the egress proxy. Over a
 * runtime's socket the workspace is known, so a credential of another
 * workspace is refused (and audited) even though it is valid.
 */
export function createRuntimeOutbound(deps: RuntimeOutboundDeps) {
  const proxy = createLlmProxy(deps);
  const mcp = createMcpProxy({
    ...deps,
    connectorPolicy: deps.connectorPolicy ?? (async () => ({ enabled: false, allowedHosts: [] })),
  });
  const egress = deps.egress ?? REFUSE_ALL_EGRESS;
  const callbackBase = deps.callbackUrl?.replace(/\/+$/, "");
  const servers = new Set<http.Server>();

  function serve(req: IncomingMessage, res: ServerResponse, prefix: string, caller: ProxyCaller) {
    const target = llmTarget(req.url ?? "", prefix);
    if (!target) return notFound(res);
    proxy.handle(req, res, target, caller).catch((err: unknown) => {
      deps.log?.warn({ err }, "LLM proxy call failed");
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ error: { message: "Reef's LLM proxy failed.", type: "api_error", code: "reef_proxy" } }),
        );
      } else res.destroy();
    });
  }

  /** `/mcp/<connectorId>…` (under `base`, the path the gateway used) to Reef's MCP proxy. */
  function serveMcp(req: IncomingMessage, res: ServerResponse, base: string, caller: ProxyCaller) {
    const target = mcpTarget(req.url ?? "", `${base}/`);
    if (!target) return notFound(res);
    mcp.handle(req, res, target, caller, base).catch((err: unknown) => {
      deps.log?.warn({ err }, "MCP proxy call failed");
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "CONNECTOR_UNREACHABLE", message: "Reef's MCP proxy failed." } }));
      } else res.destroy();
    });
  }

  /** The per-runtime server, for one workspace. */
  function runtimeServer(workspaceId: string): http.Server {
    const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
      const url = req.url ?? "";
      if (url.startsWith(LLM_PREFIX)) return serve(req, res, LLM_PREFIX, { workspaceId });
      if (url.startsWith(MCP_PREFIX)) return serveMcp(req, res, MCP_PROXY_PATH, { workspaceId });
      // An absolute URI: the gateway's HTTP_PROXY for plain-HTTP requests.
      if (/^http:\/\//i.test(url)) return egress.forward(req, res, { workspaceId });
      notFound(res);
    });
    server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      egress.connect(req, socket, head, { workspaceId }),
    );
    return server;
  }

  async function listen(workspaceId: string, path: string, owner?: { uid: number; gid: number }) {
    // A socket left by a previous run (or anything else the gateway put there): bind needs the name free.
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
    const server = runtimeServer(workspaceId);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // The bind happens inside listen(), synchronously: created 0600 (owner read and write only).
      withUmask(0o177, () => server.listen(path, () => resolve()));
    });
    servers.add(server);
    let inode: number | undefined;
    try {
      const stat = await lstat(path);
      if (!stat.isSocket()) throw new Error(`${path} is not the socket just bound`);
      inode = stat.ino;
      // lchown: never follows a symlink someone swapped in.
      if (owner) await lchown(path, owner.uid, owner.gid);
    } catch (err) {
      await close(server, path, inode);
      throw err;
    }
    return { close: () => close(server, path, inode) };
  }

  async function close(server: http.Server, path: string, inode: number | undefined) {
    servers.delete(server);
    // Closing unlinks the path (libuv does, by name): close a runtime's old listener before it listens anew there.
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    const now = await lstat(path).catch(() => undefined);
    if (now && inode !== undefined && now.ino === inode) await unlink(path).catch(() => {});
  }

  return {
    /**
     * For one runtime start: rotates the workspace's LLM credentials (one per
     * provider the gateway is configured with) and returns the outbound side
     * the driver serves. Call at every start, before the gateway reads its config.
     */
    async forStart(workspaceId: string, settings: GatewaySettings): Promise<RuntimeOutbound> {
      const { credentials, revoked } = await rotateCredentials(
        deps.db,
        workspaceId,
        settings.providers.map((p) => p.id),
      );
      proxy.noteRevoked(revoked);
      // Only a gateway with an HTTP connector gets an MCP proxy credential (stdio ones run inside the runtime).
      const mcpCredential = await rotateMcpCredential(
        deps.db,
        workspaceId,
        (settings.connectors ?? []).some((c) => c.transport !== "stdio"),
      );
      return {
        credentials,
        ...(mcpCredential ? { mcpCredential } : {}),
        listen: (path, owner) => listen(workspaceId, path, owner),
        ...(callbackBase ? { url: `${callbackBase}${INTERNAL_PREFIX}` } : {}),
      };
    },

    /**
     * Reef's main-server route for gateways on another network: requests under
     * `/internal/llm/<providerId>/…` and `/internal/mcp/<connectorId>…`, raw (the body unread). The credential
     * alone names the workspace.
     */
    serveHttp(req: IncomingMessage, res: ServerResponse): void {
      if ((req.url ?? "").startsWith(`${INTERNAL_PREFIX}${MCP_PREFIX}`)) {
        serveMcp(req, res, `${INTERNAL_PREFIX}${MCP_PROXY_PATH}`, {});
      } else serve(req, res, `${INTERNAL_PREFIX}${LLM_PREFIX}`, {});
    },

    /** Resolves once every LLM call finished so far is metered. */
    flush: () => proxy.flush(),

    /** Stops every runtime's server and the proxy's upstream connections (Reef shutting down). */
    async close(): Promise<void> {
      await Promise.all(
        [...servers].map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      servers.clear();
      await proxy.close();
    },
  };
}

export type RuntimeOutboundService = ReturnType<typeof createRuntimeOutbound>;
