import { AppError } from "@reef/contracts";
import { type AgentTool, schema, type Tx } from "@reef/db";
import { and, count, countDistinct, eq, isNotNull, ne, or, sql } from "drizzle-orm";

const { agents, providers } = schema;

/**
 * Tools that reach the gateway's own files: an agent with them can read the
 * gateway config, which holds the API key of every provider the workspace's
 * agents use, members' personal providers included.
 */
export const HOST_ACCESS_TOOLS: readonly AgentTool[] = ["files", "shell"];

// Two-int advisory lock key space (see runtime-capacity.ts for the others in use).
const LOCK_SPACE_HOST_ACCESS = 7430;

export function grantsHostAccess(tools: readonly string[]): boolean {
  return tools.some((t) => (HOST_ACCESS_TOOLS as readonly string[]).includes(t));
}

/**
 * Serialises host-access grants and personal-provider creations in a workspace
 * until the transaction ends, so a grant and a personal key added at the same
 * moment cannot both pass their check.
 */
async function lockHostAccess(tx: Tx, workspaceId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_SPACE_HOST_ACCESS}, hashtext(${workspaceId}))`);
}

/**
 * Refuses to give an agent shell or files while other members keep personal
 * provider keys in this workspace: the agent could read them from its gateway's
 * config. Says how many members and keys block it, never whose.
 *
 * @param userId the person granting (their own personal keys do not count), or null for an API key.
 */
export async function assertHostAccessAllowed(tx: Tx, workspaceId: string, userId: string | null): Promise<void> {
  await lockHostAccess(tx, workspaceId);
  const [row] = await tx
    .select({ keys: count(), members: countDistinct(providers.ownerUserId) })
    .from(providers)
    .where(
      and(
        eq(providers.workspaceId, workspaceId),
        isNotNull(providers.ownerUserId),
        userId ? ne(providers.ownerUserId, userId) : undefined,
      ),
    );
  if (!row || row.keys === 0) return;
  throw new AppError(
    "HOST_ACCESS_EXPOSES_KEYS",
    `Shell and file tools are not available in this workspace while other members have personal providers (${row.members} ${row.members === 1 ? "member" : "members"}, ${row.keys} ${row.keys === 1 ? "provider" : "providers"}): an agent with them could read those members' API keys from the workspace's runtime. Grant web only, or ask them to remove their personal providers.`,
    { details: { field: "tools", members: row.members, personalProviders: row.keys } },
  );
}

/**
 * Refuses a personal provider in a workspace where an agent has shell or files:
 * that agent could read the personal key from its gateway's config.
 */
export async function assertPersonalProviderAllowed(tx: Tx, workspaceId: string): Promise<void> {
  await lockHostAccess(tx, workspaceId);
  const [row] = await tx
    .select({ agents: count() })
    .from(agents)
    .where(
      and(
        eq(agents.workspaceId, workspaceId),
        or(...HOST_ACCESS_TOOLS.map((t) => sql`${agents.tools} @> ${JSON.stringify([t])}::jsonb`)),
      ),
    );
  if (!row || row.agents === 0) return;
  throw new AppError(
    "HOST_ACCESS_EXPOSES_KEYS",
    `Personal providers are not available in this workspace while ${row.agents} ${row.agents === 1 ? "agent has" : "agents have"} shell or file tools: such an agent could read your API key from the workspace's runtime. Use a shared provider, or ask an admin to remove those tools.`,
    { details: { field: "personal", agentsWithHostAccess: row.agents } },
  );
}
