import { schema, type Tx, withScope } from "@reef/db";
import { GatewayIntegrityError, type JsonObject, type RuntimeHandle } from "@reef/runtime";
import { and, eq, isNull, sql } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";
import type { RuntimeManagerDeps } from "./runtime-manager-deps.ts";
import { neverStartedView, type RuntimeConnection, type RuntimeView, toRuntimeView } from "./runtime-view.ts";

const { runtimes } = schema;
export type RuntimeRow = typeof runtimes.$inferSelect;
type Row = RuntimeRow;

/** Who the runtime manager's own transitions are audited as. */
export const SYSTEM: RequestContext = { actor: { kind: "system", name: "runtime-manager" } };

/**
 * The runtime manager's reads and writes of one workspace's `runtimes` row:
 * locking it, turning it into a connection or a driver handle, conditional
 * transitions (each audited in the same transaction), and taking a runtime out
 * of service when something else holds its endpoint.
 */
export function createRuntimeRows(deps: Pick<RuntimeManagerDeps, "db" | "driver" | "sealer" | "log">) {
  const { db, driver } = deps;
  const scoped = <T>(workspaceId: string, fn: (tx: Tx) => Promise<T>) => withScope(db, { workspaceId }, fn);
  const platform = <T>(fn: (tx: Tx) => Promise<T>) => withScope(db, { platform: true }, fn);

  async function lockRow(tx: Tx, workspaceId: string): Promise<Row> {
    // Created if missing, locked and read in one round trip (every wake, so every message, pays for it): an
    // upsert's no-op update locks the row as `for update` would.
    const [row] = await tx
      .insert(runtimes)
      .values({ workspaceId, driver: driver.kind })
      .onConflictDoUpdate({ target: runtimes.workspaceId, set: { workspaceId: sql`excluded.workspace_id` } })
      .returning();
    if (!row) throw new Error("runtime row vanished");
    return row;
  }

  /**
   * Where a running gateway is reached; undefined when the row lacks it or the
   * token no longer opens (the root key changed without the old one in
   * REEF_SECRET_KEY_PREVIOUS): the caller then restarts the gateway with a fresh
   * token rather than failing every request.
   */
  function connectionOf(row: Row): RuntimeConnection | undefined {
    if (!row.endpoint || !row.tokenSealed) return undefined;
    try {
      return { endpoint: new URL(row.endpoint), token: deps.sealer.open(row.tokenSealed, row.workspaceId) };
    } catch {
      deps.log?.warn({ workspaceId: row.workspaceId }, "gateway token does not open under the configured root keys");
      return undefined;
    }
  }

  function handleOf(row: Row): RuntimeHandle | undefined {
    return row.handle ? { workspaceId: row.workspaceId, state: row.handle as JsonObject } : undefined;
  }

  async function transition(
    workspaceId: string,
    set: Partial<typeof runtimes.$inferInsert>,
    audit?: { action: string; details?: Record<string, unknown>; outcome?: "success" | "failure" },
  ) {
    await scoped(workspaceId, async (tx) => {
      await tx
        .update(runtimes)
        .set({ ...set, updatedAt: new Date() })
        .where(eq(runtimes.workspaceId, workspaceId));
      if (audit) await appendAudit(tx, SYSTEM, { workspaceId, targetType: "runtime", targetId: workspaceId, ...audit });
    });
  }

  /**
   * The row is still exactly what a sweep observed: same state, gateway, token
   * and crash count. A sweep's write is conditional on it, so it never
   * overwrites a runtime someone (a person's wake, another replica) moved on.
   */
  function unchangedSince(row: Row) {
    return and(
      eq(runtimes.workspaceId, row.workspaceId),
      eq(runtimes.state, row.state),
      row.endpoint === null ? isNull(runtimes.endpoint) : eq(runtimes.endpoint, row.endpoint),
      row.tokenSealed === null ? isNull(runtimes.tokenSealed) : eq(runtimes.tokenSealed, row.tokenSealed),
      row.handle === null ? isNull(runtimes.handle) : sql`${runtimes.handle} = ${JSON.stringify(row.handle)}::jsonb`,
      eq(runtimes.restarts, row.restarts),
    );
  }

  /** {@link transition} only if the row is as `observed`. @returns whether it applied. */
  async function transitionIf(
    observed: Row,
    set: Partial<typeof runtimes.$inferInsert>,
    audit: { action: string; details?: Record<string, unknown>; outcome?: "success" | "failure" },
    ctx: RequestContext = SYSTEM,
  ): Promise<boolean> {
    const workspaceId = observed.workspaceId;
    return scoped(workspaceId, async (tx) => {
      const moved = await tx
        .update(runtimes)
        .set({ ...set, updatedAt: new Date() })
        .where(unchangedSince(observed))
        .returning({ id: runtimes.workspaceId });
      if (!moved.length) return false;
      await appendAudit(tx, ctx, { workspaceId, targetType: "runtime", targetId: workspaceId, ...audit });
      return true;
    });
  }

  /** @returns the driver's integrity error when something else holds the runtime's endpoint. */
  async function verifyEndpoint(handle: RuntimeHandle): Promise<GatewayIntegrityError | undefined> {
    try {
      await driver.verify?.(handle);
      return undefined;
    } catch (err) {
      if (err instanceof GatewayIntegrityError) return err;
      throw err;
    }
  }

  /** The median of the starts measured across the platform in the last week (ms), for a workspace never started. */
  async function medianStartMs(): Promise<number | null> {
    const [row] = await platform((tx) =>
      tx
        .select({
          ms: sql<number | null>`percentile_cont(0.5) within group (order by ${runtimes.lastStartMs})`.mapWith(
            (v: unknown) => (v === null ? null : Number(v)),
          ),
        })
        .from(runtimes)
        .where(and(sql`${runtimes.lastStartMs} is not null`, sql`${runtimes.updatedAt} > now() - interval '7 days'`)),
    );
    return row?.ms ?? null;
  }

  /**
   * Another process holds (or held) a running gateway's endpoint: the gateway is
   * killed, the runtime marked failed and audited, and its token dropped, so
   * nothing is sent there again; the next use starts a fresh gateway.
   */
  async function quarantine(ctx: RequestContext, observed: Row, err: GatewayIntegrityError): Promise<void> {
    const { workspaceId } = observed;
    deps.log?.warn({ workspaceId, details: err.details }, "runtime endpoint held by another process");
    const handle = handleOf(observed);
    if (handle) await driver.stop(handle, { graceful: false }).catch(() => {});
    const reason = err.message.slice(0, 500);
    await transitionIf(
      observed,
      { state: "failed", failureReason: reason, handle: null, endpoint: null, tokenSealed: null },
      { action: "runtime.integrity_failure", outcome: "failure", details: { reason, ...err.details } },
      ctx,
    );
  }

  /**
   * A gateway found dead: killed for good measure and marked stopped, audited as
   * a crash, unless someone (the health check, another replica) moved it on meanwhile.
   */
  async function markCrashed(observed: Row, reason: string): Promise<boolean> {
    const handle = handleOf(observed);
    if (handle) await driver.stop(handle, { graceful: false }).catch(() => {});
    return transitionIf(
      observed,
      {
        state: "stopped",
        failureReason: reason,
        handle: null,
        endpoint: null,
        tokenSealed: null,
        stoppedAt: new Date(),
      },
      { action: "runtime.crash", outcome: "failure", details: { reason } },
    );
  }

  /**
   * Thaws a paused gateway while its row is locked (a pause sweep cannot interleave), marks it used and audits it.
   * @returns false when it is gone (killed while paused): the caller handles it as a crash.
   */
  async function resumeLocked(tx: Tx, ctx: RequestContext, row: Row): Promise<boolean> {
    const handle = handleOf(row);
    const pausedMs = row.pausedAt ? Date.now() - row.pausedAt.getTime() : 0;
    try {
      if (!handle || !driver.resume) throw new Error("this driver cannot resume a paused runtime");
      await driver.resume(handle);
    } catch (err) {
      deps.log?.warn({ workspaceId: row.workspaceId, err }, "a paused runtime could not be resumed");
      return false;
    }
    await tx
      .update(runtimes)
      .set({ pausedAt: null, swappedOutAt: null, lastActivityAt: new Date(), updatedAt: new Date() })
      .where(eq(runtimes.workspaceId, row.workspaceId));
    await appendAudit(tx, ctx, {
      workspaceId: row.workspaceId,
      action: "runtime.resume",
      targetType: "runtime",
      targetId: row.workspaceId,
      details: { pausedMinutes: Math.floor(pausedMs / 60_000), swappedOut: row.swappedOutAt !== null },
    });
    return true;
  }

  /** A workspace's runtime as the API shows it (never started: the platform's median start as its estimate). */
  async function view(workspaceId: string): Promise<RuntimeView> {
    const [row] = await scoped(workspaceId, (tx) =>
      tx.select().from(runtimes).where(eq(runtimes.workspaceId, workspaceId)),
    );
    const median = row?.lastStartMs == null ? await medianStartMs() : null;
    return row ? toRuntimeView(row, median) : neverStartedView(workspaceId, driver.kind, median);
  }

  return {
    view,
    scoped,
    platform,
    lockRow,
    connectionOf,
    handleOf,
    transition,
    unchangedSince,
    transitionIf,
    verifyEndpoint,
    quarantine,
    markCrashed,
    medianStartMs,
    resumeLocked,
  };
}
