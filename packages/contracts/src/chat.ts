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

export const messageSchema = z.object({
  id: z.number().int(),
  role: z.enum(["user", "assistant"]),
  content: z.string(),
  /** `streaming` while an answer arrives; `aborted` or `error` keep what was said so far. */
  status: z.enum(["streaming", "complete", "aborted", "error"]),
  error: z.string().nullable(),
  usage: z.object({ promptTokens: z.number().int(), completionTokens: z.number().int() }).nullable(),
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
      messages: z.number().int(),
      promptTokens: z.number().int(),
      completionTokens: z.number().int(),
    }),
  ),
});
