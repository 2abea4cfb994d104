import { randomUUID } from "node:crypto";
import {
  BadRequestError,
  type CreateScheduleBody,
  ForbiddenError,
  NotFoundError,
  type RunDetail,
  type RunView,
  type ScheduleView,
  type UpdateScheduleBody,
} from "@reef/contracts";
import { type Db, isUuid, schema, type Tx } from "@reef/db";
import { and, desc, eq } from "drizzle-orm";
import type { AgentService } from "../agents/agent-service.ts";
import { appendAudit } from "../audit/audit-service.ts";
import { createTranscriptSealer } from "../chat/transcript-sealing.ts";
import type { RequestContext } from "../shared/context.ts";
import { assertCallable } from "../shared/guarded-http.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import type { Vault } from "../vault/vault-service.ts";
import type { Access, WorkspaceGate } from "../workspace/workspace-access.ts";
import { checkCronRule, checkTimezone } from "./cron-rules.ts";
import { renderPrompt } from "./prompt-template.ts";
import { toRunDetail } from "./run-view.ts";
import {
  ensureScheduleSession,
  type ScheduleRow,
  type SchedulerQueue,
  scheduleSecretRecordId,
} from "./schedule-types.ts";
import { callerOwner, isCreator, toRunView, toScheduleViews } from "./schedule-view.ts";
import { newWebhookSecret } from "./webhook-signature.ts";

const { schedules, scheduleRuns } = schema;

/** How many upcoming firings a preview shows. */
const PREVIEW_COUNT = 5;

/** A schedule created or changed, with its new secret when one was just made (shown this once). */
export type ScheduleWithSecret = ScheduleView & { secret: string | null };

type Timing = Pick<ScheduleRow, "kind" | "cron" | "timezone" | "runAt">;

export function createScheduleService(deps: {
  db: Db;
  gate: WorkspaceGate;
  vault: Vault;
  agents: AgentService;
  /** Plans firings and queues runs (the job queue), inside our transactions. */
  scheduler: SchedulerQueue;
  /** The operator's shortest interval between firings of a cron schedule (seconds). */
  minIntervalSeconds: number;
  /** Non-public hosts the operator lets Reef call; a notification URL elsewhere must be public. */
  notifyAllowedHosts: () => Promise<readonly string[]>;
  /** How long the notification URL's host may take to resolve when it is checked. */
  notifyCheckTimeoutMs?: number;
  now?: () => Date;
}) {
  const { gate, vault } = deps;
  const sealer = createTranscriptSealer(vault);
  const now = deps.now ?? (() => new Date());

  /** Checks the kind's timing and normalises it: a webhook has none, a once no cron. */
  function checkTiming(t: Timing): Timing {
    switch (t.kind) {
      case "cron": {
        if (!t.cron) {
          throw new BadRequestError("Enter a cron expression for this schedule.", { field: "cron" }, "INVALID_CRON");
        }
        const timezone = checkTimezone(t.timezone);
        checkCronRule({ cron: t.cron, timezone }, deps.minIntervalSeconds, now());
        return { kind: "cron", cron: t.cron, timezone, runAt: null };
      }
      case "once": {
        if (!t.runAt) throw new BadRequestError("Choose when this schedule runs.", { field: "runAt" });
        return { kind: "once", cron: null, timezone: checkTimezone(t.timezone), runAt: t.runAt };
      }
      default:
        return { kind: "webhook", cron: null, timezone: checkTimezone(t.timezone), runAt: null };
    }
  }

  function requireFuture(runAt: Date) {
    if (runAt.getTime() <= now().getTime()) {
      throw new BadRequestError(
        "That time has passed: choose a time in the future.",
        { field: "runAt" },
        "RUN_AT_IN_PAST",
      );
    }
  }

  async function checkNotifyUrl(url: string) {
    try {
      await assertCallable(url, {
        allowedHosts: await deps.notifyAllowedHosts(),
        timeoutMs: deps.notifyCheckTimeoutMs ?? 5000,
      });
    } catch {
      throw new BadRequestError(
        "Reef may not call this notification URL: it is not a public address, and the operator has not allowed its host.",
        { field: "notifyUrl" },
        "NOTIFY_URL_NOT_ALLOWED",
      );
    }
  }

  async function sealSecret(tx: Tx, workspaceId: string, scheduleId: string) {
    const secret = newWebhookSecret();
    return { secret, sealed: await vault.seal(tx, workspaceId, scheduleSecretRecordId(scheduleId), secret) };
  }

  async function findSchedule(tx: Tx, workspaceId: string, scheduleId: string): Promise<ScheduleRow> {
    if (!isUuid(scheduleId)) throw new NotFoundError("No such schedule.");
    const [row] = await tx
      .select()
      .from(schedules)
      .where(and(eq(schedules.id, scheduleId), eq(schedules.workspaceId, workspaceId)));
    if (!row) throw new NotFoundError("No such schedule.");
    return row;
  }

  async function canFlags(access: Access) {
    return { manage: await gate.can(access, "schedules:manage"), write: await gate.can(access, "schedules:write") };
  }

  /** Its creator (still allowed to write schedules) or anyone with `schedules:manage`. */
  async function requireManage(ctx: RequestContext, access: Access, s: ScheduleRow) {
    if (await gate.can(access, "schedules:manage")) return;
    if (!isCreator(ctx, access, s)) {
      // The gate audits the refusal (access.denied) after rolling back.
      await gate.require(access, "schedules:manage");
    }
    await gate.require(access, "schedules:write");
  }

  async function viewOf(tx: Tx, ctx: RequestContext, access: Access, row: ScheduleRow): Promise<ScheduleView> {
    const [view] = await toScheduleViews(tx, ctx, access, [row], await canFlags(access));
    if (!view) throw new Error("schedule view missing");
    return view;
  }

  /** Plans the next firing and returns the row as planned. */
  async function plan(tx: Tx, row: ScheduleRow): Promise<ScheduleRow> {
    const next = await deps.scheduler.plan(tx, row);
    return { ...row, nextRunAt: next };
  }

  return {
    /** Newest first; `agentId` narrows to one agent's. */
    list(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined; agentId?: string | undefined },
    ): Promise<Page<ScheduleView>> {
      return gate.run(ctx, workspaceId, "schedules:read", async (tx, access) => {
        const limit = clampLimit(q.limit);
        const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
        const rows = await tx
          .select()
          .from(schedules)
          .where(
            and(
              eq(schedules.workspaceId, workspaceId),
              q.agentId ? eq(schedules.agentId, q.agentId) : undefined,
              olderThan(schedules.createdAt, schedules.id, cursor),
            ),
          )
          .orderBy(desc(schedules.createdAt), desc(schedules.id))
          .limit(limit + 1);
        const page = toPage(
          rows,
          limit,
          (r) => r,
          (r) => ({ createdAt: r.createdAt.toISOString(), id: r.id }),
        );
        return { ...page, items: await toScheduleViews(tx, ctx, access, page.items, await canFlags(access)) };
      });
    },

    /**
     * Creates a schedule whose runs act as the caller (who must be allowed to
     * chat with its agent), with its output session. A webhook (or a schedule
     * with a notification URL) gets its secret, returned only here.
     */
    async create(ctx: RequestContext, workspaceId: string, input: CreateScheduleBody): Promise<ScheduleWithSecret> {
      const timing = checkTiming({
        kind: input.kind,
        cron: input.cron ?? null,
        timezone: input.timezone ?? "UTC",
        runAt: input.runAt ? new Date(input.runAt) : null,
      });
      if (timing.runAt) requireFuture(timing.runAt);
      if (input.notifyUrl) await checkNotifyUrl(input.notifyUrl);
      return gate.run(ctx, workspaceId, "schedules:write", async (tx, access) => {
        await gate.require(access, "chat:use");
        const owner = callerOwner(ctx, access);
        if (!owner) throw new ForbiddenError("Only people and API keys can create schedules.");
        const agent = await deps.agents.forChat(tx, access, input.agentId);
        const id = randomUUID();
        const secret = timing.kind === "webhook" || input.notifyUrl ? await sealSecret(tx, workspaceId, id) : null;
        const [inserted] = await tx
          .insert(schedules)
          .values({
            id,
            workspaceId,
            agentId: agent.id,
            name: input.name,
            ...timing,
            prompt: input.prompt,
            enabled: input.enabled ?? true,
            shareOutput: input.shareOutput ?? false,
            ...(input.timeoutSeconds !== undefined ? { timeoutSeconds: input.timeoutSeconds } : {}),
            notifyUrl: input.notifyUrl ?? null,
            secretSealed: secret?.sealed ?? null,
            createdByUserId: owner.userId,
            createdByApiKeyId: owner.apiKeyId,
          })
          .returning();
        if (!inserted) throw new Error("schedule insert returned nothing");
        await ensureScheduleSession(tx, sealer, inserted);
        const row = await plan(tx, inserted);
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "schedule.create",
          targetType: "schedule",
          targetId: id,
          details: { scheduleId: id, agentId: agent.id, kind: timing.kind, enabled: row.enabled },
        });
        return { ...(await viewOf(tx, ctx, access, row)), secret: secret?.secret ?? null };
      });
    },

    get(ctx: RequestContext, workspaceId: string, scheduleId: string): Promise<ScheduleView> {
      return gate.run(ctx, workspaceId, "schedules:read", async (tx, access) =>
        viewOf(tx, ctx, access, await findSchedule(tx, workspaceId, scheduleId)),
      );
    },

    /**
     * Changes a schedule (its creator, or `schedules:manage`); `enabled: false`
     * pauses it, `true` resumes. The firing is planned again from the new rule.
     * Adding a notification URL to a schedule without a secret makes one,
     * returned this once.
     */
    async update(
      ctx: RequestContext,
      workspaceId: string,
      scheduleId: string,
      patch: UpdateScheduleBody,
    ): Promise<ScheduleWithSecret> {
      if (patch.notifyUrl) await checkNotifyUrl(patch.notifyUrl);
      return gate.run(ctx, workspaceId, "schedules:write", async (tx, access) => {
        const current = await findSchedule(tx, workspaceId, scheduleId);
        await requireManage(ctx, access, current);
        const timingChanged = patch.cron !== undefined || patch.timezone !== undefined || patch.runAt !== undefined;
        const timing = timingChanged
          ? checkTiming({
              kind: current.kind,
              cron: patch.cron ?? current.cron,
              timezone: patch.timezone ?? current.timezone,
              runAt: patch.runAt ? new Date(patch.runAt) : current.runAt,
            })
          : null;
        if (patch.runAt && timing?.runAt) requireFuture(timing.runAt);
        const secret = patch.notifyUrl && !current.secretSealed ? await sealSecret(tx, workspaceId, scheduleId) : null;
        const [updated] = await tx
          .update(schedules)
          .set({
            ...(patch.name !== undefined ? { name: patch.name } : {}),
            ...(timing ?? {}),
            ...(patch.prompt !== undefined ? { prompt: patch.prompt } : {}),
            ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
            ...(patch.shareOutput !== undefined ? { shareOutput: patch.shareOutput } : {}),
            ...(patch.timeoutSeconds !== undefined ? { timeoutSeconds: patch.timeoutSeconds } : {}),
            ...(patch.notifyUrl !== undefined ? { notifyUrl: patch.notifyUrl } : {}),
            ...(secret ? { secretSealed: secret.sealed } : {}),
            updatedAt: new Date(),
          })
          .where(and(eq(schedules.id, scheduleId), eq(schedules.workspaceId, workspaceId)))
          .returning();
        if (!updated) throw new NotFoundError("No such schedule.");
        const row = await plan(tx, updated);
        const action =
          current.enabled && !updated.enabled
            ? "schedule.pause"
            : !current.enabled && updated.enabled
              ? "schedule.resume"
              : "schedule.update";
        await appendAudit(tx, ctx, {
          workspaceId,
          action,
          targetType: "schedule",
          targetId: scheduleId,
          details: {
            scheduleId,
            kind: current.kind,
            enabled: updated.enabled,
            // Which fields changed, never their values (the prompt is the member's text).
            fields: Object.keys(patch).filter((k) => patch[k as keyof UpdateScheduleBody] !== undefined),
          },
        });
        return { ...(await viewOf(tx, ctx, access, row)), secret: secret?.secret ?? null };
      });
    },

    /** Removes a schedule and its runs; the output session stays its creator's. */
    delete(ctx: RequestContext, workspaceId: string, scheduleId: string): Promise<void> {
      return gate.run(ctx, workspaceId, "schedules:write", async (tx, access) => {
        const current = await findSchedule(tx, workspaceId, scheduleId);
        await requireManage(ctx, access, current);
        await tx.delete(schedules).where(and(eq(schedules.id, scheduleId), eq(schedules.workspaceId, workspaceId)));
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "schedule.delete",
          targetType: "schedule",
          targetId: scheduleId,
          details: { scheduleId, kind: current.kind, enabled: current.enabled },
        });
      });
    },

    /** Queues a run now ("run now"), also while paused; the run acts as the schedule's creator. */
    runNow(ctx: RequestContext, workspaceId: string, scheduleId: string): Promise<RunView> {
      return gate.run(ctx, workspaceId, "schedules:write", async (tx, access) => {
        const current = await findSchedule(tx, workspaceId, scheduleId);
        await requireManage(ctx, access, current);
        if (!current.agentId) {
          throw new NotFoundError("This schedule's agent was deleted: choose another agent in a new schedule.");
        }
        const run = await deps.scheduler.enqueueRun(tx, current, {
          trigger: "manual",
          requestedByUserId: access.userId,
          // A webhook's template run by hand: its placeholders have no call to fill them.
          ...(current.kind === "webhook" ? { prompt: renderPrompt(current.prompt, null) } : {}),
        });
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "schedule.run_now",
          targetType: "schedule",
          targetId: scheduleId,
          details: { scheduleId, runId: run.id, kind: current.kind, enabled: current.enabled },
        });
        return toRunView(run);
      });
    },

    /** A new signing secret (the old one stops working at once), shown only in this answer. */
    rotateSecret(ctx: RequestContext, workspaceId: string, scheduleId: string): Promise<{ secret: string }> {
      return gate.run(ctx, workspaceId, "schedules:write", async (tx, access) => {
        const current = await findSchedule(tx, workspaceId, scheduleId);
        await requireManage(ctx, access, current);
        const secret = await sealSecret(tx, workspaceId, scheduleId);
        await tx
          .update(schedules)
          .set({ secretSealed: secret.sealed, updatedAt: new Date() })
          .where(and(eq(schedules.id, scheduleId), eq(schedules.workspaceId, workspaceId)));
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "schedule.rotate_secret",
          targetType: "schedule",
          targetId: scheduleId,
          details: { scheduleId, kind: current.kind },
        });
        return { secret: secret.secret };
      });
    },

    /** The next five firings of a cron rule in its zone, for the cron helper. */
    preview(
      ctx: RequestContext,
      workspaceId: string,
      q: { cron: string; timezone?: string | undefined },
    ): Promise<{ next: string[]; timezone: string; minIntervalSeconds: number }> {
      return gate.run(ctx, workspaceId, "schedules:read", async () => {
        const timezone = checkTimezone(q.timezone ?? "UTC");
        const runs = checkCronRule({ cron: q.cron, timezone }, deps.minIntervalSeconds, now());
        return {
          next: runs.slice(0, PREVIEW_COUNT).map((d) => d.toISOString()),
          timezone,
          minIntervalSeconds: deps.minIntervalSeconds,
        };
      });
    },

    /** A schedule's runs, newest first; `status` narrows to one status. */
    listRuns(
      ctx: RequestContext,
      workspaceId: string,
      scheduleId: string,
      q: { cursor?: string | undefined; limit?: number | undefined; status?: RunView["status"] | undefined },
    ): Promise<Page<RunView>> {
      return gate.run(ctx, workspaceId, "schedules:read", async (tx) => {
        // A tampered cursor is a 400 whichever schedule it is sent for.
        const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
        const limit = clampLimit(q.limit);
        await findSchedule(tx, workspaceId, scheduleId);
        const rows = await tx
          .select()
          .from(scheduleRuns)
          .where(
            and(
              eq(scheduleRuns.workspaceId, workspaceId),
              eq(scheduleRuns.scheduleId, scheduleId),
              q.status ? eq(scheduleRuns.status, q.status) : undefined,
              olderThan(scheduleRuns.queuedAt, scheduleRuns.id, cursor),
            ),
          )
          .orderBy(desc(scheduleRuns.queuedAt), desc(scheduleRuns.id))
          .limit(limit + 1);
        return toPage(rows, limit, toRunView, (r) => ({ createdAt: r.queuedAt.toISOString(), id: r.id }));
      });
    },

    /** One run; its prompt and output only for the schedule's creator, or everyone when it shares its output. */
    getRun(ctx: RequestContext, workspaceId: string, scheduleId: string, runId: string): Promise<RunDetail> {
      return gate.run(ctx, workspaceId, "schedules:read", async (tx, access) => {
        const schedule = await findSchedule(tx, workspaceId, scheduleId);
        if (!isUuid(runId)) throw new NotFoundError("No such run.");
        const [run] = await tx
          .select()
          .from(scheduleRuns)
          .where(
            and(
              eq(scheduleRuns.id, runId),
              eq(scheduleRuns.scheduleId, scheduleId),
              eq(scheduleRuns.workspaceId, workspaceId),
            ),
          );
        if (!run) throw new NotFoundError("No such run.");
        return toRunDetail(tx, vault, schedule, run, schedule.shareOutput || isCreator(ctx, access, schedule));
      });
    },
  };
}

export type ScheduleService = ReturnType<typeof createScheduleService>;
