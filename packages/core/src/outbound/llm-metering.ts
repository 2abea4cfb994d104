import { type Db, schema, withScope } from "@reef/db";
import type { QuotaService } from "../quotas/quota-service.ts";

const { llmCalls } = schema;

/** One finished LLM call, as metering records it. */
export interface LlmCallRecord {
  /**
   * When the call reached Reef: the row's `created_at`, so the calls list is in the order calls were
   * made (the metering writes run concurrently, after each call ends, and may commit in any order).
   */
  startedAt: Date;
  workspaceId: string;
  /** Null when the call never reached a provider of the workspace (a refused credential). */
  providerId: string | null;
  model: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  firstByteMs: number | null;
  latencyMs: number;
  outcome: (typeof schema.LLM_CALL_OUTCOMES)[number];
  httpStatus: number | null;
}

/** The vendor API a path names, for the usage page (`chat.completions`, `responses`, `messages`, `models`). */
export function endpointOf(rest: string): string {
  const path = rest.split("?")[0]?.replace(/\/+$/, "") ?? "";
  if (/(^|\/)chat\/completions$/.test(path)) return "chat.completions";
  if (/(^|\/)responses$/.test(path)) return "responses";
  if (/(^|\/)messages\/count_tokens$/.test(path)) return "messages.count_tokens";
  if (/(^|\/)messages$/.test(path)) return "messages";
  if (/(^|\/)models(\/|$)/.test(path)) return "models";
  if (/(^|\/)embeddings$/.test(path)) return "embeddings";
  if (/(^|\/)completions$/.test(path)) return "completions";
  return path.split("/").filter(Boolean).at(-1)?.slice(0, 64) ?? "";
}

/**
 * Records LLM calls: one `llm_calls` row each, and its tokens added to the
 * workspace's month (what budgets and quotas read), in one transaction.
 */
export function createLlmMetering(deps: { db: Db; quotas: Pick<QuotaService, "recordTokens"> }) {
  return {
    async record(call: LlmCallRecord): Promise<void> {
      await withScope(deps.db, { workspaceId: call.workspaceId }, async (tx) => {
        await tx.insert(llmCalls).values({
          createdAt: call.startedAt,
          workspaceId: call.workspaceId,
          providerId: call.providerId,
          model: call.model.slice(0, 200),
          endpoint: call.endpoint,
          promptTokens: call.promptTokens,
          completionTokens: call.completionTokens,
          firstByteMs: call.firstByteMs,
          latencyMs: call.latencyMs,
          outcome: call.outcome,
          httpStatus: call.httpStatus,
        });
        if (call.promptTokens > 0 || call.completionTokens > 0) {
          await deps.quotas.recordTokens(tx, call.workspaceId, call.promptTokens, call.completionTokens);
        }
      });
    },
  };
}

export type LlmMetering = ReturnType<typeof createLlmMetering>;
