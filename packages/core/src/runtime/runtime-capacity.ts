import { totalmem } from "node:os";
import { CapacityError } from "@reef/contracts";
import { schema, type Tx } from "@reef/db";
import { and, asc, eq, lt, sql } from "drizzle-orm";
import type { RequestContext } from "../shared/context.ts";

/**
 * Caps on running gateways, as the runtime manager reads them at each wake
 * (operators change them while Reef runs). 0 means no limit.
 */
export interface RuntimeCaps {
  /** Gateways running at once in the workspaces one person owns. */
  perUser: number;
  /** Gateways running at once on this Reef (the machine). */
  total: number;
}

// Advisory lock keys (two-int form, so they never meet the one-bigint keys of migrations and roles).
const LOCK_SPACE_CAPACITY = 7420;
const LOCK_SPACE_WORKSPACES = 7421;

/**
 * Serialises every capacity decision (across replicas) until the transaction
 * ends, so two wakes cannot both take the last slot.
 */
export async function lockCapacity(tx: Tx): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_SPACE_CAPACITY}, 0)`);
}

/** Serialises one person's workspace creations, so concurrent ones cannot overshoot the cap. */
export async function lockWorkspacesOf(tx: Tx, userId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_SPACE_WORKSPACES}, hashtext(${userId}))`);
}

/**
 * A row that holds a gateway or is about to: running, or starting/stopping
 * under a claim younger than `freshAfter` (an older claim belongs to a dead
 * Reef and holds nothing).
 */
function holdsGateway(freshAfter: Date) {
  return sql`(r.state = 'running' or (r.state in ('starting', 'stopping') and r.claimed_at > ${freshAfter.toISOString()}::timestamptz))`;
}

/** Gateways held on the whole machine, not counting `except`'s. Needs the platform scope. */
export async function countHeld(tx: Tx, except: string, freshAfter: Date): Promise<number> {
  const res = await tx.execute<{ n: number }>(
    sql`select count(*)::int as n from runtimes r where r.workspace_id <> ${except} and ${holdsGateway(freshAfter)}`,
  );
  return res.rows[0]?.n ?? 0;
}

/**
 * Of the owners of `workspaceId`, the one holding the most gateways in their
 * other workspaces, and how many. A wake counts against every owner of the
 * workspace (the people answerable for it), not against whoever sent the
 * message: members of a shared workspace do not spend their own allowance on
 * it, and one person cannot run more by having others wake their workspaces.
 */
export async function busiestOwner(
  tx: Tx,
  workspaceId: string,
  freshAfter: Date,
): Promise<{ userId: string; held: number } | undefined> {
  const res = await tx.execute<{ user_id: string; n: number }>(sql`
    select o.user_id, count(distinct r.workspace_id)::int as n
      from workspace_members o
      join workspace_members m on m.user_id = o.user_id and m.role = 'owner' and m.workspace_id <> o.workspace_id
      join runtimes r on r.workspace_id = m.workspace_id
     where o.workspace_id = ${workspaceId} and o.role = 'owner' and ${holdsGateway(freshAfter)}
     group by o.user_id
     order by n desc
     limit 1`);
  const row = res.rows[0];
  return row ? { userId: row.user_id, held: row.n } : undefined;
}

/**
 * How many workspaces wait for room ahead of one that queued at `since` (all
 * live waiters when it has not queued yet). A waiter that stopped polling
 * (`updated_at` before `liveAfter`) has left the line.
 */
export async function queuedAhead(tx: Tx, workspaceId: string, since: Date | null, liveAfter: Date): Promise<number> {
  const before = since
    ? sql`and (r.claimed_at, r.workspace_id) < (${since.toISOString()}::timestamptz, ${workspaceId}::uuid)`
    : sql``;
  const res = await tx.execute<{ n: number }>(sql`
    select count(*)::int as n from runtimes r
     where r.state = 'queued' and r.workspace_id <> ${workspaceId}
       and r.updated_at > ${liveAfter.toISOString()}::timestamptz ${before}`);
  return res.rows[0]?.n ?? 0;
}

/**
 * The machine-wide cap when the operator set none: what three quarters of this
 * machine's memory holds at about 1 GB per gateway (OpenClaw's usual 0.7 to 1 GB),
 * at least one.
 */
export function defaultMaxRuntimes(memoryBytes: number = totalmem()): number {
  return Math.max(1, Math.floor((memoryBytes * 0.75) / 1024 ** 3));
}

/** What a wake may do about capacity: start now, or wait in line at `position` (1: next). */
export type Admission =
  | { kind: "room" }
  | { kind: "queued"; position: number; firstTime: boolean }
  /** Returned, not thrown: the transaction must commit (leaving the line) before the caller throws it. */
  | { kind: "refused"; error: CapacityError };

/**
 * Decides, under the capacity lock, whether the workspace whose locked row is
 * `row` may start a gateway now. A person's cap refuses at once (429: waiting
 * would not help, their own gateways hold the room); a full machine queues the
 * wake when someone waits for it (`canWait`: a chat stream showing the
 * position), else refuses (503). Marks the row `queued` while it waits, and
 * takes it out of line when refusing.
 */
export async function admit(
  tx: Tx,
  opts: {
    row: typeof schema.runtimes.$inferSelect;
    caps: RuntimeCaps;
    ctx: RequestContext;
    instanceId: string;
    claimTtlMs: number;
    queueStaleMs: number;
    canWait: boolean;
  },
): Promise<Admission> {
  const { row, caps } = opts;
  if (caps.perUser <= 0 && caps.total <= 0) return { kind: "room" };
  await lockCapacity(tx);
  const freshAfter = new Date(Date.now() - opts.claimTtlMs);
  const liveAfter = new Date(Date.now() - opts.queueStaleMs);
  const waiting = row.state === "queued" && row.updatedAt > liveAfter;
  const leaveQueue = async () => {
    if (row.state === "queued")
      await tx
        .update(schema.runtimes)
        .set({ state: "stopped", claimedBy: null, claimedAt: null, updatedAt: new Date() })
        .where(eq(schema.runtimes.workspaceId, row.workspaceId));
  };
  if (caps.perUser > 0) {
    const owner = await busiestOwner(tx, row.workspaceId, freshAfter);
    if (owner && owner.held >= caps.perUser) {
      await leaveQueue();
      const you = opts.ctx.actor.kind === "user" && opts.ctx.actor.userId === owner.userId;
      const error = new CapacityError(
        "RUNTIME_LIMIT_REACHED",
        `${you ? "You already have" : "An owner of this workspace already has"} ${owner.held} workspaces running, ` +
          `the most Reef allows per person (${caps.perUser}). Stop one of them, or try again once one has gone idle.`,
        { limit: "runtimesPerUser", max: caps.perUser, used: owner.held, retryAfter: 60 },
      );
      return { kind: "refused", error };
    }
  }
  if (caps.total <= 0) return { kind: "room" };
  const held = await countHeld(tx, row.workspaceId, freshAfter);
  const since = waiting ? row.claimedAt : null;
  const ahead = await queuedAhead(tx, row.workspaceId, since, liveAfter);
  if (held + ahead < caps.total) return { kind: "room" };
  const position = ahead + 1;
  if (!opts.canWait) {
    // This process's own place in line, now that nobody waits for it.
    if (row.claimedBy === opts.instanceId) await leaveQueue();
    const error = new CapacityError(
      "CAPACITY_FULL",
      `Reef is running as many workspaces as this server allows (${caps.total}). Try again in a minute.`,
      { limit: "runtimes", max: caps.total, used: held, position, retryAfter: 30 },
    );
    return { kind: "refused", error };
  }
  await tx
    .update(schema.runtimes)
    .set({
      state: "queued",
      claimedBy: opts.instanceId,
      claimedAt: since ?? new Date(),
      updatedAt: new Date(),
    })
    .where(eq(schema.runtimes.workspaceId, row.workspaceId));
  return { kind: "queued", position, firstTime: !waiting };
}

/** The error a wake that waited its whole turn in line ends with. */
export function stillFull(total: number, waitedMs: number, position: number): CapacityError {
  return new CapacityError(
    "CAPACITY_FULL",
    `Reef is running as many workspaces as this server allows (${total}), and none became free in ` +
      `${Math.round(waitedMs / 1000)} seconds. Try again in a few minutes.`,
    { limit: "runtimes", max: total, used: total, position, retryAfter: 60 },
  );
}

/** A chat stream's view of a wake: `queued` with a position while it waits, `starting` when its turn comes. */
export type WakeProgress =
  | { type: "runtime"; state: "queued"; position: number }
  | { type: "runtime"; state: "starting" };

/**
 * Turns a wake's queue notifications (position n, then 0 when its turn came)
 * into events a generator yields while the wake runs, and returns its result.
 * `join` starts or joins the wake with a listener; `leave` drops the listener
 * when the consumer stops early or `signal` aborts (the client went away: the
 * wake leaves the line if nobody else waits for it).
 */
export async function* wakeProgress<T>(
  join: (onQueued: (position: number) => void) => { promise: Promise<T>; leave: () => void },
  signal?: AbortSignal,
): AsyncGenerator<WakeProgress, T> {
  let latest: number | undefined;
  let shown: number | undefined;
  let done = false;
  let notify: (() => void) | undefined;
  const { promise, leave } = join((position) => {
    latest = position;
    notify?.();
  });
  promise
    .finally(() => {
      done = true;
      notify?.();
    })
    .catch(() => {});
  const onAbort = () => notify?.();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (!done) {
      signal?.throwIfAborted();
      if (latest !== undefined && latest !== shown) {
        shown = latest;
        yield shown === 0
          ? { type: "runtime", state: "starting" }
          : { type: "runtime", state: "queued", position: shown };
        continue;
      }
      await new Promise<void>((resolve) => {
        notify = resolve;
      });
      notify = undefined;
    }
    return await promise;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    leave();
  }
}

/**
 * The least recently used runtime idle since before `idleBefore`, to stop when
 * the machine is full and someone waits: a gateway nobody uses should not keep
 * a person out. Needs the platform scope.
 */
export async function leastRecentlyUsedIdle(tx: Tx, idleBefore: Date): Promise<string | undefined> {
  const [victim] = await tx
    .select({ id: schema.runtimes.workspaceId })
    .from(schema.runtimes)
    .where(and(eq(schema.runtimes.state, "running"), lt(schema.runtimes.lastActivityAt, idleBefore)))
    .orderBy(asc(schema.runtimes.lastActivityAt))
    .limit(1);
  return victim?.id;
}
