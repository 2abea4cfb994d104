import { createHash } from "node:crypto";

/** The fields an audit hash covers, in a fixed order. */
export interface ChainedFields {
  workspaceId: string | null;
  occurredAt: string;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  details: Record<string, unknown> | null;
}

/** JSON with object keys sorted at every level, so the same entry always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** sha256(previous hash + canonical entry): the link that makes edits and deletions detectable. */
export function chainHash(prevHash: string | null, fields: ChainedFields): string {
  return createHash("sha256")
    .update(prevHash ?? "")
    .update("\n")
    .update(canonicalJson(fields))
    .digest("hex");
}

/** The chain an entry belongs to: its workspace, or the platform's. */
export function chainKey(workspaceId: string | null): string {
  return workspaceId ?? "platform";
}
