import type { ConnectorView } from "@reef/contracts";
import { schema, type Tx } from "@reef/db";
import { and, eq, inArray, isNull, or } from "drizzle-orm";
import type { Access } from "../workspace/workspace-access.ts";

const { agentConnectors, agents } = schema;
export type ConnectorRow = typeof schema.connectors.$inferSelect;

/** The header a bearer token is stored as. */
export const AUTHORIZATION = "Authorization";

/** Agents the caller may see: the workspace's shared ones and their own personal ones. */
export function visibleAgents(access: Access) {
  return access.userId
    ? or(isNull(agents.ownerUserId), eq(agents.ownerUserId, access.userId))
    : isNull(agents.ownerUserId);
}

/**
 * Connectors as members see them: header names and a hint, never a value. The
 * agent opt-ins listed are those of agents the caller can see.
 */
export async function toConnectorViews(tx: Tx, access: Access, rows: ConnectorRow[]): Promise<ConnectorView[]> {
  if (rows.length === 0) return [];
  const links = await tx
    .select({
      connectorId: agentConnectors.connectorId,
      agentId: agentConnectors.agentId,
      tools: agentConnectors.tools,
    })
    .from(agentConnectors)
    .innerJoin(agents, eq(agents.id, agentConnectors.agentId))
    .where(
      and(
        inArray(
          agentConnectors.connectorId,
          rows.map((r) => r.id),
        ),
        visibleAgents(access),
      ),
    )
    .orderBy(agentConnectors.createdAt, agentConnectors.agentId);
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    slug: row.slug,
    kind: row.kind,
    transport: row.transport,
    url: row.url,
    instanceUrl: row.instanceUrl,
    catalogEntryId: row.catalogEntryId,
    hasBearerToken: row.headerNames.includes(AUTHORIZATION),
    headerNames: row.headerNames.filter((n) => n !== AUTHORIZATION),
    hasApiKey: row.apiKeySealed !== null,
    secretHint: row.secretHint,
    toolAllowlist: row.toolAllowlist,
    enabled: row.enabled,
    tools: row.tools,
    lastTestedAt: row.lastTestedAt?.toISOString() ?? null,
    lastTestOk: row.lastTestOk,
    lastTestError: row.lastTestError,
    agents: links.filter((l) => l.connectorId === row.id).map((l) => ({ agentId: l.agentId, tools: l.tools })),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  }));
}
