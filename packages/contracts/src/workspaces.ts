import { z } from "zod";
import { emailSchema, nameSchema, roleSchema } from "./common.ts";

export const workspaceSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  personal: z.boolean(),
  role: roleSchema,
  /** The agent people land on in chat (null: the first agent). */
  defaultAgentId: z.uuid().nullable(),
  /**
   * Members must have signed in with a second factor (TOTP, or through an SSO
   * provider) to use the workspace; API keys are not affected.
   */
  requireTwoFactor: z.boolean(),
  createdAt: z.string(),
});
export const createWorkspaceBodySchema = z.object({ name: nameSchema });
export const renameWorkspaceBodySchema = z.object({ name: nameSchema });
/**
 * Rename, set the default agent (a shared agent of the workspace; null: the first
 * agent) and/or require members to sign in with a second factor (owners and admins).
 */
export const updateWorkspaceBodySchema = z
  .object({
    name: nameSchema.optional(),
    defaultAgentId: z.uuid().nullable().optional(),
    requireTwoFactor: z.boolean().optional(),
  })
  .refine(
    (b) => b.name !== undefined || b.defaultAgentId !== undefined || b.requireTwoFactor !== undefined,
    "Change the name, the default agent or the two-factor requirement.",
  );
/** What deleting a workspace deletes: its agents, its conversations and how many members lose it. */
export const workspaceImpactSchema = z.object({
  agents: z.number().int(),
  sessions: z.number().int(),
  members: z.number().int(),
});
export const deleteWorkspaceBodySchema = z.object({ confirmName: z.string().min(1).max(200) });

export const memberSchema = z.object({
  userId: z.uuid(),
  email: z.string(),
  name: z.string(),
  role: roleSchema,
  joinedAt: z.string(),
});
export const updateMemberBodySchema = z.object({ role: roleSchema });

export const inviteSchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  email: z.string(),
  role: roleSchema,
  status: z.enum(["pending", "accepted", "revoked", "expired"]),
  expiresAt: z.string(),
  createdAt: z.string(),
});
/**
 * What an invite link shows before anyone signs in: only the workspace's name, who invited, the role
 * and the invited address (so sign-up can pre-fill it). Nothing for a link that is not usable.
 */
export const invitePreviewSchema = z.object({
  workspaceName: z.string(),
  inviterName: z.string(),
  role: roleSchema,
  email: z.string(),
  expiresAt: z.string(),
});
export const createInviteBodySchema = z.object({ email: emailSchema, role: roleSchema });
/**
 * With SMTP configured the link is emailed to the invitee and never returned;
 * without it the single-use `token` and `url` come back to the inviter, once.
 */
export const createInviteResponseSchema = z.object({
  invite: inviteSchema,
  delivery: z.enum(["email", "link"]),
  token: z.string().optional(),
  url: z.string().optional(),
});
export const acceptInviteResponseSchema = z.object({
  workspace: z.object({ id: z.uuid(), name: z.string(), role: roleSchema }),
});

export const apiKeySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  role: roleSchema,
  prefix: z.string(),
  createdBy: z.string().nullable(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  createdAt: z.string(),
});
export const createApiKeyBodySchema = z.object({
  name: nameSchema,
  role: roleSchema,
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});
export const createApiKeyResponseSchema = z.object({ apiKey: apiKeySchema, key: z.string() });
