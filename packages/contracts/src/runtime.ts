import { z } from "zod";

export const runtimeSchema = z.object({
  workspaceId: z.uuid(),
  /** `queued`: waiting for room under the running-gateway caps. */
  state: z.enum(["stopped", "queued", "starting", "running", "stopping", "failed"]),
  driver: z.string(),
  startedAt: z.string().nullable(),
  lastActivityAt: z.string().nullable(),
  /** Set while the running gateway is paused (idle past the pause timeout); the next use resumes it in about a second. */
  pausedAt: z.string().nullable(),
  /** Set while the paused gateway's memory is out in swap (a deeper tier: its first answer takes a little longer). */
  swappedOutAt: z.string().nullable(),
  stoppedAt: z.string().nullable(),
  restarts: z.number().int(),
  failureReason: z.string().nullable(),
  uptimeSeconds: z.number().int().nullable(),
  rssBytes: z.number().int().nullable(),
  /** How long a start usually takes here, from measured starts (null until one was measured). */
  expectedStartSeconds: z.number().int().nullable(),
});

/** How a deployment contains its gateways (operators only). */
export const runtimeIsolationSchema = z.object({
  driver: z.string(),
  sandboxed: z.boolean(),
  hostToolsAllowed: z.boolean(),
  reason: z.string().optional(),
});
