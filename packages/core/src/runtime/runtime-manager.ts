import { createHash, randomBytes } from "node:crypto";
import { UnavailableError } from "@reef/contracts";
import { type Db, type RuntimeState, schema, type Tx, withScope } from "@reef/db";
import type { GatewaySettings, JsonObject, RuntimeDriver, RuntimeHandle } from "@reef/runtime";
import { and, eq, gt, lt, sql } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";
import type { Sealer } from "../shared/sealing.ts";

const { runtimes } = schema;
type Row = typeof runtimes.$inferSelect;

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

export interface RuntimeManagerDeps {
  db: Db;
  driver: RuntimeDriver;
  /** Seals gateway tokens at rest (they are full operator access to the gateway). */
  sealer: Sealer;
  /** What a workspace's gateway should serve, read fresh at each start. */
  settingsFor: (workspaceId: string) => Promise<GatewaySettings>;
  /** Identifies this Reef process in start claims. */
  instanceId: string;
  /** A number, or a function for a timeout operators can change while Reef runs. */
  idleTimeoutMs: number | (() => Promise<number>);
  startTimeoutMs: number;
  limits: { memoryMb: number; cpus: number; pids: number };
  /**
   * Kill a gateway whose resident memory exceeds `limits.memoryMb` at a health
   * check: for drivers that cannot set a hard limit (the process driver).
   */
  enforceMemoryLimit?: boolean;
  /** Delay before the one automatic restart after a crash. */
  restartBackoffMs?: number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

const SYSTEM: RequestContext = { actor: { kind: "system", name: "runtime-manager" } };
const TOUCH_EVERY_MS = 30_000;

function hashSettings(settings: GatewaySettings): string {
  return createHash("sha256").update(JSON.stringify(settings)).digest("hex");
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
  const inflight = new Map<string, Promise<RuntimeConnection>>();

  const scoped = <T>(workspaceId: string, fn: (tx: Tx) => Promise<T>) => withScope(db, { workspaceId }, fn);
  const platform = <T>(fn: (tx: Tx) => Promise<T>) => withScope(db, { platform: true }, fn);

  async function lockRow(tx: Tx, workspaceId: string): Promise<Row> {
    await tx.insert(runtimes).values({ workspaceId, driver: driver.kind }).onConflictDoNothing();
    const [row] = await tx.select().from(runtimes).where(eq(runtimes.workspaceId, workspaceId)).for("update");
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

  async function startClaimed(
    workspaceId: string,
    token: string,
    settings: GatewaySettings,
    ctx: RequestContext,
  ): Promise<RuntimeConnection> {
    const started = Date.now();
    try {
      const { endpoint, state } = await driver.start(
        { workspaceId, token, gateway: settings, limits: deps.limits },
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
            lastActivityAt: new Date(),
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
      await transition(
        workspaceId,
        {
          state: "failed",
          failureReason: reason.slice(0, 500),
          claimedBy: null,
          claimedAt: null,
          handle: null,
          endpoint: null,
        },
        {
          action: "runtime.failed",
          outcome: "failure",
          details: { reason: reason.slice(0, 500) },
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

  async function wake(ctx: RequestContext, workspaceId: string): Promise<RuntimeConnection> {
    const deadline = Date.now() + claimTtlMs;
    for (;;) {
      const settings = await deps.settingsFor(workspaceId);
      const configHash = hashSettings(settings);
      const decision = await scoped(workspaceId, async (tx) => {
        const row = await lockRow(tx, workspaceId);
        const claimFresh = row.claimedAt !== null && Date.now() - row.claimedAt.getTime() < claimTtlMs;
        const connection = row.state === "running" ? connectionOf(row) : undefined;
        if (connection && row.configHash === configHash) {
          if (!row.lastActivityAt || Date.now() - row.lastActivityAt.getTime() > TOUCH_EVERY_MS) {
            await tx.update(runtimes).set({ lastActivityAt: new Date() }).where(eq(runtimes.workspaceId, workspaceId));
          }
          return { kind: "ready" as const, connection };
        }
        if ((row.state === "starting" || row.state === "stopping") && claimFresh) return { kind: "wait" as const };
        // Ours to start: stopped, failed, a stale claim, or running with old settings or an unreadable token.
        const previous = row.state === "running" ? handleOf(row) : undefined;
        const why = connection ? "settings changed" : "token unreadable";
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
        return { kind: "start" as const, token, previous };
      });
      if (decision.kind === "ready") return decision.connection;
      if (decision.kind === "start") {
        if (decision.previous) await driver.stop(decision.previous, { graceful: true }).catch(() => {});
        return startClaimed(workspaceId, decision.token, settings, ctx);
      }
      if (Date.now() > deadline) throw new UnavailableError("Your workspace is still starting. Try again in a moment.");
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function stopRuntime(ctx: RequestContext, workspaceId: string, reason: string): Promise<boolean> {
    const claimed = await scoped(workspaceId, async (tx) => {
      const row = await lockRow(tx, workspaceId);
      if (row.state !== "running" && row.state !== "failed") return undefined;
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

  return {
    /**
     * The running gateway of a workspace, started if needed (wake on request).
     * Concurrent callers, in this process or another replica, share one start.
     */
    ensureRunning(ctx: RequestContext, workspaceId: string): Promise<RuntimeConnection> {
      let pending = inflight.get(workspaceId);
      if (!pending) {
        pending = wake(ctx, workspaceId).finally(() => inflight.delete(workspaceId));
        inflight.set(workspaceId, pending);
      }
      return pending;
    },

    async get(workspaceId: string): Promise<RuntimeView> {
      return scoped(workspaceId, async (tx) => {
        const [row] = await tx.select().from(runtimes).where(eq(runtimes.workspaceId, workspaceId));
        return row
          ? toRuntimeView(row)
          : {
              workspaceId,
              state: "stopped" as const,
              driver: driver.kind,
              startedAt: null,
              lastActivityAt: null,
              stoppedAt: null,
              restarts: 0,
              failureReason: null,
            };
      });
    },

    /** Stops a workspace's runtime; false if it was not running. */
    stop: stopRuntime,

    /** Stops runtimes idle for longer than the idle timeout. @returns the workspaces stopped. */
    async reapIdle(): Promise<string[]> {
      const timeoutMs = typeof deps.idleTimeoutMs === "number" ? deps.idleTimeoutMs : await deps.idleTimeoutMs();
      const cutoff = new Date(Date.now() - timeoutMs);
      const idle = await platform((tx) =>
        tx
          .select({ id: runtimes.workspaceId })
          .from(runtimes)
          .where(and(eq(runtimes.state, "running"), lt(runtimes.lastActivityAt, cutoff))),
      );
      const stopped: string[] = [];
      for (const { id } of idle) if (await stopRuntime(SYSTEM, id, "idle")) stopped.push(id);
      return stopped;
    },

    /**
     * Polls every running runtime. One that died is restarted once (after a
     * backoff); if it dies again it is marked failed with the reason.
     */
    async checkHealth(): Promise<void> {
      const rows = await platform((tx) => tx.select().from(runtimes).where(eq(runtimes.state, "running")));
      for (const row of rows) {
        const handle = handleOf(row);
        if (!handle) continue;
        const status = await driver.poll(handle);
        let reason: string;
        if (status.status === "exited") {
          reason = `the gateway exited unexpectedly (code ${status.code ?? "unknown"})`;
        } else {
          const over = await overMemory(handle);
          if (!over) continue;
          reason = over;
        }
        await driver.stop(handle, { graceful: false }).catch(() => {});
        if (row.restarts >= 1) {
          await transition(
            row.workspaceId,
            { state: "failed", failureReason: `${reason} again after a restart`, handle: null, endpoint: null },
            {
              action: "runtime.failed",
              outcome: "failure",
              details: { reason, restarts: row.restarts },
            },
          );
          continue;
        }
        await transition(
          row.workspaceId,
          { state: "stopped", restarts: row.restarts + 1, failureReason: reason, handle: null, endpoint: null },
          {
            action: "runtime.crash",
            outcome: "failure",
            details: { reason },
          },
        );
        await new Promise((r) => setTimeout(r, deps.restartBackoffMs ?? 1_000));
        await wake(SYSTEM, row.workspaceId).catch((err: unknown) =>
          deps.log?.warn({ workspaceId: row.workspaceId, err }, "restart after crash failed"),
        );
      }
    },

    /**
     * After a Reef restart: keeps (adopts) runtimes the driver still sees running,
     * and marks the rest stopped, releasing claims a dead process left behind.
     */
    async reconcile(): Promise<{ adopted: string[]; cleaned: string[] }> {
      const rows = await platform((tx) =>
        tx.select().from(runtimes).where(sql`${runtimes.state} in ('running', 'starting', 'stopping')`),
      );
      const adopted: string[] = [];
      const cleaned: string[] = [];
      for (const row of rows) {
        const claimStale =
          !row.claimedAt || Date.now() - row.claimedAt.getTime() > claimTtlMs || row.claimedBy === deps.instanceId;
        if (row.state !== "running" && !claimStale) continue;
        const handle = handleOf(row);
        const status = handle ? await driver.poll(handle) : ({ status: "exited", code: null } as const);
        if (row.state === "running" && status.status === "running") {
          adopted.push(row.workspaceId);
          continue;
        }
        if (handle) await driver.stop(handle, { graceful: false }).catch(() => {});
        await transition(
          row.workspaceId,
          {
            state: "stopped",
            handle: null,
            endpoint: null,
            tokenSealed: null,
            claimedBy: null,
            claimedAt: null,
            stoppedAt: new Date(),
          },
          {
            action: "runtime.reconcile",
            details: { from: row.state, found: status.status },
          },
        );
        cleaned.push(row.workspaceId);
      }
      return { adopted, cleaned };
    },

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
      if (handle) await driver.stop(handle, { graceful: false }).catch(() => {});
      const reason = `the gateway exited unexpectedly (code ${status.code ?? "unknown"})`;
      await scoped(workspaceId, async (tx) => {
        // Only if nobody moved it on meanwhile (the health check, another replica).
        const moved = await tx
          .update(runtimes)
          .set({
            state: "stopped",
            failureReason: reason,
            handle: null,
            endpoint: null,
            tokenSealed: null,
            stoppedAt: new Date(),
            updatedAt: new Date(),
          })
          .where(
            and(
              eq(runtimes.workspaceId, workspaceId),
              eq(runtimes.state, "running"),
              eq(runtimes.endpoint, row.endpoint ?? ""),
            ),
          )
          .returning({ id: runtimes.workspaceId });
        if (moved.length) {
          await appendAudit(tx, SYSTEM, {
            workspaceId,
            action: "runtime.crash",
            targetType: "runtime",
            targetId: workspaceId,
            outcome: "failure",
            details: { reason },
          });
        }
      });
      deps.log?.warn({ workspaceId, reason }, "runtime found dead by a caller");
      return true;
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
      const cursor = decodeCursor(q.cursor, ["id"] as const);
      const rows = await platform((tx) =>
        tx
          .select()
          .from(runtimes)
          .where(cursor ? gt(runtimes.workspaceId, cursor.id) : undefined)
          .orderBy(runtimes.workspaceId)
          .limit(limit + 1),
      );
      return toPage(rows, limit, toRuntimeView, (r) => ({ id: r.workspaceId }));
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

    async stopAll(reason: string): Promise<void> {
      const rows = await platform((tx) =>
        tx.select({ id: runtimes.workspaceId }).from(runtimes).where(eq(runtimes.state, "running")),
      );
      await Promise.all(rows.map((r) => stopRuntime(SYSTEM, r.id, reason).catch(() => false)));
    },
  };
}

export type RuntimeManager = ReturnType<typeof createRuntimeManager>;
