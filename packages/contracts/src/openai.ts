import { z } from "zod";

/**
 * The OpenAI-compatible API's requests, as far as Reef reads them. Unknown
 * fields are accepted and ignored (clients send many), so the schemas are
 * loose objects; what Reef cannot honour is named in docs/openai-api.md.
 */
const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });

export const openaiMessageSchema = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
});
export type OpenAiMessage = z.infer<typeof openaiMessageSchema>;

export const chatCompletionBodySchema = z.looseObject({
  /** An agent's id, or its name as `GET /models` lists it. */
  model: z.string().min(1).max(200),
  messages: z.array(openaiMessageSchema).min(1).max(1000),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  /** Accepted for compatibility; the agent's own settings apply. */
  temperature: z.number().nullable().optional(),
  max_tokens: z.number().nullable().optional(),
  user: z.string().max(200).optional(),
});
export type ChatCompletionBody = z.infer<typeof chatCompletionBodySchema>;

/** OpenAI's error body: `{ error: { message, type, param, code } }`. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
