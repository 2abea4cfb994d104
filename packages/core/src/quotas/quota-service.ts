import { QuotaExceededError } from "@reef/contracts";
import { schema, type Tx } from "@reef/db";
import { and, desc, eq, gte, sql } from "drizzle-orm";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import type { WorkspaceGate } from "../workspace/workspace-access.ts";

const { usageMonthly, chatMessages, llmCalls, providers, workspaces } = schema;

/** One day of a workspace's use: messages people sent, and the LLM calls its gateway made (background ones too). */
export interface DailyUsage {
  day: string;
  messages: number;
  /** LLM calls through Reef's proxy. */
  calls: number;
  promptTokens: number;
  completionTokens: number;
}

/** One LLM call as the usage page lists it: never its content. */
export interface LlmCallView {
  id: number;
  providerId: string | null;
  providerName: string | null;
  model: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  firstByteMs: number | null;
  latencyMs: number;
  outcome: "ok" | "error" | "refused" | "budget" | "aborted";
  httpStatus: number | null;
  createdAt: string;
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
  /** A workspace's own monthly token budget (set by an operator; null: none), else the platform default. */
  const limitFor = (budget: number | null | undefined) => budget ?? deps.limits.tokens;

  async function tokenLimit(tx: Tx, workspaceId: string): Promise<number | null> {
    const [row] = await tx
      .select({ budget: workspaces.monthlyTokenBudget })
      .from(workspaces)
      .where(eq(workspaces.id, workspaceId));
    return limitFor(row?.budget);
  }

  /**
   * Counts one message as a statement for the caller to embed in one of its own
   * (a CTE, so counting costs no round trip of its own; it locks the month's
   * usage row), and checks what that statement returned: `enforce` throws
   * QUOTA_EXCEEDED when an allowance is used up, which rolls the count back with
   * the caller's transaction, together with whatever was written beside it.
   */
  function messageCount(tx: Tx, workspaceId: string) {
    const { month, secondsLeft } = monthOf(now());
    const statement = tx
      .insert(usageMonthly)
      .values({ workspaceId, month, messages: 1 })
      .onConflictDoUpdate({
        target: [usageMonthly.workspaceId, usageMonthly.month],
        set: { messages: sql`${usageMonthly.messages} + 1` },
      })
      .returning({
        messages: usageMonthly.messages,
        promptTokens: usageMonthly.promptTokens,
        completionTokens: usageMonthly.completionTokens,
        budget:
          sql`(select ${workspaces.monthlyTokenBudget} from ${workspaces} where ${workspaces.id} = ${workspaceId})`.as(
            "budget",
          ),
      });
    /** `counted`: the statement's row by its column names (bigints arrive as text). */
    const enforce = (counted: Record<string, unknown> | undefined) => {
      if (!counted) throw new Error("usage row vanished");
      // Messages sent before this one.
      const sent = Number(counted.messages) - 1;
      const { messages } = deps.limits;
      const tokens = limitFor(counted.budget == null ? null : Number(counted.budget));
      if (messages !== null && sent >= messages) {
        throw new QuotaExceededError(
          `This workspace has used its ${messages} messages for this month. The allowance renews on the 1st; an administrator can raise it.`,
          { limit: "messages", used: sent, max: messages, retryAfter: secondsLeft },
        );
      }
      const used = Number(counted.prompt_tokens) + Number(counted.completion_tokens);
      if (tokens !== null && used >= tokens) {
        throw new QuotaExceededError(
          `This workspace has used its monthly token budget (${tokens} tokens). It renews on the 1st; an administrator can raise it.`,
          { limit: "tokens", used, max: tokens, retryAfter: secondsLeft },
        );
      }
    };
    return { statement, enforce };
  }

  return {
    /**
     * The monthly token limit of a workspace whose own budget is `budget` (null:
     * the platform default): what `reserveMessage` enforces, and the LLM proxy too.
     */
    tokenLimitFor(budget: number | null): number | null {
      return limitFor(budget);
    },

    messageCount,

    /** Counts one message on its own statement, or throws QUOTA_EXCEEDED (see {@link messageCount}). */
    async reserveMessage(tx: Tx, workspaceId: string): Promise<void> {
      const { statement, enforce } = messageCount(tx, workspaceId);
      // drizzle parenthesises the embedded insert.
      const { rows } = await tx.execute(sql`with counted as ${statement} select * from counted`);
      enforce(rows[0]);
    },

    /**
     * Adds an LLM call's tokens to the month's count. Only the LLM proxy calls
     * this (every call passes there, background ones too), so nothing counts twice.
     */
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

    /**
     * Messages sent, and LLM calls and tokens metered at the proxy, per day (UTC)
     * over the last `days` days, oldest first, zero days included.
     */
    daily(ctx: RequestContext, workspaceId: string, days: number): Promise<DailyUsage[]> {
      return deps.gate.run(ctx, workspaceId, "usage:read", async (tx) => {
        const today = Date.UTC(now().getUTCFullYear(), now().getUTCMonth(), now().getUTCDate());
        const since = new Date(today - (days - 1) * 86_400_000);
        const dayOf = (at: typeof chatMessages.createdAt | typeof llmCalls.createdAt) =>
          sql<string>`to_char(${at} at time zone 'UTC', 'YYYY-MM-DD')`;
        const messageDay = dayOf(chatMessages.createdAt);
        const messages = await tx
          .select({ day: messageDay, messages: sql<number>`count(*)::int` })
          .from(chatMessages)
          .where(
            and(
              eq(chatMessages.workspaceId, workspaceId),
              eq(chatMessages.role, "user"),
              gte(chatMessages.createdAt, since),
            ),
          )
          .groupBy(messageDay);
        const callDay = dayOf(llmCalls.createdAt);
        const calls = await tx
          .select({
            day: callDay,
            calls: sql<number>`count(*)::int`,
            promptTokens: sql<number>`coalesce(sum(${llmCalls.promptTokens}), 0)::int`,
            completionTokens: sql<number>`coalesce(sum(${llmCalls.completionTokens}), 0)::int`,
          })
          .from(llmCalls)
          .where(and(eq(llmCalls.workspaceId, workspaceId), gte(llmCalls.createdAt, since)))
          .groupBy(callDay);
        const messagesByDay = new Map(messages.map((r) => [r.day, r.messages]));
        const callsByDay = new Map(calls.map((r) => [r.day, r]));
        return Array.from({ length: days }, (_, i) => {
          const d = new Date(since.getTime() + i * 86_400_000).toISOString().slice(0, 10);
          const c = callsByDay.get(d);
          return {
            day: d,
            messages: messagesByDay.get(d) ?? 0,
            calls: c?.calls ?? 0,
            promptTokens: c?.promptTokens ?? 0,
            completionTokens: c?.completionTokens ?? 0,
          };
        });
      });
    },

    /** The workspace's LLM calls, newest first, keyset-paginated: what was called, never what was said. */
    listCalls(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<LlmCallView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "integer" });
      return deps.gate.run(ctx, workspaceId, "usage:read", async (tx) => {
        const rows = await tx
          .select({ call: llmCalls, providerName: providers.name })
          .from(llmCalls)
          .leftJoin(providers, eq(providers.id, llmCalls.providerId))
          .where(and(eq(llmCalls.workspaceId, workspaceId), olderThan(llmCalls.createdAt, llmCalls.id, cursor)))
          .orderBy(desc(llmCalls.createdAt), desc(llmCalls.id))
          .limit(limit + 1);
        return toPage(
          rows,
          limit,
          ({ call, providerName }) => ({
            id: call.id,
            providerId: call.providerId,
            providerName,
            model: call.model,
            endpoint: call.endpoint,
            promptTokens: call.promptTokens,
            completionTokens: call.completionTokens,
            firstByteMs: call.firstByteMs,
            latencyMs: call.latencyMs,
            outcome: call.outcome,
            httpStatus: call.httpStatus,
            createdAt: call.createdAt.toISOString(),
          }),
          ({ call }) => ({ createdAt: call.createdAt.toISOString(), id: call.id }),
        );
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
          limits: { messages: deps.limits.messages, tokens: await tokenLimit(tx, workspaceId) },
        };
      });
    },
  };
}

export type QuotaService = ReturnType<typeof createQuotaService>;
