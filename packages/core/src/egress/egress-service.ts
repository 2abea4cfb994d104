import { BadRequestError, NotFoundError } from "@reef/contracts";
import { type Db, isUuid, schema, withScope } from "@reef/db";
import { and, desc, eq, sql } from "drizzle-orm";
import { requireOperator } from "../admin/admin-service.ts";
import { appendAudit } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";
import type { WorkspaceGate } from "../workspace/workspace-access.ts";
import { type EgressPolicy, normalizeHostPattern, type WorkspaceEgressLists } from "./egress-policy.ts";

const { egressRefusals, workspaces } = schema;

/** Counted refusals of one destination on one day, newest first in lists. */
export interface EgressRefusalView {
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  host: string;
  port: number;
  reason: string;
  count: number;
  lastAt: string;
}

export interface EgressListsPatch {
  allowHosts?: string[] | null | undefined;
  denyHosts?: string[] | null | undefined;
}

/** Entries per list: enough for real policies, small enough to match on every connection. */
export const MAX_EGRESS_HOSTS = 200;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Normalizes an operator's list: every entry must be a host name, `*.suffix`
 * or an IP address (400 naming the first that is not); duplicates are dropped.
 */
function cleanList(field: "allowHosts" | "denyHosts", list: string[]): string[] {
  if (list.length > MAX_EGRESS_HOSTS)
    throw new BadRequestError(`At most ${MAX_EGRESS_HOSTS} hosts.`, { field }, "VALIDATION_FAILED");
  const out = new Set<string>();
  for (const entry of list) {
    const pattern = normalizeHostPattern(entry);
    if (!pattern)
      throw new BadRequestError(
        `"${entry.slice(0, 100)}" is not a host name, *.domain or IP address (no scheme, port or path).`,
        { field, entry: entry.slice(0, 100) },
        "VALIDATION_FAILED",
      );
    out.add(pattern);
  }
  return [...out];
}

/**
 * What workspace admins and operators see of the egress policy: the refusals
 * counted for a workspace (admins of that workspace), its allow and deny lists
 * (read by its admins, set by operators only, audited in both trails).
 */
export function createEgressService(deps: { db: Db; gate: WorkspaceGate; policy: Pick<EgressPolicy, "invalidate"> }) {
  const { db, gate } = deps;

  return {
    /** Refused connections of the workspace's gateway, newest first (admins: `audit:read`). */
    listRefusals(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<EgressRefusalView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, {
        lastAt: "timestamp",
        day: "text",
        host: "text",
        port: "integer",
        reason: "text",
      });
      if (cursor && !DAY.test(cursor.day))
        throw new BadRequestError("The cursor is not valid; start again from the first page.", { field: "cursor" });
      return gate.run(ctx, workspaceId, "audit:read", async (tx) => {
        const t = egressRefusals;
        const rows = await tx
          .select()
          .from(t)
          .where(
            and(
              eq(t.workspaceId, workspaceId),
              cursor
                ? sql`(${t.lastAt}, ${t.day}, ${t.host}, ${t.port}, ${t.reason}) < (${new Date(cursor.lastAt)}, ${cursor.day}::date, ${cursor.host}, ${Number(cursor.port)}, ${cursor.reason})`
                : undefined,
            ),
          )
          .orderBy(desc(t.lastAt), desc(t.day), desc(t.host), desc(t.port), desc(t.reason))
          .limit(limit + 1);
        return toPage(
          rows,
          limit,
          (r) => ({
            day: r.day,
            host: r.host,
            port: r.port,
            reason: r.reason,
            count: r.count,
            lastAt: r.lastAt.toISOString(),
          }),
          (r) => ({ lastAt: r.lastAt.toISOString(), day: r.day, host: r.host, port: r.port, reason: r.reason }),
        );
      });
    },

    /** The workspace's allow and deny lists, read-only (admins: `audit:read`). */
    getLists(ctx: RequestContext, workspaceId: string): Promise<WorkspaceEgressLists> {
      return gate.run(ctx, workspaceId, "audit:read", async (tx) => {
        const [row] = await tx
          .select({ allow: workspaces.egressAllowHosts, deny: workspaces.egressDenyHosts })
          .from(workspaces)
          .where(eq(workspaces.id, workspaceId));
        return { allowHosts: row?.allow ?? [], denyHosts: row?.deny ?? [] };
      });
    },

    /** A workspace's lists, for operators (who are not members). */
    async getListsAsOperator(ctx: RequestContext, workspaceId: string): Promise<WorkspaceEgressLists> {
      requireOperator(ctx);
      if (!isUuid(workspaceId)) throw new NotFoundError("No such workspace.");
      return withScope(db, { platform: true, userId: ctx.actor.userId }, async (tx) => {
        const [row] = await tx
          .select({ allow: workspaces.egressAllowHosts, deny: workspaces.egressDenyHosts })
          .from(workspaces)
          .where(eq(workspaces.id, workspaceId));
        if (!row) throw new NotFoundError("No such workspace.");
        return { allowHosts: row.allow ?? [], denyHosts: row.deny ?? [] };
      });
    },

    /**
     * Sets a workspace's allow and/or deny list (operators only). An empty list
     * or null clears it. Audited in the platform trail and in the workspace's
     * own, so its admins see who changed what their agents may reach.
     */
    async setListsAsOperator(
      ctx: RequestContext,
      workspaceId: string,
      patch: EgressListsPatch,
    ): Promise<WorkspaceEgressLists> {
      requireOperator(ctx);
      if (!isUuid(workspaceId)) throw new NotFoundError("No such workspace.");
      const allow = patch.allowHosts == null ? patch.allowHosts : cleanList("allowHosts", patch.allowHosts);
      const deny = patch.denyHosts == null ? patch.denyHosts : cleanList("denyHosts", patch.denyHosts);
      const stored = (list: string[] | null) => (list && list.length > 0 ? list : null);
      const result = await withScope(db, { platform: true, userId: ctx.actor.userId, workspaceId }, async (tx) => {
        const [before] = await tx
          .select({ allow: workspaces.egressAllowHosts, deny: workspaces.egressDenyHosts })
          .from(workspaces)
          .where(eq(workspaces.id, workspaceId))
          .for("update");
        if (!before) throw new NotFoundError("No such workspace.");
        const set: Partial<typeof workspaces.$inferInsert> = { updatedAt: new Date() };
        const details: Record<string, unknown> = {};
        if (allow !== undefined) {
          set.egressAllowHosts = stored(allow);
          details.allowHosts = { from: before.allow ?? [], to: allow ?? [] };
        }
        if (deny !== undefined) {
          set.egressDenyHosts = stored(deny);
          details.denyHosts = { from: before.deny ?? [], to: deny ?? [] };
        }
        const [after] = await tx
          .update(workspaces)
          .set(set)
          .where(eq(workspaces.id, workspaceId))
          .returning({ allow: workspaces.egressAllowHosts, deny: workspaces.egressDenyHosts });
        for (const chain of [null, workspaceId]) {
          await appendAudit(tx, ctx, {
            workspaceId: chain,
            action: "workspace.egress_update",
            targetType: "workspace",
            targetId: workspaceId,
            details,
          });
        }
        return { allowHosts: after?.allow ?? [], denyHosts: after?.deny ?? [] };
      });
      deps.policy.invalidate(workspaceId);
      return result;
    },
  };
}

export type EgressService = ReturnType<typeof createEgressService>;
