import { z } from "zod";
import { nameSchema, pageQuerySchema } from "./common.ts";

export const SCHEDULE_KIND_VALUES = ["cron", "once", "webhook"] as const;
export const RUN_STATUS_VALUES = ["queued", "running", "succeeded", "failed", "skipped", "timed_out"] as const;
export const RUN_TRIGGER_VALUES = ["schedule", "manual", "webhook"] as const;

/**
 * Why a run did not run or did not succeed, beyond the chat error codes
 * (CHAT_ERROR_CODES) a failed answer carries.
 */
export const RUN_ERROR_CODES = [
  "SKIPPED_AGENT_DELETED",
  "SKIPPED_OWNER_GONE",
  "SKIPPED_QUOTA",
  "SKIPPED_LIMITS",
  "SKIPPED_BUSY",
  "TIMED_OUT",
] as const;

/** Headers of a signed webhook call (and of Reef's outbound notifications), lower-case as HTTP/2 sends them. */
export const WEBHOOK_HEADERS = {
  /** Unix seconds when the call was signed; more than 5 minutes away from Reef's clock is refused. */
  timestamp: "x-reef-timestamp",
  /** Unique per call (any string up to 200 characters); a second call with the same id is refused as a replay. */
  delivery: "x-reef-delivery",
  /** `sha256=` + hex HMAC-SHA256 of `${timestamp}.${delivery}.${rawBody}` under the trigger's secret. */
  signature: "x-reef-signature",
} as const;

const promptSchema = z
  .string()
  .trim()
  .min(1, "Write what the agent should be asked.")
  .max(20_000, "Keep the prompt under 20,000 characters.");

const notifyUrlSchema = z
  .string()
  .trim()
  .max(2000)
  .url("The notification URL must be a full http:// or https:// URL.")
  .refine((v) => /^https?:\/\//i.test(v), "The notification URL must start with http:// or https://.");

export const createScheduleBodySchema = z.object({
  name: nameSchema,
  agentId: z.uuid(),
  kind: z.enum(SCHEDULE_KIND_VALUES),
  /** `cron` only: 5 fields (minute precision) or 6 (seconds first). */
  cron: z.string().trim().max(200).optional(),
  /** IANA time zone the cron expression is read in; default UTC. */
  timezone: z.string().trim().max(100).optional(),
  /** `once` only: when it fires (ISO 8601 with offset). */
  runAt: z.iso.datetime({ offset: true }).optional(),
  /** What the agent is sent; for a webhook, a template with `{{body.path}}` placeholders. */
  prompt: promptSchema,
  enabled: z.boolean().optional(),
  /** Let every member of the workspace read the runs' output. */
  shareOutput: z.boolean().optional(),
  /** How long a run may take, waking the runtime and waiting for approvals included (30 s to 6 h). */
  timeoutSeconds: z.number().int().min(30).max(21_600).optional(),
  notifyUrl: notifyUrlSchema.nullable().optional(),
});
export type CreateScheduleBody = z.infer<typeof createScheduleBodySchema>;

/** Everything but the kind and the agent can change. */
export const updateScheduleBodySchema = createScheduleBodySchema.omit({ kind: true, agentId: true }).partial();
export type UpdateScheduleBody = z.infer<typeof updateScheduleBodySchema>;

export const scheduleQuerySchema = pageQuerySchema.extend({ agentId: z.uuid().optional() });

export const schedulePreviewQuerySchema = z.object({
  cron: z.string().trim().min(1).max(200),
  timezone: z.string().trim().max(100).optional(),
});

/** The next firings of a cron rule in its zone (ISO instants), and the operator's minimum interval. */
export const schedulePreviewSchema = z.object({
  next: z.array(z.string()),
  timezone: z.string(),
  minIntervalSeconds: z.number(),
});

export const scheduleSchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  agentId: z.uuid().nullable(),
  agentName: z.string().nullable(),
  name: z.string(),
  kind: z.enum(SCHEDULE_KIND_VALUES),
  cron: z.string().nullable(),
  timezone: z.string(),
  runAt: z.string().nullable(),
  prompt: z.string(),
  enabled: z.boolean(),
  shareOutput: z.boolean(),
  timeoutSeconds: z.number(),
  nextRunAt: z.string().nullable(),
  notifyUrl: z.string().nullable(),
  /** Webhooks: the path to POST to (prefix the server's public URL). */
  hookPath: z.string().nullable(),
  createdBy: z.object({
    kind: z.enum(["user", "api_key", "unknown"]),
    id: z.uuid().nullable(),
    name: z.string().nullable(),
  }),
  /** The creator's session holding the output; null for everyone else. */
  sessionId: z.uuid().nullable(),
  consecutiveFailures: z.number(),
  /** True once the failure alert went out for the current streak of failures. */
  failing: z.boolean(),
  lastRunAt: z.string().nullable(),
  lastRunStatus: z.enum(RUN_STATUS_VALUES).nullable(),
  /** Whether the caller may change, run or delete it (its creator, or `schedules:manage`). */
  canManage: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type ScheduleView = z.infer<typeof scheduleSchema>;

/** A created webhook (or one with a notification URL) answers with its secret once; nobody can read it again. */
export const createdScheduleSchema = scheduleSchema.extend({ secret: z.string().nullable() });
export const scheduleSecretSchema = z.object({ secret: z.string() });

export const runQuerySchema = pageQuerySchema.extend({ status: z.enum(RUN_STATUS_VALUES).optional() });

export const runSchema = z.object({
  id: z.uuid(),
  scheduleId: z.uuid(),
  trigger: z.enum(RUN_TRIGGER_VALUES),
  scheduledFor: z.string(),
  status: z.enum(RUN_STATUS_VALUES),
  attempts: z.number(),
  /** One of RUN_ERROR_CODES or a chat error code. */
  errorCode: z.string().nullable(),
  error: z.string().nullable(),
  queuedAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  durationMs: z.number().nullable(),
  promptTokens: z.number().nullable(),
  completionTokens: z.number().nullable(),
  notifyStatus: z.enum(["pending", "delivered", "failed"]).nullable(),
});
export type RunView = z.infer<typeof runSchema>;

/** One run with its output, for those who may read it (else `output` is null and `outputHidden` true). */
export const runDetailSchema = runSchema.extend({
  outputHidden: z.boolean(),
  output: z
    .object({
      prompt: z.string(),
      content: z.string(),
      /** The execution trace (tool steps), as the chat's message view carries it. */
      trace: z.unknown().nullable(),
    })
    .nullable(),
});
export type RunDetail = z.infer<typeof runDetailSchema>;

/** What a webhook call answers: the run it queued. */
export const hookAcceptedSchema = z.object({ runId: z.uuid(), status: z.literal("queued") });
