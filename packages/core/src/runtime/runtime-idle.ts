import { schema, type Tx } from "@reef/db";
import type { RuntimeDriver } from "@reef/runtime";
import { and, eq, gt, isNull, lt } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import type { createRuntimeRows } from "./runtime-rows.ts";
import { SYSTEM } from "./runtime-rows.ts";

const { runtimes, chatMessages, scheduleRuns } = schema;

/** A streaming answer whose heartbeat is older than this has no Reef relaying it any more (see chat-service). */
const LIVE_HEARTBEAT_MS = 60_000;

type Rows = ReturnType<typeof createRuntimeRows>;
type Minutes = number | (() => Promise<number>);

const ms = async (v: Minutes) => (typeof v === "number" ? v : await v());

/**
 * A workspace is busy, whatever its last wake says, while an answer is still streaming (a long agent run sends no
 * new messages) or a scheduled run is running: neither tier may freeze or stop its gateway then.
 */
export async function busy(tx: Tx, workspaceId: string): Promise<boolean> {
  const live = new Date(Date.now() - LIVE_HEARTBEAT_MS);
  const [answer] = await tx
    .select({ id: chatMessages.id })
    .from(chatMessages)
    .where(
      and(
        eq(chatMessages.workspaceId, workspaceId),
        eq(chatMessages.status, "streaming"),
        gt(chatMessages.heartbeatAt, live),
      ),
    )
    .limit(1);
  if (answer) return true;
  const [run] = await tx
    .select({ id: scheduleRuns.id })
    .from(scheduleRuns)
    .where(and(eq(scheduleRuns.workspaceId, workspaceId), eq(scheduleRuns.status, "running")))
    .limit(1);
  return run !== undefined;
}

/**
 * The idle tiers. After `pauseAfterMs` without use a gateway is paused (frozen by the driver: no CPU, memory kept,
 * resumed on the next use in about a second); once paused for `swapOutAfterMs` its memory goes to swap where the
 * driver and host can (less memory, a slower resume); after `idleTimeoutMs` it is stopped (memory freed, the next
 * use starts a new one). Drivers without `pause` skip the paused tiers.
 */
export function createIdleTiers(deps: {
  driver: RuntimeDriver;
  rows: Rows;
  idleTimeoutMs: Minutes;
  /** 0: never paused. */
  pauseAfterMs: Minutes;
  /** How long a gateway stays paused before its memory goes to swap (where the driver and host can); absent: never. */
  swapOutAfterMs?: Minutes;
  stop: (workspaceId: string, reason: string, idleBefore: Date) => Promise<boolean>;
  log?: { warn(obj: object, msg: string): void };
}) {
  const { driver, rows } = deps;

  /** Pauses one gateway if it is still running, unpaused, idle since before `idleBefore`, and not busy. */
  async function pauseOne(workspaceId: string, idleBefore: Date): Promise<boolean> {
    const pause = driver.pause?.bind(driver);
    if (!pause) return false;
    return rows.scoped(workspaceId, async (tx) => {
      // The row lock makes a wake wait until the freeze is done (and then resume it), never race it.
      const row = await rows.lockRow(tx, workspaceId);
      const handle = rows.handleOf(row);
      if (row.state !== "running" || row.pausedAt || !handle) return false;
      if (!row.lastActivityAt || row.lastActivityAt >= idleBefore) return false;
      if (await busy(tx, workspaceId)) return false;
      try {
        await pause(handle);
      } catch (err) {
        // Gone behind Reef's back: the health sweep finds it and handles it as a crash.
        deps.log?.warn({ workspaceId, err }, "could not pause an idle runtime");
        return false;
      }
      const idleMs = Date.now() - row.lastActivityAt.getTime();
      await tx
        .update(runtimes)
        .set({ pausedAt: new Date(), updatedAt: new Date() })
        .where(eq(runtimes.workspaceId, workspaceId));
      await appendAudit(tx, SYSTEM, {
        workspaceId,
        action: "runtime.pause",
        targetType: "runtime",
        targetId: workspaceId,
        details: { idleMinutes: Math.floor(idleMs / 60_000) },
      });
      return true;
    });
  }

  /**
   * Moves one paused gateway's memory to swap if it is still paused, paused since before `pausedBefore`, and not
   * yet swapped out. @returns the bytes before and after, false when it no longer qualifies, undefined when the
   * driver or host cannot (no swap): the sweep then stops trying this round.
   */
  async function swapOutOne(workspaceId: string, pausedBefore: Date) {
    const reclaim = driver.reclaim?.bind(driver);
    if (!reclaim) return undefined;
    return rows.scoped(workspaceId, async (tx) => {
      // Under the row lock: a wake waits, then resumes the gateway with its memory wherever it is.
      const row = await rows.lockRow(tx, workspaceId);
      const handle = rows.handleOf(row);
      if (row.state !== "running" || !row.pausedAt || row.swappedOutAt || !handle) return false;
      if (row.pausedAt >= pausedBefore) return false;
      const moved = await reclaim(handle).catch((err: unknown) => {
        deps.log?.warn({ workspaceId, err }, "could not move a paused runtime's memory to swap");
        return undefined;
      });
      if (!moved) return undefined;
      await tx
        .update(runtimes)
        .set({ swappedOutAt: new Date(), updatedAt: new Date() })
        .where(eq(runtimes.workspaceId, workspaceId));
      const mb = (n: number) => Math.round(n / 1_048_576);
      await appendAudit(tx, SYSTEM, {
        workspaceId,
        action: "runtime.swap_out",
        targetType: "runtime",
        targetId: workspaceId,
        details: { beforeMb: mb(moved.before), afterMb: mb(moved.after) },
      });
      return moved;
    });
  }

  return {
    /**
     * Moves the memory of gateways paused past the swap-out time to swap. @returns the workspaces swapped out
     * (none where the host has no swap).
     */
    async swapOutIdle(): Promise<string[]> {
      if (deps.swapOutAfterMs === undefined || !driver.reclaim) return [];
      const cutoff = new Date(Date.now() - (await ms(deps.swapOutAfterMs)));
      const paused = await rows.platform((tx) =>
        tx
          .select({ id: runtimes.workspaceId })
          .from(runtimes)
          .where(and(eq(runtimes.state, "running"), isNull(runtimes.swappedOutAt), lt(runtimes.pausedAt, cutoff))),
      );
      const out: string[] = [];
      for (const { id } of paused) {
        const moved = await swapOutOne(id, cutoff);
        if (moved === undefined) break;
        if (moved) out.push(id);
      }
      return out;
    },

    /** Pauses gateways idle past the pause timeout. @returns the workspaces paused. */
    async pauseIdle(): Promise<string[]> {
      const after = await ms(deps.pauseAfterMs);
      if (after <= 0 || !driver.pause) return [];
      const cutoff = new Date(Date.now() - after);
      const idle = await rows.platform((tx) =>
        tx
          .select({ id: runtimes.workspaceId })
          .from(runtimes)
          .where(and(eq(runtimes.state, "running"), isNull(runtimes.pausedAt), lt(runtimes.lastActivityAt, cutoff))),
      );
      const paused: string[] = [];
      for (const { id } of idle) if (await pauseOne(id, cutoff)) paused.push(id);
      return paused;
    },

    /** Stops gateways (paused or not) idle past the idle timeout. @returns the workspaces stopped. */
    async reapIdle(): Promise<string[]> {
      const cutoff = new Date(Date.now() - (await ms(deps.idleTimeoutMs)));
      const idle = await rows.platform((tx) =>
        tx
          .select({ id: runtimes.workspaceId })
          .from(runtimes)
          .where(and(eq(runtimes.state, "running"), lt(runtimes.lastActivityAt, cutoff))),
      );
      const stopped: string[] = [];
      for (const { id } of idle) {
        if (await rows.scoped(id, (tx) => busy(tx, id))) continue;
        if (await deps.stop(id, "idle", cutoff)) stopped.push(id);
      }
      return stopped;
    },
  };
}
