import { schema, type Tx } from "@reef/db";
import type { AgentInput, ConnectorInput } from "@reef/runtime";
import { and, eq } from "drizzle-orm";
import type { McpCatalog } from "./mcp-catalog.ts";

const { agentConnectors, connectors } = schema;

/** What a workspace's gateway is told of its connectors: the servers, and each agent's opt-ins. */
export interface GatewayConnectors {
  connectors: ConnectorInput[];
  /** By agent id: the connectors it may use (by slug, sorted), each with its tools when limited. */
  byAgent: Map<string, NonNullable<AgentInput["connectors"]>>;
}

const bySlug = (a: { slug: string }, b: { slug: string }) => (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0);

/**
 * Inside the workspace's scope: its enabled connectors as the gateway should
 * see them (secrets stay in Reef; stdio ones take the operator catalogue's
 * command, and one whose entry the operator removed is left out) and the
 * agents' opt-ins. A server's `include` is its tool allowlist, or, when an
 * agent is limited to some of its tools, the tools listed at its last test:
 * a tool the server adds later then reaches no agent until it is re-tested.
 * Sorted throughout, so the settings hash only changes with the settings.
 */
export async function gatewayConnectors(tx: Tx, workspaceId: string, catalog: McpCatalog): Promise<GatewayConnectors> {
  const rows = await tx
    .select()
    .from(connectors)
    .where(and(eq(connectors.workspaceId, workspaceId), eq(connectors.enabled, true)));
  const grants = await tx.select().from(agentConnectors).where(eq(agentConnectors.workspaceId, workspaceId));
  const out: ConnectorInput[] = [];
  const slugs = new Map<string, string>();
  for (const c of rows) {
    let command: ConnectorInput["command"];
    if (c.transport === "stdio") {
      const entry = c.catalogEntryId ? catalog.get(c.catalogEntryId) : undefined;
      if (!entry) continue;
      command = { command: entry.command, args: [...entry.args] };
    } else if (!c.url) continue;
    const limited = grants.some((g) => g.connectorId === c.id && g.tools !== null);
    const known = c.tools ? c.tools.map((t) => t.name) : undefined;
    const include = c.toolAllowlist ?? (limited ? known : undefined);
    out.push({
      id: c.id,
      slug: c.slug,
      transport: c.transport,
      ...(command ? { command } : {}),
      ...(include ? { include: [...new Set(include)].sort() } : {}),
    });
    slugs.set(c.id, c.slug);
  }
  const byAgent: GatewayConnectors["byAgent"] = new Map();
  for (const g of grants) {
    const slug = slugs.get(g.connectorId);
    if (!slug) continue;
    const list = byAgent.get(g.agentId) ?? [];
    list.push({ slug, ...(g.tools ? { tools: [...new Set(g.tools)].sort() } : {}) });
    byAgent.set(g.agentId, list);
  }
  for (const list of byAgent.values()) list.sort(bySlug);
  return { connectors: out.sort(bySlug), byAgent };
}
