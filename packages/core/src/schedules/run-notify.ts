import { WEBHOOK_HEADERS } from "@reef/contracts";
import { schema, withWorkspace } from "@reef/db";
import { eq } from "drizzle-orm";
import type { Job } from "pg-boss";
import { createTranscriptSealer } from "../chat/transcript-sealing.ts";
import { EgressRefusedError, guardedPost } from "../shared/guarded-http.ts";
import { scheduleSecretRecordId } from "./schedule-types.ts";
import type { SchedulerDeps } from "./scheduler.ts";
import { signWebhook } from "./webhook-signature.ts";

const { schedules, scheduleRuns, chatMessages } = schema;

/** A run's outbound notification job. */
export interface NotifyJob {
  workspaceId: string;
  runId: string;
}

const NOTIFY_TIMEOUT_MS = 10_000;

/**
 * Delivers a finished run's signed notification to its schedule's `notifyUrl`
 * (retried by pg-boss; `notifyStatus` records the end). Private addresses are
 * refused unless the operator allowed them, as for every URL a member supplies.
 */
export function createRunNotifier(deps: SchedulerDeps & { retryLimit: number }) {
  const sealer = createTranscriptSealer(deps.vault);

  async function mark(job: NotifyJob, status: "delivered" | "failed" | null) {
    await withWorkspace(deps.db, job.workspaceId, (tx) =>
      tx.update(scheduleRuns).set({ notifyStatus: status }).where(eq(scheduleRuns.id, job.runId)),
    );
  }

  return {
    async deliver(job: Job<NotifyJob>): Promise<void> {
      const { workspaceId, runId } = job.data;
      const found = await withWorkspace(deps.db, workspaceId, async (tx) => {
        const [run] = await tx.select().from(scheduleRuns).where(eq(scheduleRuns.id, runId));
        if (!run) return null;
        const [s] = await tx.select().from(schedules).where(eq(schedules.id, run.scheduleId));
        if (!s?.notifyUrl) return { url: null } as const;
        if (!s.secretSealed) return { url: s.notifyUrl, secret: null } as const;
        const secret = await deps.vault.open(tx, workspaceId, scheduleSecretRecordId(s.id), s.secretSealed);
        let output: string | null = null;
        if (run.messageId && run.status === "succeeded") {
          const [m] = await tx.select().from(chatMessages).where(eq(chatMessages.id, run.messageId));
          if (m) output = await sealer.openMessage(tx, m);
        }
        const body = JSON.stringify({
          scheduleId: s.id,
          runId: run.id,
          status: run.status,
          errorCode: run.errorCode,
          finishedAt: run.finishedAt?.toISOString() ?? null,
          output,
        });
        return { url: s.notifyUrl, secret, body } as const;
      });
      if (!found) return;
      if (!found.url) return mark(job.data, null);
      if (!found.secret) return mark(job.data, "failed");
      const ts = Math.floor(Date.now() / 1000);
      const headers = {
        "content-type": "application/json",
        "user-agent": "Reef-Webhook/1",
        [WEBHOOK_HEADERS.timestamp]: String(ts),
        // The run id: a receiver drops the retries of a notification it already has.
        [WEBHOOK_HEADERS.delivery]: runId,
        [WEBHOOK_HEADERS.signature]: signWebhook(found.secret, ts, runId, found.body),
      };
      let status = 0;
      try {
        status = await guardedPost(found.url, {
          headers,
          body: found.body,
          timeoutMs: NOTIFY_TIMEOUT_MS,
          allowedHosts: await deps.allowedHosts(),
        });
      } catch (err) {
        if (err instanceof EgressRefusedError) {
          deps.log?.warn({ workspaceId, runId }, "run notification refused by the outbound address policy");
          return mark(job.data, "failed");
        }
      }
      if (status >= 200 && status < 300) return mark(job.data, "delivered");
      if (job.retryCount >= deps.retryLimit) return mark(job.data, "failed");
      throw new Error(`run notification answered ${status || "nothing"}; retrying`);
    },
  };
}
