import { z } from "zod";

export const createSessionBodySchema = z.object({
  agentId: z.uuid(),
  title: z.string().trim().max(200).optional(),
});

export const chatSessionSchema = z.object({
  id: z.uuid(),
  agentId: z.uuid(),
  title: z.string(),
  createdAt: z.string(),
  lastMessageAt: z.string().nullable(),
});

export const sendMessageBodySchema = z.object({
  text: z.string().trim().min(1, "say something").max(100_000),
});

/**
 * One step of an answer's execution trace: a tool the agent called. While the
 * answer streams, a step is sent when it starts and again when it ends (same
 * `id`); the stored message keeps the final state of each.
 */
export const traceStepSchema = z.object({
  /** The tool call's id (unique within the answer). */
  id: z.string(),
  /** The tool's name as the agent called it (`exec`, `web_fetch`, `read`…). */
  name: z.string(),
  /** The call's arguments as JSON text, truncated to a few KB. */
  args: z.string(),
  /** `denied`: a person (or the approval timeout, or the agent's policy) refused it. */
  status: z.enum(["running", "ok", "error", "denied"]),
  /** What the tool returned (or its error), truncated to a few KB; absent while running. */
  output: z.string().optional(),
  /** True when `output` or `args` was cut. */
  truncated: z.boolean().optional(),
  startedAt: z.string(),
  durationMs: z.number().int().optional(),
});

export const messageSchema = z.object({
  id: z.number().int(),
  role: z.enum(["user", "assistant"]),
  content: z.string(),
  /** `streaming` while an answer arrives; `aborted` or `error` keep what was said so far. */
  status: z.enum(["streaming", "complete", "aborted", "error"]),
  error: z.string().nullable(),
  usage: z.object({ promptTokens: z.number().int(), completionTokens: z.number().int() }).nullable(),
  /** The tools the agent used for this answer, in order (empty for a person's message or a plain answer). */
  trace: z.array(traceStepSchema),
  createdAt: z.string(),
});

export const usageSchema = z.object({
  month: z.string(),
  messages: z.number().int(),
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  limits: z.object({ messages: z.number().int().nullable(), tokens: z.number().int().nullable() }),
});

export const dailyUsageSchema = z.object({
  items: z.array(
    z.object({
      day: z.string(),
      /** Messages people sent. */
      messages: z.number().int(),
      /** LLM calls the workspace's gateway made through Reef (background ones included); tokens are theirs. */
      calls: z.number().int(),
      promptTokens: z.number().int(),
      completionTokens: z.number().int(),
    }),
  ),
});

/** One LLM call metered at Reef's proxy: what was called and what it used, never what was said. */
export const llmCallSchema = z.object({
  id: z.number().int(),
  providerId: z.uuid().nullable(),
  providerName: z.string().nullable(),
  model: z.string(),
  /** The vendor API: `chat.completions`, `responses`, `messages`, `models`… */
  endpoint: z.string(),
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  firstByteMs: z.number().int().nullable(),
  latencyMs: z.number().int(),
  /** `budget`: refused because the workspace's monthly token budget was used up; `refused`: a bad credential or path. */
  outcome: z.enum(["ok", "error", "refused", "budget", "aborted"]),
  httpStatus: z.number().int().nullable(),
  createdAt: z.string(),
});
