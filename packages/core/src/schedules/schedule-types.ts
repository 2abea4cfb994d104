import { schema, type Tx } from "@reef/db";
import { and, eq, isNull } from "drizzle-orm";
import type { TranscriptSealer } from "../chat/transcript-sealing.ts";

export type ScheduleRow = typeof schema.schedules.$inferSelect;
export type RunRow = typeof schema.scheduleRuns.$inferSelect;

/** What a run is asked for beyond its schedule: who pressed "run now", or a webhook call's delivery and prompt. */
export interface RunRequest {
  trigger: "manual" | "webhook";
  requestedByUserId?: string | null | undefined;
  deliveryId?: string | null | undefined;
  /** A webhook's prompt, rendered from the call's body (sealed on the run row). */
  prompt?: string | null | undefined;
}

/**
 * The job queue's side of schedules, used by the services that change them
 * (schedule-service.ts, webhook calls). Everything happens inside the caller's
 * transaction, so a schedule change and its queued firing commit together.
 */
export interface SchedulerQueue {
  /**
   * Plans the schedule's next firing from its rule: sets `next_run_at` (null
   * when paused, a webhook, or a `once` already fired) and queues that firing.
   * Call after every create, change, pause and resume. @returns the next firing.
   */
  plan(tx: Tx, schedule: ScheduleRow): Promise<Date | null>;
  /** Queues one run now: inserts its row (`queued`) and its job. */
  enqueueRun(tx: Tx, schedule: ScheduleRow, request: RunRequest): Promise<RunRow>;
}

/** Binds a webhook run's rendered prompt to its run. */
export const runPromptRecordId = (runId: string) => `schedule-run-prompt:${runId}`;
/** Binds a schedule's HMAC secret to its schedule. */
export const scheduleSecretRecordId = (scheduleId: string) => `schedule-secret:${scheduleId}`;

/** Who a schedule's runs act as: its creator, a person or an API key (null: the creator is gone). */
export function scheduleOwner(
  s: ScheduleRow,
): { userId: string; apiKeyId: null } | { userId: null; apiKeyId: string } | null {
  if (s.createdByUserId) return { userId: s.createdByUserId, apiKeyId: null };
  if (s.createdByApiKeyId) return { userId: null, apiKeyId: s.createdByApiKeyId };
  return null;
}

/**
 * The creator's chat session that receives a schedule's output, created (with
 * the schedule's name as its sealed title) when missing: at creation, and
 * again if its owner deleted it. Null when the creator or the agent is gone.
 */
export async function ensureScheduleSession(tx: Tx, sealer: TranscriptSealer, s: ScheduleRow): Promise<string | null> {
  const owner = scheduleOwner(s);
  if (!owner || !s.agentId) return null;
  const { chatSessions } = schema;
  const [found] = await tx
    .select({ id: chatSessions.id })
    .from(chatSessions)
    .where(
      and(
        eq(chatSessions.scheduleId, s.id),
        eq(chatSessions.agentId, s.agentId),
        owner.userId ? eq(chatSessions.userId, owner.userId) : isNull(chatSessions.userId),
        owner.apiKeyId ? eq(chatSessions.apiKeyId, owner.apiKeyId) : isNull(chatSessions.apiKeyId),
      ),
    )
    .limit(1);
  if (found) return found.id;
  const id = crypto.randomUUID();
  const title = await sealer.sealTitle(tx, s.workspaceId, id, s.name);
  await tx.insert(chatSessions).values({
    id,
    workspaceId: s.workspaceId,
    agentId: s.agentId,
    ...owner,
    title,
    titleSealed: true,
    scheduleId: s.id,
  });
  return id;
}
