import { z } from "zod";
import { pageQuerySchema } from "./common.ts";

export const adminUserSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string(),
  platformRole: z.enum(["super_admin", "user"]),
  deactivated: z.boolean(),
  createdAt: z.string(),
  workspaceCount: z.number().int().optional(),
  /** Whether they have a confirmed authenticator (two-factor on): what an operator can reset. */
  twoFactorEnabled: z.boolean(),
});
export const adminUserQuerySchema = pageQuerySchema.extend({ q: z.string().max(100).optional() });
export const adminUpdateUserBodySchema = z
  .object({ role: z.enum(["super_admin", "user"]).optional(), deactivated: z.boolean().optional() })
  .refine((v) => v.role !== undefined || v.deactivated !== undefined, "give role and/or deactivated");

export const adminWorkspaceSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  personal: z.boolean(),
  createdAt: z.string(),
  memberCount: z.number().int(),
  owners: z.array(z.object({ userId: z.uuid(), email: z.string() })),
  /** The workspace's own monthly token budget; null: the platform default applies. */
  monthlyTokenBudget: z.number().int().nullable(),
});

/** What an operator may change on a workspace. */
export const adminUpdateWorkspaceBodySchema = z.object({
  /** Prompt plus completion tokens per month, enforced at the LLM proxy; null: back to the platform default. */
  monthlyTokenBudget: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable(),
});
