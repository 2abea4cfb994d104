import { z } from "zod";
import { nameSchema } from "./common.ts";

export const AGENT_TOOLS = ["web", "files", "shell"] as const;

export const createAgentBodySchema = z.object({
  name: nameSchema,
  providerId: z.uuid(),
  model: z.string().trim().min(1).max(200),
  /** The agent's personality and standing instructions (its system prompt). */
  instructions: z.string().max(20_000).optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  /** Tool groups beyond messaging; granting any needs `agents:manage` (admins). */
  tools: z.array(z.enum(AGENT_TOOLS)).max(3).optional(),
});

export const updateAgentBodySchema = createAgentBodySchema.partial();

export const agentSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  providerId: z.uuid(),
  model: z.string(),
  instructions: z.string(),
  temperature: z.number().nullable(),
  tools: z.array(z.enum(AGENT_TOOLS)),
  personal: z.boolean(),
  createdBy: z.uuid().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
