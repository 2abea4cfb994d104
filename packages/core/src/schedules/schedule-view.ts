import type { RunView, ScheduleView } from "@reef/contracts";
import { schema, type Tx } from "@reef/db";
import { and, eq, inArray, isNull } from "drizzle-orm";
import type { RequestContext } from "../shared/context.ts";
import type { Access } from "../workspace/workspace-access.ts";
import type { RunRow, ScheduleRow } from "./schedule-types.ts";

const { agents, users, apiKeys, chatSessions } = schema;

/** Where another system posts to fire a webhook schedule (prefix the server's public URL). */
export const hookPath = (workspaceId: string, scheduleId: string) => `/api/v1/hooks/${workspaceId}/${scheduleId}`;

/** The caller as a schedule creator: a person or an API key (null for anyone else). */
export function callerOwner(
  ctx: RequestContext,
  access: Access,
): { userId: string; apiKeyId: null } | { userId: null; apiKeyId: string } | null {
  if (access.userId) return { userId: access.userId, apiKeyId: null };
  if (ctx.actor.kind === "api_key") return { userId: null, apiKeyId: ctx.actor.keyId };
  return null;
}

/** Whether the caller created the schedule (its runs act as them, and its output is theirs). */
export function isCreator(ctx: RequestContext, access: Access, s: ScheduleRow): boolean {
  const me = callerOwner(ctx, access);
  if (!me) return false;
  return me.userId ? s.createdByUserId === me.userId : s.createdByApiKeyId === me.apiKeyId;
}

/** What a view needs beyond the row, fetched for a whole page at once. */
interface Extras {
  agentNames: Map<string, string>;
  creatorNames: Map<string, string>;
  sessions: Map<string, string>;
}

async function extrasFor(tx: Tx, ctx: RequestContext, access: Access, rows: ScheduleRow[]): Promise<Extras> {
  const agentIds = [...new Set(rows.flatMap((r) => (r.agentId ? [r.agentId] : [])))];
  const userIds = [...new Set(rows.flatMap((r) => (r.createdByUserId ? [r.createdByUserId] : [])))];
  const keyIds = [...new Set(rows.flatMap((r) => (r.createdByApiKeyId ? [r.createdByApiKeyId] : [])))];
  const agentNames = new Map<string, string>();
  const creatorNames = new Map<string, string>();
  const sessions = new Map<string, string>();
  if (agentIds.length) {
    for (const a of await tx
      .select({ id: agents.id, name: agents.name })
      .from(agents)
      .where(inArray(agents.id, agentIds))) {
      agentNames.set(a.id, a.name);
    }
  }
  if (userIds.length) {
    for (const u of await tx.select({ id: users.id, name: users.name }).from(users).where(inArray(users.id, userIds))) {
      creatorNames.set(u.id, u.name);
    }
  }
  if (keyIds.length) {
    for (const k of await tx
      .select({ id: apiKeys.id, name: apiKeys.name })
      .from(apiKeys)
      .where(inArray(apiKeys.id, keyIds))) {
      creatorNames.set(k.id, k.name);
    }
  }
  // Only the caller's own output sessions: nobody learns where another member's output lives.
  const me = callerOwner(ctx, access);
  const ids = rows.map((r) => r.id);
  if (me && ids.length) {
    const found = await tx
      .select({ id: chatSessions.id, scheduleId: chatSessions.scheduleId })
      .from(chatSessions)
      .where(
        and(
          inArray(chatSessions.scheduleId, ids),
          me.userId ? eq(chatSessions.userId, me.userId) : isNull(chatSessions.userId),
          me.apiKeyId ? eq(chatSessions.apiKeyId, me.apiKeyId) : isNull(chatSessions.apiKeyId),
        ),
      );
    for (const s of found) if (s.scheduleId) sessions.set(s.scheduleId, s.id);
  }
  return { agentNames, creatorNames, sessions };
}

function toView(r: ScheduleRow, extras: Extras, ctx: RequestContext, access: Access, manage: boolean): ScheduleView {
  const creatorId = r.createdByUserId ?? r.createdByApiKeyId;
  return {
    id: r.id,
    workspaceId: r.workspaceId,
    agentId: r.agentId,
    agentName: r.agentId ? (extras.agentNames.get(r.agentId) ?? null) : null,
    name: r.name,
    kind: r.kind,
    cron: r.cron,
    timezone: r.timezone,
    runAt: r.runAt?.toISOString() ?? null,
    prompt: r.prompt,
    enabled: r.enabled,
    shareOutput: r.shareOutput,
    timeoutSeconds: r.timeoutSeconds,
    nextRunAt: r.nextRunAt?.toISOString() ?? null,
    notifyUrl: r.notifyUrl,
    hookPath: r.kind === "webhook" ? hookPath(r.workspaceId, r.id) : null,
    createdBy: {
      kind: r.createdByUserId ? "user" : r.createdByApiKeyId ? "api_key" : "unknown",
      id: creatorId,
      name: creatorId ? (extras.creatorNames.get(creatorId) ?? null) : null,
    },
    sessionId: isCreator(ctx, access, r) ? (extras.sessions.get(r.id) ?? null) : null,
    consecutiveFailures: r.consecutiveFailures,
    failing: r.failureAlertedAt !== null,
    lastRunAt: r.lastRunAt?.toISOString() ?? null,
    lastRunStatus: (r.lastRunStatus as ScheduleView["lastRunStatus"]) ?? null,
    canManage: manage || isCreator(ctx, access, r),
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/**
 * Schedules as the caller sees them. `canManage`: their own (they reached here
 * with `schedules:read`; changing needs `schedules:write` too, which the
 * service checks) or anyone's with `schedules:manage`.
 */
export async function toScheduleViews(
  tx: Tx,
  ctx: RequestContext,
  access: Access,
  rows: ScheduleRow[],
  can: { manage: boolean; write: boolean },
): Promise<ScheduleView[]> {
  const extras = await extrasFor(tx, ctx, access, rows);
  return rows.map((r) => {
    const view = toView(r, extras, ctx, access, can.manage);
    // A viewer who somehow created one (a role lowered later) may no longer change it.
    if (!can.manage && !can.write) view.canManage = false;
    return view;
  });
}

export function toRunView(r: RunRow): RunView {
  return {
    id: r.id,
    scheduleId: r.scheduleId,
    trigger: r.trigger,
    scheduledFor: r.scheduledFor.toISOString(),
    status: r.status,
    attempts: r.attempts,
    errorCode: r.errorCode,
    error: r.error,
    queuedAt: r.queuedAt.toISOString(),
    startedAt: r.startedAt?.toISOString() ?? null,
    finishedAt: r.finishedAt?.toISOString() ?? null,
    durationMs: r.startedAt && r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null,
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
    notifyStatus: (r.notifyStatus as RunView["notifyStatus"]) ?? null,
  };
}
