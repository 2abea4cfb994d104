import { z } from "zod";

export const healthBodySchema = z.object({ status: z.literal("ok"), version: z.string() });
export type HealthBody = z.infer<typeof healthBodySchema>;

export const readinessBodySchema = z.object({
  status: z.enum(["ready", "not_ready"]),
  checks: z.object({
    database: z.object({ ok: z.boolean(), error: z.string().optional() }),
    migrations: z.object({ ok: z.boolean(), pending: z.array(z.string()) }),
  }),
});
export type ReadinessBody = z.infer<typeof readinessBodySchema>;
