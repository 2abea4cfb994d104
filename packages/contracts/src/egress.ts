import { z } from "zod";

/**
 * Why Reef's egress proxy refused a gateway's connection (stable codes, also
 * sent in the `x-reef-egress-refused` header of the 403).
 */
export const EGRESS_REFUSAL_REASONS = [
  "private_address",
  "denied_host",
  "not_allowed_host",
  "dns_failed",
  "too_many_connections",
] as const;

/** Refused connections of one destination on one UTC day. */
export const egressRefusalSchema = z.object({
  /** UTC day, `YYYY-MM-DD`. */
  day: z.string(),
  host: z.string(),
  port: z.number().int(),
  /** One of {@link EGRESS_REFUSAL_REASONS} (kept a string: new reasons may come). */
  reason: z.string(),
  count: z.number().int(),
  lastAt: z.string(),
});

/** A workspace's own egress lists: deny always applies; a non-empty allow list admits only its hosts. */
export const egressListsSchema = z.object({
  allowHosts: z.array(z.string()),
  denyHosts: z.array(z.string()),
});

/** `example.com`, `*.example.com` or an IP address; checked again (and normalized) by the service. */
const egressHostSchema = z
  .string()
  .trim()
  .toLowerCase()
  .min(1)
  .max(255)
  .regex(
    /^(?:\*\.)?[a-z0-9_.-]+\.?$|^\[?[0-9a-f:.]+\]?$/,
    "a host name, *.domain or IP address (no scheme, port or path)",
  );

/** What an operator sets; omit a list to keep it, give [] or null to clear it. */
export const updateEgressListsBodySchema = z
  .object({
    allowHosts: z.array(egressHostSchema).max(200).nullable().optional(),
    denyHosts: z.array(egressHostSchema).max(200).nullable().optional(),
  })
  .refine((v) => v.allowHosts !== undefined || v.denyHosts !== undefined, "give allowHosts and/or denyHosts");
