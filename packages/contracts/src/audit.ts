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
});

export const auditQuerySchema = pageQuerySchema.extend({
  action: z.string().max(100).optional(),
  actor: z.string().max(100).optional(),
  after: z.iso.datetime({ offset: true }).optional(),
  before: z.iso.datetime({ offset: true }).optional(),
});
