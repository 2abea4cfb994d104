import type { ChatErrorCode } from "@reef/contracts";
import type { MessageStatus, schema } from "@reef/db";
import { parseTrace, type TraceStep } from "./turn-trace.ts";

type MessageRow = typeof schema.chatMessages.$inferSelect;

export interface MessageView {
  id: number;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  error: string | null;
  /** The stable code of `error` (null when the answer did not fail, or failed before codes were kept). */
  errorCode: ChatErrorCode | null;
  /** The session's agent's provider, when `errorCode` says a provider is at fault. */
  errorProviderId: string | null;
  usage: { promptTokens: number; completionTokens: number } | null;
  /** The tools the agent used for this answer, in order (empty for a person's message or a plain answer). */
  trace: TraceStep[];
  createdAt: string;
}

/** The codes whose fault is the provider's: their view names it, so admins can be sent to it. */
export const PROVIDER_FAULTS: ReadonlySet<string> = new Set([
  "PROVIDER_UNREACHABLE",
  "PROVIDER_TIMEOUT",
  "PROVIDER_AUTH",
  "PROVIDER_ERROR",
]);

/** A stored message (opened) as the API shows it; `providerId`: the session's agent's, named for provider faults. */
export const toMessageView = (r: MessageRow, providerId: string | null = null): MessageView => ({
  id: r.id,
  role: r.role,
  content: r.content,
  status: r.status,
  error: r.error,
  errorCode: (r.errorCode as ChatErrorCode | null) ?? null,
  errorProviderId: r.errorCode && PROVIDER_FAULTS.has(r.errorCode) ? providerId : null,
  usage:
    r.promptTokens !== null && r.completionTokens !== null
      ? { promptTokens: r.promptTokens, completionTokens: r.completionTokens }
      : null,
  // Opened by `openMessages` before it gets here.
  trace: parseTrace(r.trace),
  createdAt: r.createdAt.toISOString(),
});
