import { z } from "zod";
import { pageQuerySchema } from "./common.ts";

export const createSessionBodySchema = z.object({
  agentId: z.uuid(),
  title: z.string().trim().max(200).optional(),
});

export const chatSessionSchema = z.object({
  id: z.uuid(),
  agentId: z.uuid(),
  title: z.string(),
  /** Pinned by its owner: listed first. */
  pinned: z.boolean(),
  createdAt: z.string(),
  lastMessageAt: z.string().nullable(),
});

/** Rename or pin a conversation (its owner only). */
export const updateSessionBodySchema = z
  .object({
    title: z.string().trim().min(1, "Give the conversation a name.").max(200, "Use at most 200 characters."),
    pinned: z.boolean(),
  })
  .partial()
  .refine((b) => b.title !== undefined || b.pinned !== undefined, "Nothing to change.");

export const sendMessageBodySchema = z.object({
  text: z.string().trim().min(1, "say something").max(100_000),
  /**
   * A user message of this session: it and everything after it are deleted (the
   * agent forgets them too) before `text` is sent. Regenerate: the last user
   * message's text with its id; edit and resend: new text with the edited id.
   */
  replaceFrom: z.number().int().positive().optional(),
});

/** The sessions list: `q` keeps the sessions whose title contains it (case-insensitive). */
export const listSessionsQuerySchema = pageQuerySchema.extend({
  agentId: z.uuid().optional(),
  q: z.string().trim().max(200).optional(),
});

/**
 * The stable codes of a chat stream's `error` event ({messageId, code, message,
 * providerId?}); `message` is plain words for the person, `code` is for the UI.
 */
export const CHAT_ERROR_CODES = [
  /** The provider refused or dropped the connection (down, or a wrong base URL): reported in seconds. */
  "PROVIDER_UNREACHABLE",
  /** The provider accepted the call but did not answer in time. */
  "PROVIDER_TIMEOUT",
  /** The provider refused the key (401/403): an administrator should check the provider's key. */
  "PROVIDER_AUTH",
  /** The provider answered with an error (overloaded, bad request, unknown model…). */
  "PROVIDER_ERROR",
  /**
   * The workspace's runtime could not be started (also when no room was left to
   * start it: the message says which cap) or stopped answering.
   */
  "UNAVAILABLE",
  /** The workspace's monthly message or token allowance is used up. */
  "QUOTA_EXCEEDED",
  /** Too many requests (Reef's or the provider's rate limit): try again shortly. */
  "RATE_LIMITED",
  /** The Reef relaying the answer stopped mid-answer (it shut down); the text so far is kept. */
  "INTERRUPTED",
  /** Anything else: a fault in Reef or the runtime. */
  "INTERNAL",
] as const;
export type ChatErrorCode = (typeof CHAT_ERROR_CODES)[number];

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
  /**
   * `streaming` while an answer arrives; `aborted` (someone pressed Stop),
   * `interrupted` (cut off without anyone asking) or `error` keep what was said so far.
   */
  status: z.enum(["streaming", "complete", "aborted", "interrupted", "error"]),
  error: z.string().nullable(),
  /**
   * The stable code of `error` (as the stream's `error` event carried it), so a
   * reloaded page offers the same next step; `INTERRUPTED` for an interrupted
   * answer. Null when the answer did not fail (or failed before codes were kept).
   */
  errorCode: z.enum(CHAT_ERROR_CODES).nullable(),
  /** The provider of the session's agent, when `errorCode` says a provider is at fault (PROVIDER_*). */
  errorProviderId: z.uuid().nullable(),
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
