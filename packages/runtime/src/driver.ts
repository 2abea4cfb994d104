import type { GatewaySettings } from "./openclaw-config.ts";

/** A JSON value a driver persists to find its runtime again (after a Reef restart, from any replica). */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

/** What a driver needs to start one workspace's gateway. */
export interface RuntimeSpec {
  workspaceId: string;
  /** The gateway's bearer token: full operator access, never leaves Reef. */
  token: string;
  /**
   * What the gateway serves. The driver renders `openclaw.json` from it with its
   * own port and paths, and writes it (mode 0600) into the runtime's private state
   * dir just before start, so provider keys never travel in env or argv.
   */
  gateway: GatewaySettings;
  limits: { memoryMb: number; cpus: number; pids: number };
  /**
   * Reef's side of the gateway's outbound traffic. When given, the gateway's
   * model providers point at Reef's LLM proxy (with `credentials`, never a
   * vendor key) and all its other HTTP(S) goes through Reef's forward proxy.
   */
  outbound?: RuntimeOutbound;
}

/**
 * One HTTP server per runtime that carries everything the gateway sends out:
 * requests under {@link LLM_PROXY_PATH} go to Reef's LLM proxy, `CONNECT` and
 * absolute-URI requests to its egress (forward) proxy. It knows which
 * workspace it serves; the credentials it accepts were minted for this start.
 */
export interface RuntimeOutbound {
  /** The credential the gateway presents to the LLM proxy, by provider id (as in `GatewaySettings.providers`). */
  credentials: Record<string, string>;
  /**
   * The credential the gateway presents to Reef's MCP proxy (under
   * {@link MCP_PROXY_PATH}); absent when the workspace has no HTTP connector.
   */
  mcpCredential?: string;
  /**
   * Serves this runtime's outbound traffic on a Unix socket at `path` (the
   * driver bridges it into the sandbox). `owner`: who must be able to connect
   * (the socket is chowned to them, mode 0600). Resolves once listening.
   */
  listen(path: string, owner?: { uid: number; gid: number }): Promise<{ close(): Promise<void> }>;
  /**
   * Serves it on a URL the gateway can reach (drivers whose gateways run on
   * another network: containers, pods). Absent where Reef offers none.
   */
  url?: string;
}

/** Where, under the outbound server, the LLM proxy serves: `<base>/llm/<providerId>/…` maps to the provider's base URL. */
export const LLM_PROXY_PATH = "/llm";

/**
 * Where, under the outbound server, Reef's MCP proxy serves: `<base>/mcp/<connectorId>`
 * is the connector's MCP endpoint (Reef adds its credentials), and
 * `<base>/mcp/<connectorId>/~/<path>` another path on the same server (legacy
 * SSE servers post messages to a path they name).
 */
export const MCP_PROXY_PATH = "/mcp";

/** A started runtime, as persisted in the runtimes table. */
export interface RuntimeHandle {
  workspaceId: string;
  state: JsonObject;
}

export type RuntimeStatus =
  /** `paused`: alive but frozen by {@link RuntimeDriver.pause}; it cannot answer until resumed. */
  | { status: "starting" | "running" | "paused" }
  /** `reason`: why it ended, where the driver knows more than the code (e.g. "killed by its memory limit"). */
  | { status: "exited"; code: number | null; reason?: string };

/**
 * The runtime driver contract, after JupyterHub's Spawner: one instance per
 * deployment; all it knows about a runtime lives in `state`, so any replica can
 * poll or stop it after a restart.
 */
export interface RuntimeDriver {
  readonly kind: "process" | "docker" | "kubernetes" | (string & {});
  /** Starts the gateway and resolves once it answers; rejects (and cleans up) if it cannot. */
  start(spec: RuntimeSpec, signal: AbortSignal): Promise<{ endpoint: URL; state: JsonObject }>;
  poll(handle: RuntimeHandle): Promise<RuntimeStatus>;
  stop(handle: RuntimeHandle, opts: { graceful: boolean }): Promise<void>;
  /**
   * Stops the runtime if it runs and removes its volumes and state for good
   * (the workspace was deleted). `handle.state` may be empty, for a runtime that
   * was stopped: the driver then finds what it created by the workspace id.
   */
  destroy(handle: RuntimeHandle): Promise<void>;
  /**
   * Freezes every process of the runtime (an idle workspace's first tier: it keeps its memory, uses no CPU, and
   * {@link resume} brings it back in well under a second). Drivers that cannot leave it out; the runtime is then
   * only ever stopped. Idempotent. `stop` works on a paused runtime.
   */
  pause?(handle: RuntimeHandle): Promise<void>;
  /** Thaws a paused runtime. Idempotent. @throws when the runtime is gone (the caller handles it as a crash). */
  resume?(handle: RuntimeHandle): Promise<void>;
  /**
   * Moves a paused runtime's memory out to swap, keeping a fraction resident (the deeper idle tier: far less
   * memory, a slower resume as the first turn faults back what it touches). Only on a paused runtime.
   * @returns bytes in use before and after; undefined where it cannot (no swap on the host, no memory group).
   */
  reclaim?(handle: RuntimeHandle): Promise<{ before: number; after: number } | undefined>;
  /** Resource use of a running runtime, where the driver can measure it. */
  stats?(handle: RuntimeHandle): Promise<{ rssBytes: number } | undefined>;
  /**
   * Checks that the runtime's endpoint is served by the runtime itself and by
   * nothing else (for drivers whose endpoint another tenant could contend for,
   * such as a loopback port). Cheap enough to run before every connection.
   * @throws GatewayIntegrityError when another process holds the endpoint.
   */
  verify?(handle: RuntimeHandle): Promise<void>;
  /**
   * Whether this Reef process started the runtime, for drivers whose runtimes
   * are its children (they stop when it shuts down; another replica's must not).
   */
  startedHere?(handle: RuntimeHandle): boolean;
}

/**
 * Something other than the workspace's own gateway holds (or contends for) its
 * endpoint: connecting would hand that process the gateway's traffic and bearer
 * token. The runtime must be treated as failed, audited, and its token rotated.
 */
export class GatewayIntegrityError extends Error {
  readonly details: Record<string, string | number>;
  constructor(message: string, details: Record<string, string | number>) {
    super(message);
    this.name = "GatewayIntegrityError";
    this.details = details;
  }
}
