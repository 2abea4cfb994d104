import { GatewayIntegrityError, type JsonObject } from "../driver.ts";
import { unixEndpoint } from "../gateway-endpoint.ts";

/** What the process driver is built from (see {@link ProcessDriver} in process-driver.ts). */
export interface ProcessDriverOptions {
  /** Where runtimes live: one private directory per workspace. */
  rootDir: string;
  /** The Node binary the gateway runs on (OpenClaw needs ≥ 24.16). */
  nodePath?: string;
  /**
   * OpenClaw's launcher (`openclaw.mjs`); default: the installed package's. Given
   * when gateways' OS users cannot enter the install (a mirror of it elsewhere).
   */
  openclawEntry?: string;
  /** Run each workspace's gateway as its own unprivileged OS user. Only possible as root; default: when root. */
  separateUsers?: boolean;
  /**
   * Run each gateway inside a bubblewrap sandbox (see sandbox.ts). Default: where
   * this host can ({@link probeSandbox}). `true` where it cannot throws; `false`
   * is for tests and benchmarks that need an unconfined gateway to compare with.
   */
  sandbox?: boolean;
  /**
   * Tests only: no sandbox, and shell and file tools kept, to show what an
   * unconfined agent can do (the attack test's control run). Never for operators.
   */
  unconfinedForTests?: boolean;
  /**
   * The operator's MCP servers directory (`REEF_MCP_SERVERS_DIR`), already
   * checked at start (`checkMcpServersDir`): mounted read-only into every sandbox
   * at the same path, for the catalogue's stdio servers.
   */
  mcpServersDir?: string;
  /** Loopback port range for unsandboxed gateways; each takes a block of 120. */
  ports?: { from: number; to: number };
  readyTimeoutMs?: number;
  /** Gateway output, line by line. */
  onLog?: (workspaceId: string, line: string) => void;
  /** Something operators should know about the host (e.g. limits that cannot be enforced). */
  onWarning?: (message: string) => void;
}

/** What the process driver persists about a started gateway (a runtime's `state`). */
export interface ProcessState extends JsonObject {
  pid: number;
  /** The gateway's port: inside its own network namespace when sandboxed, else on the host's loopback. */
  port: number;
  dir: string;
  user: string | null;
  /** The uid the gateway runs as (its own, or Reef's): its listener or socket must belong to it. */
  uid: number;
  /** Control groups holding the whole process tree, where Reef could create them. */
  cgroup: { version: 1 | 2; dirs: string[] } | null;
  /** A sandboxed gateway's socket, Reef's only way in (absent in state from before sandboxes: unsandboxed). */
  socket?: string | null;
  /** An unsandboxed gateway's bridge to Reef's outbound socket, on the host's loopback. */
  outboundPort?: number | null;
}

/** The last port of an unsandboxed gateway's block carries its outbound bridge (OpenClaw uses up to base+110). */
export const OUTBOUND_PORT_OFFSET = 119;

/** The integrity error for a port some other process listens on. */
export function hijacked(port: number, v: { address: string; uid: number; inode: number }): GatewayIntegrityError {
  return new GatewayIntegrityError(
    `another process (uid ${v.uid}) listens on the gateway's port ${port}: nothing was sent to it`,
    { port, address: v.address, uid: v.uid },
  );
}

/** Where Reef reaches a started gateway: its socket when sandboxed, else its loopback port. */
export function endpointOf(state: ProcessState): URL {
  return state.socket ? unixEndpoint(state.socket) : new URL(`http://127.0.0.1:${state.port}`);
}
