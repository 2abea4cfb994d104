import { AppError } from "@reef/contracts";
import { schema, type Tx, withWorkspace } from "@reef/db";
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Job } from "pg-boss";
import { appendAudit } from "../audit/audit-service.ts";
import type { ChatTurn } from "../chat/chat-service.ts";
import { createTranscriptSealer } from "../chat/transcript-sealing.ts";
import type { RequestContext } from "../shared/context.ts";
import { createRunAlerts } from "./run-alerts.ts";
import {
  ensureScheduleSession,
  type RunRow,
  runPromptRecordId,
  type ScheduleRow,
  scheduleOwner,
} from "./schedule-types.ts";
import type { SchedulerDeps } from "./scheduler.ts";

const { schedules, scheduleRuns, users, workspaceMembers, apiKeys, agents } = schema;

/** A run job: its id is the run's id. */
export interface RunJob {
  workspaceId: string;
  runId: string;
}

/** Who runs act as, and what their audit entries say. */
const SYSTEM: RequestContext = { actor: { kind: "system", name: "scheduler" } };

type FinalStatus = "succeeded" | "failed" | "skipped" | "timed_out";

/** How an attempt ended. `retry`: worth another attempt while some remain (else it ends as `status`). */
interface Outcome {
  status: FinalStatus;
  errorCode: string | null;
  error: string | null;
  retry?: boolean;
  /** Left for another replica or attempt without counting as this run's end (Reef stopping). */
  requeue?: boolean;
}

interface Produced {
  sessionId: string | null;
  messageId: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
}

const NOTHING: Produced = { sessionId: null, messageId: null, promptTokens: null, completionTokens: null };

const skip = (errorCode: string, error: string): Outcome => ({ status: "skipped", errorCode, error });

const SKIP_AGENT = skip("SKIPPED_AGENT_DELETED", "The schedule's agent was deleted; the run was skipped.");
const SKIP_OWNER = skip(
  "SKIPPED_OWNER_GONE",
  "The schedule's creator can no longer chat in this workspace (left it, lost the role, was deactivated, or the API key was revoked or expired); the run was skipped.",
);

/** The audit verb of a run's outcome. */
const VERB: Record<FinalStatus, string> = {
  succeeded: "succeed",
  failed: "fail",
  skipped: "skip",
  timed_out: "timeout",
};

/** The request context of a run: its schedule's creator as they are now, or why there is none. */
async function ownerContext(tx: Tx, s: ScheduleRow, runId: string): Promise<RequestContext | null> {
  const owner = scheduleOwner(s);
  const requestId = `schedule-run:${runId}`;
  if (owner?.userId) {
    const [member] = await tx
      .select({ deactivatedAt: users.deactivatedAt })
      .from(workspaceMembers)
      .innerJoin(users, eq(users.id, workspaceMembers.userId))
      .where(and(eq(workspaceMembers.workspaceId, s.workspaceId), eq(workspaceMembers.userId, owner.userId)));
    if (!member || member.deactivatedAt) return null;
    return {
      actor: { kind: "user", userId: owner.userId, platformRole: "user", sessionId: "schedule-run" },
      requestId,
    };
  }
  if (owner?.apiKeyId) {
    const [key] = await tx.select().from(apiKeys).where(eq(apiKeys.id, owner.apiKeyId));
    if (!key || key.revokedAt || (key.expiresAt && key.expiresAt <= new Date())) return null;
    return { actor: { kind: "api_key", keyId: key.id, workspaceId: key.workspaceId, role: key.role }, requestId };
  }
  return null;
}

/** What a refused start means for the run. */
function startRefused(err: unknown, agentGone: boolean): Outcome {
  if (!(err instanceof AppError)) {
    return { status: "failed", errorCode: "INTERNAL", error: "The run could not be started.", retry: true };
  }
  switch (err.code) {
    case "QUOTA_EXCEEDED":
      return skip("SKIPPED_QUOTA", err.message);
    case "CONFLICT":
      return skip(
        "SKIPPED_BUSY",
        "The previous answer in this schedule's session was still arriving; the run was skipped.",
      );
    case "NOT_FOUND":
      return agentGone ? SKIP_AGENT : SKIP_OWNER;
    case "FORBIDDEN":
      return SKIP_OWNER;
    case "RATE_LIMITED":
      return { status: "failed", errorCode: err.code, error: err.message, retry: true };
    default:
      return { status: "failed", errorCode: err.code, error: err.message, retry: true };
  }
}

/** What an answer's error event means for the run. */
function answerFailed(code: string, message: string): Outcome {
  switch (code) {
    case "QUOTA_EXCEEDED":
      return skip("SKIPPED_QUOTA", message);
    case "INTERRUPTED":
      return { status: "failed", errorCode: code, error: message, requeue: true };
    case "UNAVAILABLE":
      // No room to start the workspace (a cap) or it would not start: worth retrying, skipped in the end.
      return { status: "skipped", errorCode: "SKIPPED_LIMITS", error: message, retry: true };
    case "PROVIDER_AUTH":
      return { status: "failed", errorCode: code, error: message };
    default:
      return { status: "failed", errorCode: code, error: message, retry: true };
  }
}

/**
 * Executes run jobs: acts as the schedule's creator, sends the prompt through
 * the chat service (which wakes the runtime, counts the quota, relays tool
 * approvals and stores the answer), follows the answer to its end within the
 * schedule's timeout, and records the outcome.
 */
export function createRunExecutor(deps: SchedulerDeps & { sendNotify(tx: Tx, run: RunRow): Promise<void> }) {
  const sealer = createTranscriptSealer(deps.vault);
  const alerts = createRunAlerts(deps);

  /** Records a run's end (only if it has not ended already), its schedule's streak, audit, alert and notification. */
  async function finish(run: RunRow, outcome: Outcome, produced: Produced): Promise<void> {
    const alert = await withWorkspace(deps.db, run.workspaceId, async (tx) => {
      const [s] = await tx.select().from(schedules).where(eq(schedules.id, run.scheduleId));
      const [done] = await tx
        .update(scheduleRuns)
        .set({
          status: outcome.status,
          errorCode: outcome.errorCode,
          error: outcome.error,
          finishedAt: new Date(),
          ...(produced.sessionId ? produced : {}),
          notifyStatus: s?.notifyUrl ? "pending" : null,
        })
        .where(and(eq(scheduleRuns.id, run.id), inArray(scheduleRuns.status, ["queued", "running"])))
        .returning();
      if (!done || !s) return null;
      const failure = outcome.status === "failed" || outcome.status === "timed_out";
      const success = outcome.status === "succeeded";
      const [after] = await tx
        .update(schedules)
        .set({
          lastRunAt: new Date(),
          lastRunStatus: outcome.status,
          ...(failure ? { consecutiveFailures: sql`${schedules.consecutiveFailures} + 1` } : {}),
          ...(success ? { consecutiveFailures: 0, failureAlertedAt: null } : {}),
        })
        .where(eq(schedules.id, s.id))
        .returning();
      await appendAudit(tx, SYSTEM, {
        workspaceId: run.workspaceId,
        action: `schedule.run.${VERB[outcome.status]}`,
        targetType: "schedule_run",
        targetId: run.id,
        outcome: success ? "success" : "failure",
        details: { scheduleId: s.id, runId: run.id, attempt: done.attempts, errorCode: outcome.errorCode },
      });
      if (s.notifyUrl) await deps.sendNotify(tx, done);
      if (!failure || !after || after.consecutiveFailures < deps.config.scheduleFailureAlertAfter) return null;
      // Claimed here, once per streak, whichever replica records the failure that reaches the threshold.
      const [claimed] = await tx
        .update(schedules)
        .set({ failureAlertedAt: new Date() })
        .where(and(eq(schedules.id, s.id), sql`${schedules.failureAlertedAt} is null`))
        .returning();
      return claimed ? await alerts.prepare(tx, claimed, done) : null;
    });
    if (alert) await alerts.send(alert);
  }

  /** Back to `queued` for the next attempt, keeping why this one failed. */
  async function requeue(run: RunRow, outcome: Outcome, produced: Produced): Promise<void> {
    await withWorkspace(deps.db, run.workspaceId, (tx) =>
      tx
        .update(scheduleRuns)
        .set({
          status: "queued",
          errorCode: outcome.errorCode,
          error: outcome.error,
          ...(produced.sessionId ? produced : {}),
        })
        .where(and(eq(scheduleRuns.id, run.id), eq(scheduleRuns.status, "running"))),
    );
  }

  /** Follows the answer to its end; stops it at the deadline (`timed_out`) or when pg-boss gives the job up. */
  async function follow(turn: ChatTurn, sessionId: string, s: ScheduleRow, startedAt: number, jobSignal: AbortSignal) {
    const produced: Produced = {
      sessionId,
      messageId: turn.assistantMessageId,
      promptTokens: null,
      completionTokens: null,
    };
    let timedOut = false;
    const left = Math.max(1000, s.timeoutSeconds * 1000 - (Date.now() - startedAt));
    const timer = setTimeout(() => {
      timedOut = true;
      deps.chat.stopTurn(sessionId);
    }, left);
    const onAbort = () => deps.chat.stopTurn(sessionId);
    jobSignal.addEventListener("abort", onAbort, { once: true });
    let outcome: Outcome | undefined;
    // However the stopped answer ends (done or error), past the deadline it is a time-out.
    const timedOutOutcome: Outcome = {
      status: "timed_out",
      errorCode: "TIMED_OUT",
      error: `The run took longer than its timeout (${s.timeoutSeconds} s) and was stopped.`,
    };
    try {
      for await (const ev of turn.subscription.events) {
        if (ev.type === "usage") {
          produced.promptTokens = ev.promptTokens;
          produced.completionTokens = ev.completionTokens;
        } else if (ev.type === "done") {
          outcome = timedOut
            ? timedOutOutcome
            : ev.status === "complete"
              ? { status: "succeeded", errorCode: null, error: null }
              : {
                  status: "failed",
                  errorCode: "INTERRUPTED",
                  error: "The run was stopped before its answer ended.",
                  requeue: true,
                };
        } else if (ev.type === "error") {
          outcome = timedOut ? timedOutOutcome : answerFailed(ev.code, ev.message);
        }
      }
    } finally {
      clearTimeout(timer);
      jobSignal.removeEventListener("abort", onAbort);
      turn.subscription.close();
    }
    return {
      outcome: outcome ?? {
        status: "failed" as const,
        errorCode: "INTERNAL",
        error: "The answer ended without finishing.",
        retry: true,
      },
      produced,
    };
  }

  return {
    /** Seals a webhook run's rendered prompt on its row (bound to the run's id). */
    async sealPrompt(tx: Tx, run: RunRow, prompt: string): Promise<string> {
      const sealed = await deps.vault.seal(tx, run.workspaceId, runPromptRecordId(run.id), prompt);
      await tx.update(scheduleRuns).set({ promptSealed: sealed }).where(eq(scheduleRuns.id, run.id));
      return sealed;
    },

    /**
     * One attempt of a run. Throws (pg-boss retries with backoff) when a retryable
     * failure has attempts left, or when Reef stops under it; otherwise records the end.
     */
    async execute(job: Job<RunJob>, retryLimit: number): Promise<void> {
      const { workspaceId, runId } = job.data;
      const lastAttempt = job.retryCount >= retryLimit;
      const startedAt = Date.now();
      const claim = await withWorkspace(deps.db, workspaceId, async (tx) => {
        const [row] = await tx.select().from(scheduleRuns).where(eq(scheduleRuns.id, runId));
        if (!row || (row.status !== "queued" && row.status !== "running")) return null;
        const [s] = await tx.select().from(schedules).where(eq(schedules.id, row.scheduleId));
        if (!s) return null;
        const [run] = await tx
          .update(scheduleRuns)
          .set({
            status: "running",
            attempts: sql`${scheduleRuns.attempts} + 1`,
            startedAt: sql`coalesce(${scheduleRuns.startedAt}, now())`,
          })
          .where(eq(scheduleRuns.id, runId))
          .returning();
        if (!run) return null;
        await appendAudit(tx, SYSTEM, {
          workspaceId,
          action: "schedule.run.start",
          targetType: "schedule_run",
          targetId: runId,
          details: { scheduleId: s.id, runId, attempt: run.attempts, errorCode: null },
        });
        if (!s.agentId) return { run, s, skipped: SKIP_AGENT };
        const ctx = await ownerContext(tx, s, runId);
        if (!ctx) return { run, s, skipped: SKIP_OWNER };
        const sessionId = await ensureScheduleSession(tx, sealer, s);
        if (!sessionId) return { run, s, skipped: SKIP_OWNER };
        const prompt = run.promptSealed
          ? await deps.vault.open(tx, workspaceId, runPromptRecordId(runId), run.promptSealed)
          : s.prompt;
        return { run, s, ctx, sessionId, prompt };
      });
      if (!claim) return;
      const { run, s } = claim;
      if ("skipped" in claim) return finish(run, claim.skipped, NOTHING);

      let result: { outcome: Outcome; produced: Produced };
      try {
        const turn = await deps.chat.startTurn(claim.ctx, workspaceId, claim.sessionId, claim.prompt);
        result = await follow(turn, claim.sessionId, s, startedAt, job.signal);
      } catch (err) {
        const agentGone = await withWorkspace(deps.db, workspaceId, async (tx) => {
          const [a] = await tx
            .select({ id: agents.id })
            .from(agents)
            .where(eq(agents.id, s.agentId ?? ""));
          return !a;
        });
        result = { outcome: startRefused(err, agentGone), produced: { ...NOTHING, sessionId: claim.sessionId } };
        if (!(err instanceof AppError)) deps.log?.warn({ err, workspaceId, runId }, "a scheduled run could not start");
      }
      const { outcome, produced } = result;
      if (outcome.requeue || (outcome.retry && !lastAttempt)) {
        await requeue(run, outcome, produced);
        throw new Error(`run ${runId} attempt ${run.attempts} did not succeed (${outcome.errorCode}); retrying`);
      }
      await finish(run, outcome, produced);
    },

    /** The run's job failed for good without the run being recorded (Reef stopped under it every time). */
    async deadLetter(data: RunJob): Promise<void> {
      const [run] = await withWorkspace(deps.db, data.workspaceId, (tx) =>
        tx.select().from(scheduleRuns).where(eq(scheduleRuns.id, data.runId)),
      );
      if (!run || (run.status !== "queued" && run.status !== "running")) return;
      await finish(
        run,
        {
          status: "failed",
          errorCode: run.errorCode ?? "INTERRUPTED",
          error: `Reef stopped while running it, and it was not retried further.${run.error ? ` Last error: ${run.error}` : ""}`,
        },
        NOTHING,
      );
    },
  };
}
