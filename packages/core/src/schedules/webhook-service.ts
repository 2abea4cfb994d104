import { AppError, NotFoundError } from "@reef/contracts";
import { type Db, isUuid, schema, withScope } from "@reef/db";
import { and, eq } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext } from "../shared/context.ts";
import { isUniqueViolation } from "../shared/pg-errors.ts";
import type { Vault } from "../vault/vault-service.ts";
import { renderPrompt } from "./prompt-template.ts";
import { type SchedulerQueue, scheduleSecretRecordId } from "./schedule-types.ts";
import { type SignedHeaders, verifyWebhook } from "./webhook-signature.ts";

const { schedules, scheduleRuns } = schema;

/** Where a call came from, for the audit trail (there is no signed-in actor). */
export type CallFacts = Pick<RequestContext, "ip" | "userAgent" | "requestId">;

const notFound = () => new NotFoundError("No such trigger.");

const replayed = () =>
  new AppError("WEBHOOK_REPLAYED", "This delivery id was already accepted: send each call with a new X-Reef-Delivery.");

function parseBody(raw: Buffer): unknown {
  const text = raw.toString("utf8");
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError("MALFORMED_JSON", "The request body is not valid JSON.");
  }
}

/**
 * Inbound webhook triggers: another system (n8n, CI, …) posts a signed JSON
 * body, which is rendered into the schedule's prompt and queued as a run that
 * acts as the schedule's creator. There is no caller identity: the secret is
 * the credential, so nothing is revealed before the signature checks out, and
 * an unknown trigger and another workspace's answer the same 404.
 */
export function createWebhookService(deps: {
  db: Db;
  vault: Vault;
  scheduler: SchedulerQueue;
  rateLimits: RateLimits;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  return {
    /**
     * Verifies and queues one call. Checked in this order: the trigger exists
     * (404), signature (SIGNATURE_INVALID), freshness (SIGNATURE_EXPIRED), paused
     * (SCHEDULE_PAUSED), the trigger's rate limit (RATE_LIMITED), replay
     * (WEBHOOK_REPLAYED). None of the refusals records a run.
     */
    async accept(
      facts: CallFacts,
      workspaceId: string,
      scheduleId: string,
      headers: SignedHeaders,
      rawBody: Buffer,
    ): Promise<{ runId: string; status: "queued" }> {
      if (!isUuid(workspaceId) || !isUuid(scheduleId)) throw notFound();
      const ctx: RequestContext = { ...facts, actor: { kind: "system", name: "webhook" } };
      const scope = { workspaceId };
      const found = await withScope(deps.db, scope, async (tx) => {
        const [row] = await tx
          .select()
          .from(schedules)
          .where(
            and(eq(schedules.id, scheduleId), eq(schedules.workspaceId, workspaceId), eq(schedules.kind, "webhook")),
          );
        if (!row?.secretSealed) return undefined;
        const secret = await deps.vault.open(tx, workspaceId, scheduleSecretRecordId(row.id), row.secretSealed);
        return { row, secret };
      });
      if (!found) throw notFound();
      const { deliveryId } = verifyWebhook(found.secret, headers, rawBody, now());
      if (!found.row.enabled) {
        throw new AppError("SCHEDULE_PAUSED", "This trigger is paused: resume it to accept calls.");
      }
      // Outside any transaction: the limiter uses its own pool connection.
      await deps.rateLimits.consume("webhook", `${workspaceId}:${scheduleId}`, ctx, workspaceId);
      const body = parseBody(rawBody);
      try {
        return await withScope(deps.db, scope, async (tx) => {
          const [seen] = await tx
            .select({ id: scheduleRuns.id })
            .from(scheduleRuns)
            .where(and(eq(scheduleRuns.scheduleId, scheduleId), eq(scheduleRuns.deliveryId, deliveryId)))
            .limit(1);
          if (seen) throw replayed();
          // Re-read in this transaction: deleted or paused since the first look means no run.
          const [row] = await tx
            .select()
            .from(schedules)
            .where(and(eq(schedules.id, scheduleId), eq(schedules.workspaceId, workspaceId)));
          if (!row) throw notFound();
          if (!row.enabled) throw new AppError("SCHEDULE_PAUSED", "This trigger is paused: resume it to accept calls.");
          const run = await deps.scheduler.enqueueRun(tx, row, {
            trigger: "webhook",
            deliveryId,
            prompt: renderPrompt(row.prompt, body),
          });
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "schedule.webhook.accept",
            targetType: "schedule",
            targetId: scheduleId,
            details: { scheduleId, runId: run.id, deliveryId },
          });
          return { runId: run.id, status: "queued" as const };
        });
      } catch (err) {
        // Two calls with one delivery id at once: the unique index lets one through.
        if (isUniqueViolation(err)) throw replayed();
        throw err;
      }
    },
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
