import type { RequestContext } from "../shared/context.ts";
import type { Page } from "../shared/pagination.ts";
import type { WorkspaceGate } from "../workspace/workspace-access.ts";
import { type AuditEntry, type AuditQuery, queryAudit } from "./audit-service.ts";

/** Reading a workspace's audit trail, for those whose role has `audit:read`. */
export function createAuditQueryService(deps: { gate: WorkspaceGate }) {
  return {
    list(ctx: RequestContext, workspaceId: string, q: AuditQuery): Promise<Page<AuditEntry>> {
      return deps.gate.run(ctx, workspaceId, "audit:read", (tx) => queryAudit(tx, workspaceId, q));
    },
  };
}

export type AuditQueryService = ReturnType<typeof createAuditQueryService>;
