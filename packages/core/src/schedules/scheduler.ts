import { createHash } from "node:crypto";
import { type Db, schema, type Tx, withWorkspace } from "@reef/db";
import { and, eq, sql } from "drizzle-orm";
import { fromDrizzle, type Job, PgBoss } from "pg-boss";
import type { ChatService } from "../chat/chat-service.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { Vault } from "../vault/vault-service.ts";
import { nextFiring } from "./cron-rules.ts";
import { createRunExecutor, type RunJob } from "./run-executor.ts";
import { createRunNotifier, type NotifyJob } from "./run-notify.ts";
import type { RunRequest, RunRow, ScheduleRow, SchedulerQueue } from "./schedule-types.ts";

const { schedules, scheduleRuns } = schema;

/** pg-boss queue names (schema `pgboss`). */
export const SCHEDULER_QUEUES = {
  fire: "reef-schedule-fire",
  run: "reef-schedule-run",
  dead: "reef-schedule-run-dead",
  notify: "reef-run-notify",
} as const;

/** A planned firing: the schedule, and the occurrence it is for (ISO instant, equal to `next_run_at`). */
export interface FireJob {
  workspaceId: string;
  scheduleId: string;
  fireAt: string;
}

/** Outbound notifications: retries after the first try (5 tries in all), and the delay before the first retry (doubling). */
const NOTIFY_RETRY_LIMIT = 4;
const NOTIFY_RETRY_DELAY_SECONDS = 10;
/** How long a run job may stay active beyond its schedule's timeout before pg-boss expires (and retries) it. */
const RUN_EXPIRY_MARGIN_SECONDS = 120;

export interface SchedulerConfig {
  schedulerEnabled: boolean;
  schedulerConcurrency: number;
  schedulerPollSeconds: number;
  scheduleRetryLimit: number;
  scheduleRetryDelaySeconds: number;
  scheduleFailureAlertAfter: number;
  /** Delay before an outbound notification's first retry (seconds, doubling); 10 unless set (tests shorten it). */
  notifyRetryDelaySeconds?: number;
}

export interface SchedulerDeps {
  db: Db;
  /** The app role's connection string: pg-boss keeps its own small pool on it. */
  appUrl: string;
  config: SchedulerConfig;
  chat: ChatService;
  vault: Vault;
  mailer: () => Promise<Mailer | undefined>;
  publicUrl: () => Promise<string>;
  /** Non-public hosts the operator allowed (outbound notifications to private addresses are refused otherwise). */
  allowedHosts: () => Promise<readonly string[]>;
  log?: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
  };
}

export type Scheduler = SchedulerQueue & {
  /** Opens the queue (installing or migrating pg-boss's tables) and, when enabled, starts the workers. */
  start(): Promise<void>;
  /** Takes no new jobs from now on (runs in flight go on until their turn ends or is interrupted). */
  stop(): Promise<void>;
  /** Waits (bounded) for the jobs in flight to settle, then closes pg-boss's pool. */
  close(): Promise<void>;
};

/** pg-boss as Reef runs it: its own schema (created by the migrations), its own small pool, its cron off. */
function jobQueue(appUrl: string, max: number): PgBoss {
  return new PgBoss({
    connectionString: appUrl,
    schema: "pgboss",
    createSchema: false,
    migrate: true,
    useListenNotify: true,
    // pg-boss's own cron is not used: Reef plans each firing itself.
    schedule: false,
    max,
    application_name: "reef-scheduler",
  });
}

/**
 * Installs (or migrates) the job queue's tables as the app role and leaves
 * nothing running: for a database that is cloned afterwards (the tests'
 * template), so each copy starts with the queue in place.
 */
export async function installJobQueue(appUrl: string): Promise<void> {
  const boss = jobQueue(appUrl, 2);
  await boss.start();
  await boss.stop({ graceful: false, close: true });
}

/** A deterministic job id per firing, so planning the same firing twice queues it once. */
function fireJobId(scheduleId: string, fireAt: Date): string {
  const h = createHash("sha256").update(`${scheduleId}:${fireAt.toISOString()}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The occurrence after `from` a schedule fires next (null: paused, a webhook, or a `once` already fired). */
async function nextFor(tx: Tx, s: ScheduleRow, from: Date): Promise<Date | null> {
  if (!s.enabled) return null;
  if (s.kind === "cron" && s.cron) return nextFiring({ cron: s.cron, timezone: s.timezone }, from);
  if (s.kind === "once" && s.runAt) {
    const [fired] = await tx
      .select({ id: scheduleRuns.id })
      .from(scheduleRuns)
      .where(and(eq(scheduleRuns.scheduleId, s.id), eq(scheduleRuns.trigger, "schedule")))
      .limit(1);
    // A one-off whose time passed while it was paused fires at once when resumed.
    return fired ? null : s.runAt;
  }
  return null;
}

/**
 * The scheduler on Postgres (pg-boss, schema `pgboss`): planned firings are
 * jobs that start at their time; the fire handler records exactly one run per
 * firing (guarded by `next_run_at` and a unique index) and queues its run job
 * and the next firing in the same transaction. Every replica may run workers.
 */
export function createScheduler(deps: SchedulerDeps): Scheduler {
  const { config } = deps;
  const boss = jobQueue(deps.appUrl, Math.max(4, config.schedulerConcurrency + 2));
  boss.on("error", (err) => deps.log?.warn({ err }, "scheduler queue error"));
  boss.on("warning", (warning) => {
    // Expected where LISTEN is unavailable (a transaction pooler): polling takes over.
    const type = (warning.data as { type?: string } | undefined)?.type;
    if (type !== "listen_notify_unavailable")
      deps.log?.warn({ warning: warning.message, type }, "scheduler queue warning");
  });

  const runOptions = (s: ScheduleRow) => ({
    retryLimit: config.scheduleRetryLimit,
    retryDelay: config.scheduleRetryDelaySeconds,
    retryBackoff: true,
    deadLetter: SCHEDULER_QUEUES.dead,
    expireInSeconds: s.timeoutSeconds + RUN_EXPIRY_MARGIN_SECONDS,
  });

  async function sendFire(tx: Tx, s: ScheduleRow, fireAt: Date): Promise<void> {
    const job: FireJob = { workspaceId: s.workspaceId, scheduleId: s.id, fireAt: fireAt.toISOString() };
    await boss.send(SCHEDULER_QUEUES.fire, job, {
      id: fireJobId(s.id, fireAt),
      startAfter: fireAt,
      db: fromDrizzle(tx, sql),
    });
  }

  async function sendRun(tx: Tx, s: ScheduleRow, run: RunRow): Promise<void> {
    const job: RunJob = { workspaceId: s.workspaceId, runId: run.id };
    await boss.send(SCHEDULER_QUEUES.run, job, { id: run.id, ...runOptions(s), db: fromDrizzle(tx, sql) });
  }

  async function sendNotify(tx: Tx, run: RunRow): Promise<void> {
    const job: NotifyJob = { workspaceId: run.workspaceId, runId: run.id };
    await boss.send(SCHEDULER_QUEUES.notify, job, { db: fromDrizzle(tx, sql) });
  }

  const executor = createRunExecutor({ ...deps, sendNotify });
  const notifier = createRunNotifier({ ...deps, retryLimit: NOTIFY_RETRY_LIMIT });

  /**
   * A planned firing came due. Stale and duplicate jobs (the schedule was
   * changed, paused, or another replica already fired it) match nothing in the
   * guarded update and are dropped.
   */
  async function fire(job: FireJob): Promise<void> {
    const fireAt = new Date(job.fireAt);
    await withWorkspace(deps.db, job.workspaceId, async (tx) => {
      const [current] = await tx.select().from(schedules).where(eq(schedules.id, job.scheduleId));
      if (!current) return;
      // Missed firings (every replica was down) are not replayed: the next is after now.
      const from = new Date(Math.max(fireAt.getTime(), Date.now()));
      const next = current.kind === "cron" ? await nextFor(tx, current, from) : null;
      const [claimed] = await tx
        .update(schedules)
        .set({ nextRunAt: next })
        .where(and(eq(schedules.id, job.scheduleId), eq(schedules.enabled, true), eq(schedules.nextRunAt, fireAt)))
        .returning();
      if (!claimed) return;
      const [run] = await tx
        .insert(scheduleRuns)
        .values({ workspaceId: claimed.workspaceId, scheduleId: claimed.id, trigger: "schedule", scheduledFor: fireAt })
        .onConflictDoNothing()
        .returning();
      if (run) await sendRun(tx, claimed, run);
      if (next) await sendFire(tx, claimed, next);
    });
  }

  let started: Promise<void> | undefined;
  const workers: { name: string; id: string }[] = [];

  async function openQueues(): Promise<void> {
    await boss.start();
    const notify = { notify: true };
    const queues = [
      { name: SCHEDULER_QUEUES.dead, options: { ...notify, retryLimit: 0 } },
      { name: SCHEDULER_QUEUES.fire, options: { ...notify, retryLimit: 5, retryDelay: 1, retryBackoff: true } },
      {
        name: SCHEDULER_QUEUES.run,
        options: {
          ...notify,
          retryLimit: config.scheduleRetryLimit,
          retryDelay: config.scheduleRetryDelaySeconds,
          retryBackoff: true,
          deadLetter: SCHEDULER_QUEUES.dead,
        },
      },
      {
        name: SCHEDULER_QUEUES.notify,
        options: {
          ...notify,
          retryLimit: NOTIFY_RETRY_LIMIT,
          retryDelay: config.notifyRetryDelaySeconds ?? NOTIFY_RETRY_DELAY_SECONDS,
          retryBackoff: true,
        },
      },
    ];
    for (const q of queues) {
      await boss.createQueue(q.name, q.options);
      // createQueue keeps an existing queue as it was: this start's settings (a changed retry limit) apply too.
      await boss.updateQueue(q.name, q.options);
    }
    if (!config.schedulerEnabled) {
      deps.log?.info(
        {},
        "the scheduler is off in this process (REEF_SCHEDULER_ENABLED=false): other replicas run schedules",
      );
      return;
    }
    // NOTIFY wakes workers for jobs due now (run now, webhooks); firings and retries are deferred jobs that
    // only polling finds when they come due, so polling keeps its pace with NOTIFY on (pg-boss's default: 30 s).
    const polling = {
      pollingIntervalSeconds: config.schedulerPollSeconds,
      notifyPollingIntervalSeconds: config.schedulerPollSeconds,
    };
    const work = async <T extends object>(
      name: string,
      localConcurrency: number,
      handle: (job: Job<T>) => Promise<void>,
    ) => {
      const id = await boss.work<T>(name, { ...polling, localConcurrency }, async ([job]) => {
        if (job) await handle(job);
      });
      workers.push({ name, id });
    };
    await work<FireJob>(SCHEDULER_QUEUES.fire, 2, (job) => fire(job.data));
    await work<RunJob>(SCHEDULER_QUEUES.run, config.schedulerConcurrency, (job) =>
      executor.execute(job, config.scheduleRetryLimit),
    );
    await work<RunJob>(SCHEDULER_QUEUES.dead, 1, (job) => executor.deadLetter(job.data));
    await work<NotifyJob>(SCHEDULER_QUEUES.notify, 2, (job) => notifier.deliver(job));
  }

  return {
    async plan(tx, s) {
      const next = await nextFor(tx, s, new Date());
      await tx.update(schedules).set({ nextRunAt: next }).where(eq(schedules.id, s.id));
      if (next) await sendFire(tx, { ...s, nextRunAt: next }, next);
      return next;
    },

    async enqueueRun(tx, s, request: RunRequest) {
      const [run] = await tx
        .insert(scheduleRuns)
        .values({
          workspaceId: s.workspaceId,
          scheduleId: s.id,
          trigger: request.trigger,
          scheduledFor: new Date(),
          deliveryId: request.deliveryId ?? null,
          requestedByUserId: request.requestedByUserId ?? null,
        })
        .returning();
      if (!run) throw new Error("run insert returned nothing");
      const sealed = request.prompt != null ? await executor.sealPrompt(tx, run, request.prompt) : null;
      await sendRun(tx, s, run);
      return sealed ? { ...run, promptSealed: sealed } : run;
    },

    start() {
      started ??= openQueues();
      return started;
    },

    async stop() {
      if (!started) return;
      await started.catch(() => {});
      await Promise.all(workers.splice(0).map((w) => boss.offWork(w.name, { id: w.id, wait: false }).catch(() => {})));
    },

    async close() {
      if (!started) return;
      await started.catch(() => {});
      await boss.stop({ graceful: true, timeout: 15_000, close: true });
    },
  };
}
