import type { Db } from "@reef/db";
import type { GatewaySettings, RuntimeDriver, RuntimeOutbound } from "@reef/runtime";
import type { Sealer } from "../shared/sealing.ts";
import type { RuntimeCaps } from "./runtime-capacity.ts";

/** What the runtime manager is built from (see `createRuntimeManager`). */
export interface RuntimeManagerDeps {
  db: Db;
  driver: RuntimeDriver;
  /** Seals gateway tokens at rest (they are full operator access to the gateway). */
  sealer: Sealer;
  /**
   * What a workspace's gateway should serve. Read when the runtime row's settings version moved (or the policy key
   * changed) since this process last read it, not for every message (runtime-settings-cache.ts).
   */
  settingsFor: (workspaceId: string) => Promise<GatewaySettings>;
  /**
   * The platform-wide inputs of `settingsFor` (tool policy, connectors switch) as a string: a change reads the
   * settings again even where the workspace's version did not move. None: settings depend on the workspace only.
   */
  settingsPolicyKey?: () => Promise<string>;
  /**
   * The outbound side of one start (LLM credentials minted for it, and the
   * server carrying the gateway's traffic out through Reef); none: the gateway
   * is given no way out through Reef.
   */
  outbound?: (workspaceId: string, settings: GatewaySettings) => Promise<RuntimeOutbound>;
  /** Identifies this Reef process in start claims. */
  instanceId: string;
  /**
   * Idle time after which a gateway is stopped (paused or not). A number, or a function for a timeout operators can
   * change while Reef runs.
   */
  idleTimeoutMs: number | (() => Promise<number>);
  /** Idle time after which a gateway is paused, where the driver can (0 or absent: never paused). */
  pauseAfterMs?: number | (() => Promise<number>);
  /**
   * How long a gateway stays paused before its memory is moved out to swap (drivers with `reclaim`, hosts with
   * swap): less memory, a slower resume. Absent: never.
   */
  swapOutAfterMs?: number | (() => Promise<number>);
  startTimeoutMs: number;
  limits: { memoryMb: number; cpus: number; pids: number };
  /**
   * Kill a gateway whose resident memory exceeds `limits.memoryMb` at a health
   * check: for drivers that cannot set a hard limit (the process driver).
   */
  enforceMemoryLimit?: boolean;
  /** Delay before the one automatic restart after a crash. */
  restartBackoffMs?: number;
  /**
   * How long a runtime must run without trouble for its past crashes to be
   * forgotten, so a crash weeks later is restarted again rather than failed.
   * Default 10 minutes.
   */
  restartCountResetMs?: number;
  /** The caps on running gateways, read at each wake (0: no limit); none when absent. */
  caps?: () => Promise<RuntimeCaps>;
  /** How long a wake waits in line for room when the machine is full, before it fails. Default 2 minutes. */
  queueTimeoutMs?: number;
  /** How often a waiting wake looks for room (and proves it still waits). Default 1 s. */
  queuePollMs?: number;
  /**
   * When the machine is full and someone waits, the least recently used gateway
   * idle for this long is stopped to make room (0: never). Default 5 minutes.
   */
  evictIdleAfterMs?: number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}
