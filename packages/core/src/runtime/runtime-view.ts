import type { RuntimeState, schema } from "@reef/db";

type Row = typeof schema.runtimes.$inferSelect;

/** A runtime as workspace admins and operators see it. */
export interface RuntimeView {
  workspaceId: string;
  state: RuntimeState;
  driver: string;
  startedAt: string | null;
  lastActivityAt: string | null;
  stoppedAt: string | null;
  restarts: number;
  failureReason: string | null;
}

/** Where to reach a running gateway. The token never leaves Reef. */
export interface RuntimeConnection {
  endpoint: URL;
  token: string;
}

export function toRuntimeView(row: Row): RuntimeView {
  return {
    workspaceId: row.workspaceId,
    state: row.state,
    driver: row.driver,
    startedAt: row.startedAt?.toISOString() ?? null,
    lastActivityAt: row.lastActivityAt?.toISOString() ?? null,
    stoppedAt: row.stoppedAt?.toISOString() ?? null,
    restarts: row.restarts,
    failureReason: row.failureReason,
  };
}
