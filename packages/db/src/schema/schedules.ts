import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { chatMessages, chatSessions } from "./chat.ts";
import { agents } from "./providers.ts";
import { tenantIsolation } from "./roles.ts";
import { users } from "./users.ts";
import { apiKeys, workspaces } from "./workspaces.ts";

/**
 * `cron`: fires on a cron expression in a time zone; `once`: fires once at
 * `runAt`; `webhook`: fires when another system calls its signed URL.
 */
export const SCHEDULE_KINDS = ["cron", "once", "webhook"] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/**
 * An agent's standing job: a prompt sent on a cron rule, once, or on a signed
 * webhook call. Runs act as its creator (a person or an API key) with their
 * role at the time of the run, and write into the creator's session for it.
 */
export const schedules = pgTable(
  "schedules",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    /** Null once the agent was deleted: the schedule stays (its runs are skipped) until someone removes it. */
    agentId: uuid().references(() => agents.id, { onDelete: "set null" }),
    name: text().notNull(),
    kind: text({ enum: SCHEDULE_KINDS }).notNull(),
    /** 5 fields (minute precision) or 6 (seconds first); `cron` schedules only. */
    cron: text(),
    /** IANA zone the cron expression is read in (DST-correct). */
    timezone: text().notNull().default("UTC"),
    /** When a `once` schedule fires. */
    runAt: timestamp({ withTimezone: true }),
    /** What the agent is sent; for webhooks a template (`{{body.path}}` placeholders). */
    prompt: text().notNull(),
    enabled: boolean().notNull().default(true),
    /** Lets every member of the workspace read the runs' output (read-only); otherwise only the creator can. */
    shareOutput: boolean().notNull().default(false),
    /** How long one run may take (waking the runtime and waiting for approvals included). */
    timeoutSeconds: integer().notNull().default(600),
    /** The next firing the scheduler has queued; null when paused, done (once) or a webhook. */
    nextRunAt: timestamp({ withTimezone: true }),
    /** HMAC key of inbound webhook calls and outbound notifications, sealed with the vault (record id: the schedule id). */
    secretSealed: text(),
    /** Where a signed notification of each finished run is posted (optional). */
    notifyUrl: text(),
    createdByUserId: uuid().references(() => users.id, { onDelete: "set null" }),
    createdByApiKeyId: uuid().references(() => apiKeys.id, { onDelete: "set null" }),
    /** Failed or timed-out runs in a row; a success resets it. */
    consecutiveFailures: integer().notNull().default(0),
    /** When the failure alert for the current streak was sent; reset by a success. */
    failureAlertedAt: timestamp({ withTimezone: true }),
    lastRunAt: timestamp({ withTimezone: true }),
    lastRunStatus: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("schedules_workspace_idx").on(t.workspaceId, t.createdAt, t.id),
    tenantIsolation("schedules_tenant_isolation", t.workspaceId),
  ],
).enableRLS();

export const RUN_TRIGGERS = ["schedule", "manual", "webhook"] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

/**
 * `queued`: waiting for a worker (also between retries); `skipped`: not run
 * (quota used up, agent deleted, creator gone, workspace over its limits).
 */
export const RUN_STATUSES = ["queued", "running", "succeeded", "failed", "skipped", "timed_out"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** One firing of a schedule, and what became of it. The answer itself is a chat message of the schedule's session. */
export const scheduleRuns = pgTable(
  "schedule_runs",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    scheduleId: uuid()
      .notNull()
      .references(() => schedules.id, { onDelete: "cascade" }),
    trigger: text({ enum: RUN_TRIGGERS }).notNull(),
    /** The firing time (the rule's occurrence), or when it was asked for (manual, webhook). */
    scheduledFor: timestamp({ withTimezone: true }).notNull(),
    status: text({ enum: RUN_STATUSES }).notNull().default("queued"),
    attempts: integer().notNull().default(0),
    /** A stable code (a chat error code, or SKIPPED_* / TIMED_OUT) and the sentence people read. */
    errorCode: text(),
    error: text(),
    /** A webhook run's prompt (rendered from the call's body), sealed with the vault (record id: the run id). */
    promptSealed: text(),
    /** Webhook delivery id (`X-Reef-Delivery`): a second call with the same id is refused as a replay. */
    deliveryId: text(),
    requestedByUserId: uuid().references(() => users.id, { onDelete: "set null" }),
    sessionId: uuid().references(() => chatSessions.id, { onDelete: "set null" }),
    /** The answer (content and execution trace, sealed like every transcript). */
    messageId: bigint({ mode: "number" }).references(() => chatMessages.id, { onDelete: "set null" }),
    promptTokens: integer(),
    completionTokens: integer(),
    /** Outbound notification: null (none configured), `pending`, `delivered`, `failed`. */
    notifyStatus: text(),
    queuedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp({ withTimezone: true }),
    finishedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    index("schedule_runs_schedule_idx").on(t.scheduleId, t.queuedAt, t.id),
    // Exactly one run per firing, whichever replica (or retried job) records it.
    uniqueIndex("schedule_runs_firing_idx").on(t.scheduleId, t.scheduledFor).where(sql`${t.trigger} = 'schedule'`),
    uniqueIndex("schedule_runs_delivery_idx").on(t.scheduleId, t.deliveryId).where(sql`${t.deliveryId} is not null`),
    tenantIsolation("schedule_runs_tenant_isolation", t.workspaceId),
  ],
).enableRLS();
