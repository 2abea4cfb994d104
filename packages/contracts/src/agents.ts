import { z } from "zod";
import { nameSchema } from "./common.ts";

export const AGENT_TOOLS = ["web", "files", "shell"] as const;
export const agentToolSchema = z.enum(AGENT_TOOLS);

/**
 * What an agent's shell commands need: `deny` none run; `allowlist` only those
 * matching `execAllowlist`; `ask` those run, the rest wait for a person's
 * approval; `allow` all run.
 */
export const EXEC_POLICIES = ["deny", "allowlist", "ask", "allow"] as const;
export const execPolicySchema = z.enum(EXEC_POLICIES);

/** One allowlist entry: a command pattern (OpenClaw's exec allowlist glob, e.g. `/usr/bin/git`, `ls`). */
export const execPatternSchema = z
  .string()
  .trim()
  .min(1, "a pattern cannot be empty")
  .max(500, "a pattern is at most 500 characters")
  .refine((v) => !/[\n\r\0]/.test(v), "a pattern is one line");

export const createAgentBodySchema = z.object({
  name: nameSchema,
  providerId: z.uuid(),
  model: z.string().trim().min(1).max(200),
  /** The agent's personality and standing instructions (its system prompt). */
  instructions: z.string().max(20_000).optional(),
  /** What the agent is for, shown in the agent gallery. */
  description: z.string().trim().max(500, "Keep the description under 500 characters.").optional(),
  /** Suggested first messages, shown as buttons on a new conversation. */
  starterPrompts: z
    .array(
      z
        .string()
        .trim()
        .min(1, "A starter prompt cannot be empty.")
        .max(300, "Keep each starter prompt under 300 characters."),
    )
    .max(6, "Give at most 6 starter prompts.")
    .optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  /** Tool groups beyond messaging; granting any needs `agents:manage` (admins). */
  tools: z.array(z.enum(AGENT_TOOLS)).max(3).optional(),
  /** Changing either needs `agents:manage` (admins). */
  execPolicy: execPolicySchema.optional(),
  execAllowlist: z.array(execPatternSchema).max(200).optional(),
});

export const updateAgentBodySchema = createAgentBodySchema.partial();

export const agentSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  providerId: z.uuid(),
  model: z.string(),
  instructions: z.string(),
  description: z.string(),
  starterPrompts: z.array(z.string()),
  temperature: z.number().nullable(),
  tools: z.array(z.enum(AGENT_TOOLS)),
  /**
   * Granted tools the agent cannot use now, and why (the operator no longer
   * allows the tool, or the runtime is not sandboxed). They stay granted and
   * come back when the reason goes away; they are left out from the next start.
   */
  toolsBlocked: z.array(z.object({ tool: z.enum(AGENT_TOOLS), reason: z.string() })),
  execPolicy: execPolicySchema,
  execAllowlist: z.array(z.string()),
  personal: z.boolean(),
  createdBy: z.uuid().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

/**
 * The tools workspace admins may grant agents in this workspace now (the
 * operator's list, less what the runtime cannot contain), and why each other
 * tool cannot be granted. Any member may read it, to show the agent form.
 */
export const agentToolsSchema = z.object({
  grantable: z.array(agentToolSchema),
  unavailable: z.array(z.object({ tool: agentToolSchema, reason: z.string() })),
});

/** What deleting an agent deletes: `sessions` conversations belonging to `people` people. */
export const agentImpactSchema = z.object({ sessions: z.number().int(), people: z.number().int() });
