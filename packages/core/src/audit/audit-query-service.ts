import { schema, type Tx } from "@reef/db";
import { and, eq, inArray } from "drizzle-orm";
import type { RequestContext } from "../shared/context.ts";
import type { Page } from "../shared/pagination.ts";
import type { WorkspaceGate } from "../workspace/workspace-access.ts";
import { type AuditEntry, type AuditQuery, queryAudit } from "./audit-service.ts";

const { users, apiKeys, agents } = schema;

/** An audit entry with the names people read instead of ids (not part of the hashed chain). */
export interface NamedAuditEntry extends AuditEntry {
  actorName: string | null;
  targetName: string | null;
}

/**
 * Names for the people, API keys and agents a page of entries mentions, as the workspace sees them
 * (row-level security hides people who have left: their entries keep the id only).
 */
async function nameEntries(tx: Tx, workspaceId: string, entries: AuditEntry[]): Promise<NamedAuditEntry[]> {
  const ids = { user: new Set<string>(), api_key: new Set<string>(), agent: new Set<string>() };
  const uuid = /^[0-9a-f-]{36}$/i;
  for (const e of entries) {
    if ((e.actorType === "user" || e.actorType === "api_key") && e.actorId && uuid.test(e.actorId))
      ids[e.actorType].add(e.actorId);
    if (e.targetType && e.targetType in ids && e.targetId && uuid.test(e.targetId))
      ids[e.targetType as keyof typeof ids].add(e.targetId);
  }
  const names = new Map<string, string>();
  if (ids.user.size) {
    for (const u of await tx
      .select({ id: users.id, name: users.name })
      .from(users)
      .where(inArray(users.id, [...ids.user])))
      names.set(`user:${u.id}`, u.name);
  }
  if (ids.api_key.size) {
    for (const k of await tx
      .select({ id: apiKeys.id, name: apiKeys.name })
      .from(apiKeys)
      .where(and(eq(apiKeys.workspaceId, workspaceId), inArray(apiKeys.id, [...ids.api_key]))))
      names.set(`api_key:${k.id}`, k.name);
  }
  if (ids.agent.size) {
    for (const a of await tx
      .select({ id: agents.id, name: agents.name })
      .from(agents)
      .where(and(eq(agents.workspaceId, workspaceId), inArray(agents.id, [...ids.agent]))))
      names.set(`agent:${a.id}`, a.name);
  }
  return entries.map((e) => {
    const detailName = typeof e.details?.name === "string" ? e.details.name : null;
    return {
      ...e,
      actorName: (e.actorId && names.get(`${e.actorType}:${e.actorId}`)) || null,
      // A deleted agent or key keeps the name its audit entry recorded.
      targetName:
        (e.targetId && names.get(`${e.targetType}:${e.targetId}`)) ||
        (e.targetType !== "workspace" ? detailName : null),
    };
  });
}

/** Reading a workspace's audit trail, for those whose role has `audit:read`. */
export function createAuditQueryService(deps: { gate: WorkspaceGate }) {
  return {
    list(ctx: RequestContext, workspaceId: string, q: AuditQuery): Promise<Page<NamedAuditEntry>> {
      return deps.gate.run(ctx, workspaceId, "audit:read", async (tx) => {
        const page = await queryAudit(tx, workspaceId, q);
        return { ...page, items: await nameEntries(tx, workspaceId, page.items) };
      });
    },
  };
}

export type AuditQueryService = ReturnType<typeof createAuditQueryService>;
