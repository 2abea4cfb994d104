import { type Db, schema, withWorkspace } from "@reef/db";
import { sql } from "drizzle-orm";
import type { EgressRefusalReason } from "./egress-policy.ts";

const { egressRefusals } = schema;

/** One refused connection, as the proxy reports it. */
export interface EgressRefusal {
  workspaceId: string;
  host: string;
  port: number;
  reason: EgressRefusalReason;
}

interface Pending extends EgressRefusal {
  day: string;
  count: number;
  lastAt: Date;
}

export interface EgressRefusalRecorderDeps {
  db: Db;
  log?: { warn(obj: object, msg: string): void } | undefined;
  /** How long refusals gather in memory before they are written (one upsert per destination, not per refusal). */
  flushMs?: number | undefined;
  /** Distinct destinations held between writes; past it, new ones are dropped (and logged) until the next write. */
  maxPending?: number | undefined;
}

/**
 * Counts refused connections in `egress_refusals`, per workspace, UTC day,
 * host, port and reason. The proxy answers first and never waits for this:
 * refusals gather in memory and are written every `flushMs`, one statement per
 * workspace, so a gateway hammering a blocked address costs one row update a
 * second, not one per attempt. A write that fails is logged and dropped.
 */
export function createEgressRefusalRecorder(deps: EgressRefusalRecorderDeps) {
  const flushMs = deps.flushMs ?? 1000;
  const maxPending = deps.maxPending ?? 5000;
  let pending = new Map<string, Pending>();
  let timer: NodeJS.Timeout | undefined;
  let dropped = 0;
  let inFlight: Promise<void> = Promise.resolve();

  async function write(batch: Map<string, Pending>): Promise<void> {
    const byWorkspace = new Map<string, Pending[]>();
    for (const p of batch.values()) {
      const list = byWorkspace.get(p.workspaceId) ?? [];
      list.push(p);
      byWorkspace.set(p.workspaceId, list);
    }
    for (const [workspaceId, rows] of byWorkspace) {
      try {
        await withWorkspace(deps.db, workspaceId, (tx) =>
          tx
            .insert(egressRefusals)
            .values(
              rows.map(({ workspaceId: w, day, host, port, reason, count, lastAt }) => ({
                workspaceId: w,
                day,
                host,
                port,
                reason,
                count,
                lastAt,
              })),
            )
            .onConflictDoUpdate({
              target: [
                egressRefusals.workspaceId,
                egressRefusals.day,
                egressRefusals.host,
                egressRefusals.port,
                egressRefusals.reason,
              ],
              set: {
                count: sql`${egressRefusals.count} + excluded.count`,
                lastAt: sql`greatest(${egressRefusals.lastAt}, excluded.last_at)`,
              },
            }),
        );
      } catch (err) {
        // A workspace deleted meanwhile (foreign key) or a database hiccup: counts are not worth a retry loop.
        deps.log?.warn({ err, workspaceId, destinations: rows.length }, "could not count refused egress");
      }
    }
  }

  function flush(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = new Map();
    if (dropped) {
      deps.log?.warn({ dropped }, "too many distinct refused destinations at once: some were not counted");
      dropped = 0;
    }
    // Writes run one after another, so a slow database never has two batches racing for the same rows.
    inFlight = inFlight.then(() => (batch.size ? write(batch) : undefined));
    return inFlight;
  }

  return {
    /** Counts one refusal; returns at once. */
    record(r: EgressRefusal): void {
      if (r.reason === "unknown_workspace") return;
      const now = new Date();
      const day = now.toISOString().slice(0, 10);
      const host = r.host.slice(0, 253);
      const key = JSON.stringify([r.workspaceId, day, host, r.port, r.reason]);
      const hit = pending.get(key);
      if (hit) {
        hit.count += 1;
        hit.lastAt = now;
      } else if (pending.size >= maxPending) {
        dropped += 1;
      } else {
        pending.set(key, { ...r, host, day, count: 1, lastAt: now });
      }
      if (!timer) {
        timer = setTimeout(() => void flush(), flushMs);
        timer.unref();
      }
    },
    /** Writes what has gathered (tests, and shutdown). */
    flush,
    /** Stops the timer after a last write. */
    async close(): Promise<void> {
      await flush();
    },
  };
}

export type EgressRefusalRecorder = ReturnType<typeof createEgressRefusalRecorder>;
