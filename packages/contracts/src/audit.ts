import { z } from "zod";
import { pageQuerySchema } from "./common.ts";

export const auditEntrySchema = z.object({
  id: z.number().int(),
  workspaceId: z.string().nullable(),
  occurredAt: z.string(),
  actorType: z.string(),
  actorId: z.string().nullable(),
  action: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  outcome: z.string(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  requestId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
  /** The acting person's or API key's name, when still known to this workspace (null: a former member, the system). */
  actorName: z.string().nullable().optional(),
  /** The target person's, API key's or agent's name, when known. */
  targetName: z.string().nullable().optional(),
});

export const auditQuerySchema = pageQuerySchema.extend({
  action: z.string().max(100).optional(),
  actor: z.string().max(100).optional(),
  after: z.iso.datetime({ offset: true }).optional(),
  before: z.iso.datetime({ offset: true }).optional(),
});
