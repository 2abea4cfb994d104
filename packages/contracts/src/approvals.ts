import { z } from "zod";
import { pageQuerySchema } from "./common.ts";

export const APPROVAL_DECISIONS = ["allow-once", "allow-always", "deny"] as const;

/**
 * A gateway's request for a person's approval, as Reef shows it: in the chat
 * stream of the session that asked (an `approval` event) and in the
 * workspace's approvals inbox.
 */
export const approvalSchema = z.object({
  id: z.uuid(),
  /** `exec`: a shell command; `plugin`: a plugin's action. */
  kind: z.enum(["exec", "plugin"]),
  agentId: z.uuid().nullable(),
  agentName: z.string().nullable(),
  sessionId: z.uuid().nullable(),
  /** The command (or the plugin action's summary). */
  subject: z.string(),
  cwd: z.string().nullable(),
  /** Who the run was for: a person (chatting) or an API key (a run started over the API). */
  requestedBy: z.object({
    kind: z.enum(["user", "api_key", "unknown"]),
    id: z.uuid().nullable(),
    name: z.string().nullable(),
  }),
  status: z.enum(["pending", "approved", "denied", "expired"]),
  decision: z.enum(APPROVAL_DECISIONS).nullable(),
  decidedBy: z.object({ id: z.uuid().nullable(), name: z.string().nullable() }).nullable(),
  /** `timeout`: nobody answered before `expiresAt`, which denies. */
  decidedVia: z.enum(["person", "timeout", "gateway"]).nullable(),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().nullable(),
  /** Whether the caller may decide it (the person chatting, or an approver for runs nobody chats in). */
  canDecide: z.boolean(),
});

export const approvalQuerySchema = pageQuerySchema.extend({
  status: z.enum(["pending", "approved", "denied", "expired", "all"]).default("pending"),
});

export const approvalDecisionBodySchema = z.object({
  /** `allow-always` also adds the command to the agent's allowlist (needs `agents:manage`). */
  decision: z.enum(APPROVAL_DECISIONS),
});
