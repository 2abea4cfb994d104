import type { RuntimeState, schema } from "@reef/db";

type Row = typeof schema.runtimes.$inferSelect;

/** A runtime as workspace admins and operators see it. */
export interface RuntimeView {
  workspaceId: string;
  state: RuntimeState;
  driver: string;
  startedAt: string | null;
  lastActivityAt: string | null;
  /** Set while the running gateway is paused (the idle tier before a stop); the next use resumes it. */
  pausedAt: string | null;
  /** Set while the paused gateway's memory is out in swap (the next use takes a little longer to answer). */
  swappedOutAt: string | null;
  stoppedAt: string | null;
  restarts: number;
  failureReason: string | null;
  /** How long a start usually takes here (see {@link expectedStartSeconds}); null until one was measured. */
  expectedStartSeconds: number | null;
}

/** Where to reach a running gateway. The token never leaves Reef. */
export interface RuntimeConnection {
  endpoint: URL;
  token: string;
}

/**
 * How long a person should expect a start to take: this workspace's last
 * measured start, else the platform's recent median (a first start), else
 * unknown. Whole seconds, at least 1.
 */
export function expectedStartSeconds(lastStartMs: number | null, platformMedianMs: number | null): number | null {
  const ms = lastStartMs ?? platformMedianMs;
  return ms === null ? null : Math.max(1, Math.round(ms / 1000));
}

export function toRuntimeView(row: Row, platformMedianMs: number | null = null): RuntimeView {
  return {
    workspaceId: row.workspaceId,
    state: row.state,
    driver: row.driver,
    startedAt: row.startedAt?.toISOString() ?? null,
    lastActivityAt: row.lastActivityAt?.toISOString() ?? null,
    pausedAt: row.state === "running" ? (row.pausedAt?.toISOString() ?? null) : null,
    swappedOutAt: row.state === "running" ? (row.swappedOutAt?.toISOString() ?? null) : null,
    stoppedAt: row.stoppedAt?.toISOString() ?? null,
    restarts: row.restarts,
    failureReason: row.failureReason,
    expectedStartSeconds: expectedStartSeconds(row.lastStartMs, platformMedianMs),
  };
}

/** A workspace whose runtime never ran (no row yet). */
export function neverStartedView(workspaceId: string, driver: string, platformMedianMs: number | null): RuntimeView {
  return {
    workspaceId,
    state: "stopped",
    driver,
    startedAt: null,
    lastActivityAt: null,
    pausedAt: null,
    swappedOutAt: null,
    stoppedAt: null,
    restarts: 0,
    failureReason: null,
    expectedStartSeconds: expectedStartSeconds(null, platformMedianMs),
  };
}
