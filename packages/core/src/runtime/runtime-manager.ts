import { randomBytes } from "node:crypto";
import { UnavailableError } from "@reef/contracts";
import { schema, withScope } from "@reef/db";
import { GatewayIntegrityError, type GatewaySettings, type JsonObject, type RuntimeHandle } from "@reef/runtime";
import { and, eq, gt, lt } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";
import { admit, leastRecentlyUsedIdle, stillFull, wakeProgress } from "./runtime-capacity.ts";
import { createIdleTiers } from "./runtime-idle.ts";
import { createLookAhead, type InflightWake, NotRunning } from "./runtime-look-ahead.ts";
import type { RuntimeManagerDeps } from "./runtime-manager-deps.ts";
import { reconcileRuntimes } from "./runtime-reconcile.ts";
import { createRuntimeRows, type RuntimeRow, SYSTEM } from "./runtime-rows.ts";
import { createSettingsCache } from "./runtime-settings-cache.ts";
import { type RuntimeConnection, type RuntimeView, toRuntimeView } from "./runtime-view.ts";

export type { RuntimeAhead } from "./runtime-look-ahead.ts";
export type { RuntimeManagerDeps } from "./runtime-manager-deps.ts";
export { type RuntimeConnection, type RuntimeView, toRuntimeView } from "./runtime-view.ts";

const { runtimes } = schema;

const TOUCH_EVERY_MS = 30_000;

/** An exited gateway's failure reason: its code, and why where the driver knows (a memory-limit kill). */
const exitedReason = (s: { code: number | null; reason?: string }) =>
  `the gateway exited unexpectedly (code ${s.code ?? "unknown"}${s.reason ? `: ${s.reason}` : ""})`;

/**
 * Owns the lifecycle of workspace runtimes: wakes a stopped workspace on first use
 * (one start per workspace, also across replicas: the runtime row's lock decides
 * who claims it), stops idle ones, restarts on a settings change, restarts a
 * crashed one once and then marks it failed, and reconciles its table with what
 * the driver sees after a restart. Every transition is audited.
 */
export function createRuntimeManager(deps: RuntimeManagerDeps) {
  const { db, driver } = deps;
  const claimTtlMs = deps.startTimeoutMs + 30_000;
  const restartCountResetMs = deps.restartCountResetMs ?? 10 * 60_000;
  const settingsCache = createSettingsCache({ settingsFor: deps.settingsFor });
  const inflight = new Map<string, InflightWake>();
  const queueTimeoutMs = deps.queueTimeoutMs ?? 120_000;
  const queuePollMs = deps.queuePollMs ?? 1_000;
  // A waiter polls every queuePollMs; one silent for several polls has left the line.
  const queueStaleMs = queuePollMs * 5 + 5_000;
  const evictIdleAfterMs = deps.evictIdleAfterMs ?? 5 * 60_000;

  const rows = createRuntimeRows(deps);
  const {
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
    view: runtimeView,
    resumeLocked,
  } = rows;

  const tiers = createIdleTiers({
    driver,
    rows,
    idleTimeoutMs: deps.idleTimeoutMs,
    pauseAfterMs: deps.pauseAfterMs ?? 0,
    ...(deps.swapOutAfterMs !== undefined ? { swapOutAfterMs: deps.swapOutAfterMs } : {}),
    stop: (workspaceId, reason, idleBefore) => stopRuntime(SYSTEM, workspaceId, reason, idleBefore),
    ...(deps.log ? { log: deps.log } : {}),
  });

  async function startClaimed(
    workspaceId: string,
    token: string,
    settings: GatewaySettings,
    ctx: RequestContext,
  ): Promise<RuntimeConnection> {
    const started = Date.now();
    try {
      // Fresh LLM credentials at every start (the previous gateway's stop working); not part of the settings hash.
      const outbound = deps.outbound ? await deps.outbound(workspaceId, settings) : undefined;
      const { endpoint, state } = await driver.start(
        { workspaceId, token, gateway: settings, limits: deps.limits, ...(outbound ? { outbound } : {}) },
        AbortSignal.timeout(deps.startTimeoutMs),
      );
      await scoped(workspaceId, async (tx) => {
        await tx
          .update(runtimes)
          .set({
            state: "running",
            endpoint: endpoint.toString(),
            handle: state,
            claimedBy: null,
            claimedAt: null,
            failureReason: null,
            startedAt: new Date(),
            lastStartMs: Date.now() - started,
            lastActivityAt: new Date(),
            pausedAt: null,
            swappedOutAt: null,
            updatedAt: new Date(),
          })
          .where(eq(runtimes.workspaceId, workspaceId));
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "runtime.ready",
          targetType: "runtime",
          targetId: workspaceId,
          details: { driver: driver.kind, ms: Date.now() - started },
        });
      });
      deps.log?.info({ workspaceId, ms: Date.now() - started }, "runtime ready");
      return { endpoint, token };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const integrity = err instanceof GatewayIntegrityError;
      await transition(
        workspaceId,
        {
          state: "failed",
          failureReason: reason.slice(0, 500),
          claimedBy: null,
          claimedAt: null,
          handle: null,
          endpoint: null,
          // The token was never sent to a stranger (the driver checks first), but it is not kept either.
          ...(integrity ? { tokenSealed: null } : {}),
        },
        {
          action: integrity ? "runtime.integrity_failure" : "runtime.failed",
          outcome: "failure",
          details: { reason: reason.slice(0, 500), ...(integrity ? err.details : {}) },
        },
      );
      deps.log?.warn({ workspaceId, err }, "runtime failed to start");
      throw new UnavailableError(
        "Your workspace could not be started. Try again in a moment; if it keeps failing, ask an administrator.",
        { cause: err },
      );
    }
  }

  /**
   * Where the driver has no hard memory limit of its own (the process driver: no
   * cgroups), the health check enforces it: a gateway above the limit is killed
   * and handled like a crash. @returns the reason, or undefined when within it.
   */
  async function overMemory(handle: RuntimeHandle): Promise<string | undefined> {
    if (!deps.enforceMemoryLimit || !driver.stats) return undefined;
    const stats = await driver.stats(handle).catch(() => undefined);
    const limit = deps.limits.memoryMb * 1024 * 1024;
    if (!stats || stats.rssBytes <= limit) return undefined;
    return `the gateway used ${Math.round(stats.rssBytes / 1048576)} MB, above its ${deps.limits.memoryMb} MB limit`;
  }

  /** @param probe only a running (or paused) gateway is readied; told what the row says once it is locked. */
  async function wake(
    ctx: RequestContext,
    workspaceId: string,
    waiters: Set<(position: number) => void>,
    probe?: (row: RuntimeRow) => void,
  ): Promise<RuntimeConnection> {
    const deadline = Date.now() + claimTtlMs;
    let queued: { since: number; position: number } | undefined;
    for (;;) {
      const policyKey = (await deps.settingsPolicyKey?.()) ?? "";
      const caps = await deps.caps?.();
      // The platform scope too: the caps count gateways across workspaces.
      const decision = await withScope(db, { workspaceId, platform: true }, async (tx) => {
        const row = await lockRow(tx, workspaceId);
        if (probe) {
          probe(row);
          if (row.state !== "running") return { kind: "idle" as const };
        }
        const current = settingsCache.current(workspaceId, row.settingsVersion, policyKey);
        if (!current) return { kind: "settings" as const, version: row.settingsVersion };
        const configHash = current.hash;
        const claimFresh = row.claimedAt !== null && Date.now() - row.claimedAt.getTime() < claimTtlMs;
        const connection = row.state === "running" ? connectionOf(row) : undefined;
        if (connection && row.configHash === configHash) {
          if (row.pausedAt) {
            const resumed = await resumeLocked(tx, ctx, row);
            return resumed ? { kind: "ready" as const, connection, row } : { kind: "lost" as const, row };
          }
          if (!row.lastActivityAt || Date.now() - row.lastActivityAt.getTime() > TOUCH_EVERY_MS) {
            await tx.update(runtimes).set({ lastActivityAt: new Date() }).where(eq(runtimes.workspaceId, workspaceId));
          }
          return { kind: "ready" as const, connection, row };
        }
        if ((row.state === "starting" || row.state === "stopping") && claimFresh) return { kind: "wait" as const };
        // Ours to start: stopped, failed, a stale claim, or running with old settings or an unreadable token.
        const previous = row.state === "running" ? handleOf(row) : undefined;
        const why = connection ? "settings changed" : "token unreadable";
        if (!previous && caps) {
          // A new gateway (a restart replaces one): within the caps, or in line for room.
          const canWait = waiters.size > 0;
          const admission = await admit(tx, {
            row,
            caps,
            ctx,
            instanceId: deps.instanceId,
            claimTtlMs,
            queueStaleMs,
            canWait,
          });
          if (admission.kind === "queued") {
            if (admission.firstTime)
              await appendAudit(tx, ctx, {
                workspaceId,
                action: "runtime.queue",
                targetType: "runtime",
                targetId: workspaceId,
                details: { position: admission.position, maxRuntimes: caps.total },
              });
            return admission;
          }
          if (admission.kind === "refused") return admission;
        }
        const token = randomBytes(32).toString("base64url");
        await tx
          .update(runtimes)
          .set({
            state: "starting",
            driver: driver.kind,
            claimedBy: deps.instanceId,
            claimedAt: new Date(),
            tokenSealed: deps.sealer.seal(token, workspaceId),
            configHash,
            updatedAt: new Date(),
          })
          .where(eq(runtimes.workspaceId, workspaceId));
        await appendAudit(tx, ctx, {
          workspaceId,
          action: previous ? "runtime.restart" : "runtime.start",
          targetType: "runtime",
          targetId: workspaceId,
          details: { from: row.state, ...(previous ? { reason: why } : {}) },
        });
        return { kind: "start" as const, token, previous, settings: current.settings };
      });
      if (decision.kind === "idle") throw new NotRunning();
      if (decision.kind === "lost") {
        await markCrashed(decision.row, "the gateway exited while paused");
        continue;
      }
      if (decision.kind === "settings") {
        // Read outside the row lock (the read has a connection of its own), then decide again with them.
        await settingsCache.load(workspaceId, decision.version, policyKey);
        continue;
      }
      if (decision.kind === "ready") {
        // Before the token goes anywhere: is the endpoint still the gateway's own?
        const handle = handleOf(decision.row);
        const hijack = handle && driver.verify ? await verifyEndpoint(handle) : undefined;
        if (!hijack) return decision.connection;
        // Gone with the replica that ran it (its sandbox dies with its parent): a crash, not a stranger.
        if (handle && (await driver.poll(handle)).status === "exited") {
          await markCrashed(decision.row, "the gateway exited unexpectedly (its Reef went away)");
          continue;
        }
        await quarantine(ctx, decision.row, hijack);
        continue; // the next round starts a fresh gateway, with a fresh token
      }
      if (decision.kind === "refused") throw decision.error;
      if (decision.kind === "start") {
        if (queued) for (const waiter of waiters) waiter(0);
        if (decision.previous) await driver.stop(decision.previous, { graceful: true }).catch(() => {});
        return startClaimed(workspaceId, decision.token, decision.settings, ctx);
      }
      if (decision.kind === "queued") {
        queued = { since: queued?.since ?? Date.now(), position: decision.position };
        const waited = Date.now() - queued.since;
        if (!caps || waiters.size === 0 || waited > queueTimeoutMs) {
          await leaveQueue(workspaceId);
          throw stillFull(caps?.total ?? 0, waited, queued.position);
        }
        for (const waiter of waiters) waiter(decision.position);
        // The head of the line makes room by stopping a gateway nobody has used for a while.
        if (decision.position === 1) await evictIdle();
        await new Promise((r) => setTimeout(r, queuePollMs));
        continue;
      }
      if (Date.now() > deadline) throw new UnavailableError("Your workspace is still starting. Try again in a moment.");
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Takes a wake out of the line (it gave up, or nobody waits for it any more). */
  async function leaveQueue(workspaceId: string): Promise<void> {
    await scoped(workspaceId, (tx) =>
      tx
        .update(runtimes)
        .set({ state: "stopped", claimedBy: null, claimedAt: null, updatedAt: new Date() })
        .where(and(eq(runtimes.workspaceId, workspaceId), eq(runtimes.state, "queued"))),
    );
  }

  async function evictIdle(): Promise<void> {
    if (evictIdleAfterMs <= 0) return;
    const idleBefore = new Date(Date.now() - evictIdleAfterMs);
    const victim = await platform((tx) => leastRecentlyUsedIdle(tx, idleBefore));
    if (!victim) return;
    await stopRuntime(SYSTEM, victim, "making room for a waiting workspace", idleBefore).catch((err: unknown) =>
      deps.log?.warn({ workspaceId: victim, err }, "could not stop an idle runtime to make room"),
    );
  }

  /** @param idleBefore only if the runtime has not been used since (a used one is left alone). */
  async function stopRuntime(
    ctx: RequestContext,
    workspaceId: string,
    reason: string,
    idleBefore?: Date,
  ): Promise<boolean> {
    const claimed = await scoped(workspaceId, async (tx) => {
      const row = await lockRow(tx, workspaceId);
      if (row.state !== "running" && row.state !== "failed") return undefined;
      if (idleBefore && (!row.lastActivityAt || row.lastActivityAt >= idleBefore)) return undefined;
      await tx
        .update(runtimes)
        .set({ state: "stopping", claimedBy: deps.instanceId, claimedAt: new Date(), updatedAt: new Date() })
        .where(eq(runtimes.workspaceId, workspaceId));
      return handleOf(row) ?? null;
    });
    if (claimed === undefined) return false;
    if (claimed) await driver.stop(claimed, { graceful: true });
    await scoped(workspaceId, async (tx) => {
      await tx
        .update(runtimes)
        .set({
          state: "stopped",
          handle: null,
          endpoint: null,
          tokenSealed: null,
          claimedBy: null,
          claimedAt: null,
          stoppedAt: new Date(),
          updatedAt: new Date(),
        })
        .where(eq(runtimes.workspaceId, workspaceId));
      await appendAudit(tx, ctx, {
        workspaceId,
        action: "runtime.stop",
        targetType: "runtime",
        targetId: workspaceId,
        details: { reason },
      });
    });
    return true;
  }

  /**
   * The running gateway of a workspace, started if needed (wake on request).
   * Concurrent callers, in this process or another replica, share one start.
   */
  function ensureRunning(
    ctx: RequestContext,
    workspaceId: string,
    onQueued?: (position: number) => void,
  ): Promise<RuntimeConnection> {
    let pending = inflight.get(workspaceId);
    if (pending?.probe) {
      // A look-ahead that may find nothing running: then this wake starts it (the look-ahead has left the map).
      return pending.promise.catch((err: unknown) =>
        err instanceof NotRunning ? ensureRunning(ctx, workspaceId, onQueued) : Promise.reject(err),
      );
    }
    if (!pending) {
      const waiters = new Set<(position: number) => void>();
      const promise = wake(ctx, workspaceId, waiters).finally(() => inflight.delete(workspaceId));
      pending = { promise, waiters };
      inflight.set(workspaceId, pending);
    }
    if (onQueued) {
      const { waiters } = pending;
      waiters.add(onQueued);
      pending.promise.finally(() => waiters.delete(onQueued)).catch(() => {});
    }
    return pending.promise;
  }

  const readyIfRunning = createLookAhead({ inflight, wake, view: runtimeView, medianStartMs });

  return {
    ensureRunning,
    /** A turn's look-ahead (runtime-look-ahead.ts): readies a running gateway, never starts a stopped one. */
    readyIfRunning,
    /**
     * {@link ensureRunning} for a caller that shows progress (the chat stream):
     * yields the wake's place in line while the machine is full and returns the
     * connection. Leaving early (the client went away) takes the wake out of line
     * if nobody else waits for it.
     */
    ensureRunningWithProgress(ctx: RequestContext, workspaceId: string, signal?: AbortSignal) {
      return wakeProgress(
        (onQueued) => ({
          promise: ensureRunning(ctx, workspaceId, onQueued),
          leave: () => inflight.get(workspaceId)?.waiters.delete(onQueued),
        }),
        signal,
      );
    },

    get: runtimeView,

    /** Stops a workspace's runtime; false if it was not running. */
    stop: stopRuntime,

    /** Pauses gateways idle past the pause timeout (drivers that can). @returns the workspaces paused. */
    pauseIdle: tiers.pauseIdle,

    /** Moves paused gateways' memory to swap once paused long enough (drivers and hosts that can). */
    swapOutIdle: tiers.swapOutIdle,

    /** Stops gateways idle past the idle timeout, paused or not. @returns the workspaces stopped. */
    reapIdle: tiers.reapIdle,

    /**
     * Polls every running runtime. One that died is restarted once (after a
     * backoff); if it dies again it is marked failed with the reason.
     */
    async checkHealth(): Promise<void> {
      // Waiters whose Reef died left the line without saying so.
      await platform((tx) =>
        tx
          .update(runtimes)
          .set({ state: "stopped", claimedBy: null, claimedAt: null, updatedAt: new Date() })
          .where(and(eq(runtimes.state, "queued"), lt(runtimes.updatedAt, new Date(Date.now() - queueStaleMs)))),
      );
      const rows = await platform((tx) => tx.select().from(runtimes).where(eq(runtimes.state, "running")));
      for (const row of rows) {
        const handle = handleOf(row);
        if (!handle) continue;
        const status = await driver.poll(handle);
        const hijack = status.status !== "exited" && driver.verify ? await verifyEndpoint(handle) : undefined;
        if (hijack) {
          await quarantine(SYSTEM, row, hijack);
          continue;
        }
        let reason: string;
        if (status.status === "exited") {
          reason = exitedReason(status);
        } else {
          const over = await overMemory(handle);
          if (!over) {
            const healthySince = row.startedAt?.getTime() ?? Date.now();
            if (row.restarts > 0 && Date.now() - healthySince > restartCountResetMs) {
              await scoped(row.workspaceId, (tx) =>
                tx.update(runtimes).set({ restarts: 0 }).where(unchangedSince(row)),
              );
            }
            continue;
          }
          reason = over;
        }
        // Only this gateway, the one polled: whatever replaced it meanwhile is left alone.
        await driver.stop(handle, { graceful: false }).catch(() => {});
        // Every write below is conditional on the row the sweep read: a person
        // may have found the gateway dead and started a new one since (or a
        // replica may be starting one), and that runtime is theirs.
        if (row.restarts >= 1) {
          await transitionIf(
            row,
            { state: "failed", failureReason: `${reason} again after a restart`, handle: null, endpoint: null },
            { action: "runtime.failed", outcome: "failure", details: { reason, restarts: row.restarts } },
          );
          continue;
        }
        const mine = await transitionIf(
          row,
          { state: "stopped", restarts: row.restarts + 1, failureReason: reason, handle: null, endpoint: null },
          { action: "runtime.crash", outcome: "failure", details: { reason } },
        );
        if (!mine) continue;
        await new Promise((r) => setTimeout(r, deps.restartBackoffMs ?? 1_000));
        // The same single start as a person's wake: joins one in flight, or finds it running.
        await ensureRunning(SYSTEM, row.workspaceId).catch((err: unknown) =>
          deps.log?.warn({ workspaceId: row.workspaceId, err }, "restart after crash failed"),
        );
      }
    },

    /**
     * After a Reef restart: keeps (adopts) runtimes the driver still sees running or paused,
     * and marks the rest stopped, releasing claims a dead process left behind.
     */
    reconcile: () => reconcileRuntimes(rows, driver, { claimTtlMs, instanceId: deps.instanceId }),

    /**
     * A caller could not reach a runtime the table says is running. If the driver
     * sees it gone, it is marked stopped (audited as a crash) so the next use
     * starts a fresh one. @returns true when the runtime is gone.
     */
    async reportUnreachable(workspaceId: string): Promise<boolean> {
      const [row] = await scoped(workspaceId, (tx) =>
        tx.select().from(runtimes).where(eq(runtimes.workspaceId, workspaceId)),
      );
      if (row?.state !== "running") return true;
      const handle = handleOf(row);
      const status = handle ? await driver.poll(handle) : ({ status: "exited", code: null } as const);
      if (status.status !== "exited") return false;
      const reason = exitedReason(status);
      await markCrashed(row, reason);
      deps.log?.warn({ workspaceId, reason }, "runtime found dead by a caller");
      return true;
    },

    /**
     * Where the workspace's gateway is reached if it runs now; never starts one
     * (approvals: a stopped gateway's waiting runs are gone, nobody to tell).
     */
    async current(workspaceId: string): Promise<RuntimeConnection | undefined> {
      const [row] = await scoped(workspaceId, async (tx) => {
        const [found] = await tx.select().from(runtimes).where(eq(runtimes.workspaceId, workspaceId)).for("update");
        // A paused gateway cannot take a decision: thaw it as a wake would (a dead one is the health sweep's).
        if (found?.state === "running" && found.pausedAt && !(await resumeLocked(tx, SYSTEM, found))) return [];
        return found ? [found] : [];
      });
      const connection = row?.state === "running" ? connectionOf(row) : undefined;
      const handle = connection && row ? handleOf(row) : undefined;
      // As for a wake: the token goes only to an endpoint still the gateway's own.
      if (handle && driver.verify && (await verifyEndpoint(handle))) return undefined;
      return connection;
    },

    /** Workspaces whose gateway runs now. */
    async running(): Promise<string[]> {
      const rows = await platform((tx) =>
        tx.select({ id: runtimes.workspaceId }).from(runtimes).where(eq(runtimes.state, "running")),
      );
      return rows.map((r) => r.id);
    },

    /** The driver handle of a running runtime (for live stats). */
    async handle(workspaceId: string): Promise<RuntimeHandle | undefined> {
      return scoped(workspaceId, async (tx) => {
        const [row] = await tx.select().from(runtimes).where(eq(runtimes.workspaceId, workspaceId));
        return row ? handleOf(row) : undefined;
      });
    },

    /** Runtimes for operators, keyset-paginated by workspace id. */
    async list(q: { cursor?: string | undefined; limit?: number | undefined } = {}): Promise<Page<RuntimeView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { id: "uuid" });
      const rows = await platform((tx) =>
        tx
          .select()
          .from(runtimes)
          .where(cursor ? gt(runtimes.workspaceId, cursor.id) : undefined)
          .orderBy(runtimes.workspaceId)
          .limit(limit + 1),
      );
      const median = await medianStartMs();
      return toPage(
        rows,
        limit,
        (r) => toRuntimeView(r, median),
        (r) => ({ id: r.workspaceId }),
      );
    },

    /** Stops every running runtime (process-driver shutdown). */
    /**
     * Removes a deleted workspace's runtime and everything it stored, running or
     * not. Failures are logged, not thrown: the workspace is already gone.
     */
    async destroy(workspaceId: string, state: JsonObject): Promise<void> {
      inflight.delete(workspaceId);
      try {
        await driver.destroy({ workspaceId, state });
      } catch (err) {
        deps.log?.warn({ err, workspaceId }, "could not remove a deleted workspace's runtime; remove it by hand");
      }
    },

    /** Stops the running runtimes this Reef started (shutdown); other replicas' keep running. */
    async stopAll(reason: string): Promise<void> {
      const rows = await platform((tx) => tx.select().from(runtimes).where(eq(runtimes.state, "running")));
      const mine = rows.filter((r) => {
        const handle = handleOf(r);
        return !driver.startedHere || (handle !== undefined && driver.startedHere(handle));
      });
      await Promise.all(mine.map((r) => stopRuntime(SYSTEM, r.workspaceId, reason).catch(() => false)));
    },
  };
}

export type RuntimeManager = ReturnType<typeof createRuntimeManager>;
