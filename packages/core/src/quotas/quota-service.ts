import { QuotaExceededError } from "@reef/contracts";
import { schema, type Tx } from "@reef/db";
import { and, eq, gte, sql } from "drizzle-orm";
import type { RequestContext } from "../shared/context.ts";
import type { WorkspaceGate } from "../workspace/workspace-access.ts";

const { usageMonthly, chatMessages } = schema;

/** One day of a workspace's chat use. */
export interface DailyUsage {
  day: string;
  messages: number;
  promptTokens: number;
  completionTokens: number;
}

/** Monthly allowances per workspace; null means unlimited. Plans will set these later. */
export interface QuotaLimits {
  messages: number | null;
  tokens: number | null;
}

export interface UsageView {
  month: string;
  messages: number;
  promptTokens: number;
  completionTokens: number;
  limits: QuotaLimits;
}

/** The first day of `now`'s month (UTC), as stored, and the seconds until the next one. */
export function monthOf(now: Date): { month: string; secondsLeft: number } {
  const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return {
    month: new Date(start).toISOString().slice(0, 10),
    secondsLeft: Math.ceil((next - now.getTime()) / 1000),
  };
}

/**
 * Counts messages and tokens per workspace per month, and refuses a message once
 * an allowance is used up. The check and the count happen under the usage row's
 * lock in the caller's transaction, so concurrent messages cannot overshoot.
 */
export function createQuotaService(deps: { gate: WorkspaceGate; limits: QuotaLimits; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  return {
    /** Counts one message, or throws QUOTA_EXCEEDED (and counts nothing, the transaction rolls back). */
    async reserveMessage(tx: Tx, workspaceId: string): Promise<void> {
      const { month, secondsLeft } = monthOf(now());
      await tx.insert(usageMonthly).values({ workspaceId, month }).onConflictDoNothing();
      const [row] = await tx
        .select()
        .from(usageMonthly)
        .where(and(eq(usageMonthly.workspaceId, workspaceId), eq(usageMonthly.month, month)))
        .for("update");
      if (!row) throw new Error("usage row vanished");
      const { messages, tokens } = deps.limits;
      if (messages !== null && row.messages >= messages) {
        throw new QuotaExceededError(
          `This workspace has used its ${messages} messages for this month. The allowance renews on the 1st; an administrator can raise it.`,
          { limit: "messages", used: row.messages, max: messages, retryAfter: secondsLeft },
        );
      }
      const used = row.promptTokens + row.completionTokens;
      if (tokens !== null && used >= tokens) {
        throw new QuotaExceededError(
          `This workspace has used its ${tokens} tokens for this month. The allowance renews on the 1st; an administrator can raise it.`,
          { limit: "tokens", used, max: tokens, retryAfter: secondsLeft },
        );
      }
      await tx
        .update(usageMonthly)
        .set({ messages: sql`${usageMonthly.messages} + 1` })
        .where(and(eq(usageMonthly.workspaceId, workspaceId), eq(usageMonthly.month, month)));
    },

    /** Adds a finished answer's tokens to the month's count. */
    async recordTokens(tx: Tx, workspaceId: string, promptTokens: number, completionTokens: number): Promise<void> {
      const { month } = monthOf(now());
      await tx
        .insert(usageMonthly)
        .values({ workspaceId, month, promptTokens, completionTokens })
        .onConflictDoUpdate({
          target: [usageMonthly.workspaceId, usageMonthly.month],
          set: {
            promptTokens: sql`${usageMonthly.promptTokens} + ${promptTokens}`,
            completionTokens: sql`${usageMonthly.completionTokens} + ${completionTokens}`,
          },
        });
    },

    /** Messages sent and tokens used per day (UTC) over the last `days` days, oldest first, zero days included. */
    daily(ctx: RequestContext, workspaceId: string, days: number): Promise<DailyUsage[]> {
      return deps.gate.run(ctx, workspaceId, "usage:read", async (tx) => {
        const today = Date.UTC(now().getUTCFullYear(), now().getUTCMonth(), now().getUTCDate());
        const since = new Date(today - (days - 1) * 86_400_000);
        const day = sql<string>`to_char(${chatMessages.createdAt} at time zone 'UTC', 'YYYY-MM-DD')`;
        const rows = await tx
          .select({
            day,
            messages: sql<number>`count(*) filter (where ${chatMessages.role} = 'user')::int`,
            promptTokens: sql<number>`coalesce(sum(${chatMessages.promptTokens}), 0)::int`,
            completionTokens: sql<number>`coalesce(sum(${chatMessages.completionTokens}), 0)::int`,
          })
          .from(chatMessages)
          .where(and(eq(chatMessages.workspaceId, workspaceId), gte(chatMessages.createdAt, since)))
          .groupBy(day);
        const byDay = new Map(rows.map((r) => [r.day, r]));
        return Array.from({ length: days }, (_, i) => {
          const d = new Date(since.getTime() + i * 86_400_000).toISOString().slice(0, 10);
          const r = byDay.get(d);
          return {
            day: d,
            messages: r?.messages ?? 0,
            promptTokens: r?.promptTokens ?? 0,
            completionTokens: r?.completionTokens ?? 0,
          };
        });
      });
    },

    /** This month's usage and allowances. */
    usage(ctx: RequestContext, workspaceId: string): Promise<UsageView> {
      return deps.gate.run(ctx, workspaceId, "usage:read", async (tx) => {
        const { month } = monthOf(now());
        const [row] = await tx
          .select()
          .from(usageMonthly)
          .where(and(eq(usageMonthly.workspaceId, workspaceId), eq(usageMonthly.month, month)));
        return {
          month,
          messages: row?.messages ?? 0,
          promptTokens: row?.promptTokens ?? 0,
          completionTokens: row?.completionTokens ?? 0,
          limits: deps.limits,
        };
      });
    },
  };
}

export type QuotaService = ReturnType<typeof createQuotaService>;
