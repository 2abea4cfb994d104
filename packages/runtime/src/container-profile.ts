/**
 * What every containerised gateway gets, whatever runs it: the hardened
 * per-tenant profile (after OpenClaw's fleet profile). Shared by the Docker and
 * Kubernetes spec builders so the two cannot drift apart.
 */
export const GATEWAY_UID = 10_001;
export const STATE_DIR = "/state";
export const CONFIG_PATH = `${STATE_DIR}/openclaw.json`;

/** Names a workspace's container objects: `reef-ws-` and the id, DNS-label safe. */
export function objectName(workspaceId: string): string {
  if (!/^[0-9a-f-]{36}$/i.test(workspaceId)) throw new Error(`not a workspace id: ${workspaceId}`);
  return `reef-ws-${workspaceId.toLowerCase()}`;
}

/**
 * The gateway image's entry point (deploy/docker/gateway-entry.sh). OpenClaw
 * gives a token-only backend client its operator scopes only over loopback, so
 * inside the container it listens on loopback and the entry point relays the
 * container's port to it, as the process driver's socket bridge does. Reef's
 * images have it; an image without it cannot serve Reef's chat.
 */
export const GATEWAY_ENTRYPOINT = ["/usr/local/bin/reef-gateway-entry"];

/** The entry point's arguments: the port the container listens on; no secrets. */
export function gatewayArgs(port: number): string[] {
  return [String(port)];
}

/** OpenClaw's embedding preset (docs/gateway/embedding.md) plus offline mode: every gateway gets it. */
export const EMBEDDING_ENV: Readonly<Record<string, string>> = {
  OPENCLAW_DISABLE_BONJOUR: "1",
  OPENCLAW_NO_RESPAWN: "1",
  OPENCLAW_SKIP_CHANNELS: "1",
  OPENCLAW_EXEC_SHELL_SNAPSHOT: "0",
  OPENCLAW_NO_AUTO_UPDATE: "1",
  OPENCLAW_OFFLINE: "1",
};

/**
 * Node settings for every gateway Reef runs. A 4 MB young generation (V8's
 * default is larger) trims ~110 MB of resident memory per gateway at no
 * measurable cost in start time or turn latency (measured side by side; see
 * `npm run bench`).
 */
export const GATEWAY_NODE_ENV: Readonly<Record<string, string>> = {
  NODE_OPTIONS: "--max-semi-space-size=4",
  // The gateway's update-status probe runs `npm root -g` after every start (no
  // setting turns it off); this keeps it from leaving a debug log behind each time.
  NPM_CONFIG_LOGS_MAX: "0",
};

/** The OpenClaw version an image tag names (`…/openclaw:2026.9.6`), if it names one. */
export function imageOpenclawVersion(image: string): string | undefined {
  return /:(\d{4}\.\d+\.\d+)$/.exec(image)?.[1];
}

/** The environment of a containerised gateway: paths, the embedding preset and Node settings, never a secret. */
export function gatewayEnv(): Record<string, string> {
  return {
    HOME: `${STATE_DIR}/home`,
    TMPDIR: "/tmp",
    OPENCLAW_CONFIG_PATH: CONFIG_PATH,
    OPENCLAW_STATE_DIR: STATE_DIR,
    ...EMBEDDING_ENV,
    ...GATEWAY_NODE_ENV,
  };
}

export interface ContainerLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
}
