import { AppError, BadRequestError, NotFoundError } from "@reef/contracts";
import { AGENT_TOOLS, type AgentTool, type Db, type ExecPolicy, schema, type Tx, withScope } from "@reef/db";
import type { GatewaySettings } from "@reef/runtime";
import { and, count, countDistinct, desc, eq, isNull, or } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import { gatewayConnectors } from "../connectors/connector-gateway-settings.ts";
import type { McpCatalog } from "../connectors/mcp-catalog.ts";
import { providersForGateway } from "../providers/provider-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import type { Vault } from "../vault/vault-service.ts";
import type { Access, WorkspaceGate } from "../workspace/workspace-access.ts";
import { assertHostAccessAllowed, grantsHostAccess } from "./host-access-guard.ts";
import {
  assertGrantable,
  type BlockedTool,
  blockedTools,
  DEFAULT_GRANTABLE_TOOLS,
  type ToolPolicy,
  ungrantableTools,
  usableTools,
} from "./tool-grants.ts";

const { agents, providers, workspaces, chatSessions } = schema;

/** What deleting an agent deletes: its conversations, and the number of people whose they are. */
export interface AgentImpact {
  sessions: number;
  people: number;
}

async function impactOf(tx: Tx, agentId: string): Promise<AgentImpact> {
  const [r] = await tx
    .select({ sessions: count(), people: countDistinct(chatSessions.userId) })
    .from(chatSessions)
    .where(eq(chatSessions.agentId, agentId));
  return { sessions: r?.sessions ?? 0, people: r?.people ?? 0 };
}
type Row = typeof agents.$inferSelect;

export interface AgentView {
  id: string;
  name: string;
  providerId: string;
  model: string;
  instructions: string;
  description: string;
  starterPrompts: string[];
  temperature: number | null;
  tools: AgentTool[];
  /** Granted tools the agent cannot use now, and why; left out of its gateway from the next start. */
  toolsBlocked: BlockedTool[];
  execPolicy: ExecPolicy;
  execAllowlist: string[];
  personal: boolean;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AgentInput {
  name: string;
  providerId: string;
  model: string;
  instructions?: string | undefined;
  description?: string | undefined;
  starterPrompts?: string[] | undefined;
  temperature?: number | null | undefined;
  tools?: AgentTool[] | undefined;
  execPolicy?: ExecPolicy | undefined;
  execAllowlist?: string[] | undefined;
}

/** What a chat turn needs to know about the agent it talks to. */
export interface ChatAgent {
  id: string;
  instructions: string;
  temperature: number | null;
  /** The agent's provider (named in a provider error), or null if it has none. */
  provider: { id: string; name: string } | null;
}

const DEFAULT_EXEC_POLICY: ExecPolicy = "ask";

/** Patterns in the order given, each once. */
function dedupe(patterns: readonly string[]): string[] {
  return [...new Set(patterns.map((p) => p.trim()).filter(Boolean))];
}

function toView(row: Row, policy: ToolPolicy): AgentView {
  return {
    id: row.id,
    name: row.name,
    providerId: row.providerId,
    model: row.model,
    instructions: row.instructions,
    description: row.description,
    starterPrompts: row.starterPrompts,
    temperature: row.temperature,
    tools: row.tools,
    toolsBlocked: blockedTools(row.tools, policy),
    execPolicy: row.execPolicy,
    execAllowlist: row.execAllowlist,
    personal: row.ownerUserId !== null,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

function visibleTo(access: Access) {
  return access.userId
    ? or(isNull(agents.ownerUserId), eq(agents.ownerUserId, access.userId))
    : isNull(agents.ownerUserId);
}

/**
 * Agents of a workspace. An agent on a personal provider is personal: only its
 * owner sees it and chats with it. Granting tools beyond messaging takes
 * `agents:manage` and only tools the operator allows (tool-grants.ts); a grant
 * the operator later disallows stays but is blocked, and its gateway is not
 * given it from the next start. Shell and files are refused while other members have
 * personal providers (see host-access-guard.ts). A change reaches the gateway
 * before the next message: the runtime manager compares the settings it
 * renders from these rows at every wake.
 */
export function createAgentService(deps: {
  db: Db;
  gate: WorkspaceGate;
  vault: Vault;
  /**
   * Whether gateways run where shell and file tools are contained (a sandbox, a
   * container). False: granting them is refused (the gateway would drop them anyway).
   */
  hostToolsAllowed?: boolean;
  /** The tool groups the operator lets workspace admins grant (platform settings); web only when absent. */
  grantableTools?: () => Promise<readonly AgentTool[]>;
  /** Whether connectors are on platform-wide (platform settings); off or absent: gateways get none. */
  connectorsEnabled?: () => Promise<boolean>;
  /** The operator's stdio catalogue: a catalogue connector runs its entry's command. */
  mcpCatalog?: McpCatalog;
}) {
  const { gate } = deps;

  // Read before a gated transaction: the settings read needs a connection of its own.
  async function toolPolicy(): Promise<ToolPolicy> {
    return {
      grantable: (await deps.grantableTools?.()) ?? DEFAULT_GRANTABLE_TOOLS,
      hostToolsAllowed: deps.hostToolsAllowed !== false,
    };
  }

  /** The platform-wide inputs of a gateway's settings: the tool policy, and whether connectors reach it. */
  async function gatewayPolicy() {
    const policy = await toolPolicy();
    const withConnectors = deps.mcpCatalog !== undefined && ((await deps.connectorsEnabled?.()) ?? false);
    return { policy, withConnectors };
  }

  function requireSandbox(tools: readonly string[]) {
    if (deps.hostToolsAllowed === false && grantsHostAccess(tools)) {
      throw new AppError(
        "SANDBOX_REQUIRED",
        "Shell and file tools need each workspace's runtime in a sandbox, which this server cannot provide (bubblewrap is missing or cannot create namespaces here). Ask the operator to install it (apt-get install bubblewrap socat), or grant web only.",
        { details: { field: "tools" } },
      );
    }
  }

  async function find(tx: Tx, access: Access, id: string): Promise<Row> {
    const [row] = await tx
      .select()
      .from(agents)
      .where(and(eq(agents.id, id), eq(agents.workspaceId, access.workspaceId), visibleTo(access)));
    if (!row) throw new NotFoundError("No such agent.");
    return row;
  }

  /** The provider an agent may use: visible to the caller, and offering the model when it lists models. */
  async function checkProvider(tx: Tx, access: Access, providerId: string, model: string) {
    const [p] = await tx
      .select({ id: providers.id, ownerUserId: providers.ownerUserId, models: providers.models, name: providers.name })
      .from(providers)
      .where(
        and(
          eq(providers.id, providerId),
          eq(providers.workspaceId, access.workspaceId),
          access.userId
            ? or(isNull(providers.ownerUserId), eq(providers.ownerUserId, access.userId))
            : isNull(providers.ownerUserId),
        ),
      );
    if (!p)
      throw new BadRequestError("No such provider in this workspace.", { field: "providerId" }, "VALIDATION_FAILED");
    if (p.models.length > 0 && !p.models.includes(model)) {
      throw new BadRequestError(
        `${p.name} does not offer the model "${model}". Pick one of its models, or test the provider to refresh its list.`,
        { field: "model", models: p.models.slice(0, 50) },
        "VALIDATION_FAILED",
      );
    }
    return p;
  }

  /** Personal agents belong to their owner; shared ones to admins, and to the member who created them. */
  async function requireManage(access: Access, row: Row) {
    if (row.ownerUserId !== null) {
      if (row.ownerUserId !== access.userId) throw new NotFoundError("No such agent.");
      return;
    }
    if (row.createdBy !== null && row.createdBy === access.userId) return;
    await gate.require(access, "agents:manage");
  }

  return {
    async list(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<AgentView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      const policy = await toolPolicy();
      return gate.run(ctx, workspaceId, "agents:read", async (tx, access) => {
        const rows = await tx
          .select()
          .from(agents)
          .where(
            and(eq(agents.workspaceId, workspaceId), visibleTo(access), olderThan(agents.createdAt, agents.id, cursor)),
          )
          .orderBy(desc(agents.createdAt), desc(agents.id))
          .limit(limit + 1);
        return toPage(
          rows,
          limit,
          (r) => toView(r, policy),
          (r) => ({ createdAt: r.createdAt.toISOString(), id: r.id }),
        );
      });
    },

    /** What admins may grant here now, and why not the rest (any member may read it: the agent form shows it). */
    async tools(
      ctx: RequestContext,
      workspaceId: string,
    ): Promise<{ grantable: AgentTool[]; unavailable: BlockedTool[] }> {
      const policy = await toolPolicy();
      await gate.run(ctx, workspaceId, "agents:read", async () => true);
      const unavailable = ungrantableTools(policy);
      const grantable = AGENT_TOOLS.filter((t) => !unavailable.some((u) => u.tool === t));
      return { grantable, unavailable };
    },

    async get(ctx: RequestContext, workspaceId: string, id: string): Promise<AgentView> {
      const policy = await toolPolicy();
      return gate.run(ctx, workspaceId, "agents:read", async (tx, access) =>
        toView(await find(tx, access, id), policy),
      );
    },

    async create(ctx: RequestContext, workspaceId: string, input: AgentInput): Promise<AgentView> {
      const policy = await toolPolicy();
      return gate.run(ctx, workspaceId, "agents:create", async (tx, access) => {
        const provider = await checkProvider(tx, access, input.providerId, input.model);
        const tools = [...new Set(input.tools ?? [])].sort();
        const execPolicy = input.execPolicy ?? DEFAULT_EXEC_POLICY;
        const execAllowlist = dedupe(input.execAllowlist ?? []);
        // What the agent may run is an admin's decision, like its tools; the defaults need no one's.
        if (tools.length || execPolicy !== DEFAULT_EXEC_POLICY || execAllowlist.length)
          await gate.require(access, "agents:manage");
        assertGrantable(tools, policy.grantable);
        requireSandbox(tools);
        if (grantsHostAccess(tools)) await assertHostAccessAllowed(tx, workspaceId, access.userId);
        const [row] = await tx
          .insert(agents)
          .values({
            workspaceId,
            ownerUserId: provider.ownerUserId,
            name: input.name.trim(),
            providerId: input.providerId,
            model: input.model,
            instructions: input.instructions ?? "",
            description: input.description?.trim() ?? "",
            starterPrompts: (input.starterPrompts ?? []).map((p) => p.trim()).filter(Boolean),
            temperature: input.temperature ?? null,
            tools,
            execPolicy,
            execAllowlist,
            createdBy: access.userId,
          })
          .returning();
        if (!row) throw new Error("agent insert returned nothing");
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "agent.create",
          targetType: "agent",
          targetId: row.id,
          details: {
            name: row.name,
            providerId: row.providerId,
            model: row.model,
            tools,
            execPolicy,
            execAllowlist,
            personal: !!row.ownerUserId,
          },
        });
        return toView(row, policy);
      });
    },

    async update(
      ctx: RequestContext,
      workspaceId: string,
      id: string,
      patch: { [K in keyof AgentInput]?: AgentInput[K] | undefined },
    ): Promise<AgentView> {
      const policy = await toolPolicy();
      return gate.run(ctx, workspaceId, "agents:read", async (tx, access) => {
        const row = await find(tx, access, id);
        await requireManage(access, row);
        const set: Partial<typeof agents.$inferInsert> = { updatedAt: new Date() };
        if (patch.name !== undefined) set.name = patch.name.trim();
        if (patch.instructions !== undefined) set.instructions = patch.instructions;
        if (patch.description !== undefined) set.description = patch.description.trim();
        if (patch.starterPrompts !== undefined)
          set.starterPrompts = patch.starterPrompts.map((p) => p.trim()).filter(Boolean);
        if (patch.temperature !== undefined) set.temperature = patch.temperature;
        if (patch.providerId !== undefined || patch.model !== undefined) {
          const provider = await checkProvider(
            tx,
            access,
            patch.providerId ?? row.providerId,
            patch.model ?? row.model,
          );
          if (provider.ownerUserId !== row.ownerUserId) {
            throw new BadRequestError(
              row.ownerUserId
                ? "A personal agent stays on your personal providers."
                : "A shared agent cannot use a personal provider: its key would serve everyone.",
              { field: "providerId" },
              "VALIDATION_FAILED",
            );
          }
          set.providerId = provider.id;
          set.model = patch.model ?? row.model;
        }
        if (patch.tools !== undefined) {
          const tools = [...new Set(patch.tools)].sort();
          if (tools.join() !== [...row.tools].sort().join()) await gate.require(access, "agents:manage");
          const added = tools.filter((t) => !row.tools.includes(t));
          // Only new grants: one made before the operator tightened the list stays (blocked, and said so).
          assertGrantable(added, policy.grantable);
          requireSandbox(added);
          if (grantsHostAccess(added)) await assertHostAccessAllowed(tx, workspaceId, access.userId);
          set.tools = tools;
        }
        // A form saving other fields sends these back unchanged: only a change needs an admin (and is audited).
        if (patch.execPolicy !== undefined && patch.execPolicy !== row.execPolicy) {
          await gate.require(access, "agents:manage");
          set.execPolicy = patch.execPolicy;
        }
        const execAllowlist = patch.execAllowlist && dedupe(patch.execAllowlist);
        if (execAllowlist && execAllowlist.join("\n") !== row.execAllowlist.join("\n")) {
          await gate.require(access, "agents:manage");
          set.execAllowlist = execAllowlist;
        }
        const [updated] = await tx.update(agents).set(set).where(eq(agents.id, id)).returning();
        if (!updated) throw new NotFoundError("No such agent.");
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "agent.update",
          targetType: "agent",
          targetId: id,
          details: {
            fields: Object.keys(patch).sort(),
            ...(patch.tools ? { tools: set.tools } : {}),
            ...(set.execPolicy !== undefined ? { execPolicy: { from: row.execPolicy, to: set.execPolicy } } : {}),
            ...(set.execAllowlist !== undefined
              ? { execAllowlist: { from: row.execAllowlist, to: set.execAllowlist } }
              : {}),
          },
        });
        return toView(updated, policy);
      });
    },

    remove(ctx: RequestContext, workspaceId: string, id: string): Promise<void> {
      return gate.run(ctx, workspaceId, "agents:read", async (tx, access) => {
        const row = await find(tx, access, id);
        await requireManage(access, row);
        const impact = await impactOf(tx, id);
        await tx.delete(agents).where(eq(agents.id, id));
        // No foreign key holds workspaces.defaultAgentId (see the schema): clear it here, in the same transaction.
        await tx
          .update(workspaces)
          .set({ defaultAgentId: null, updatedAt: new Date() })
          .where(and(eq(workspaces.id, workspaceId), eq(workspaces.defaultAgentId, id)));
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "agent.delete",
          targetType: "agent",
          targetId: id,
          details: { name: row.name, sessions: impact.sessions, people: impact.people },
        });
      });
    },

    /**
     * What deleting an agent takes with it, for the confirmation people read first: its
     * conversations and how many people they belong to. Only those who may delete it may ask.
     */
    impact(ctx: RequestContext, workspaceId: string, id: string): Promise<AgentImpact> {
      return gate.run(ctx, workspaceId, "agents:read", async (tx, access) => {
        const row = await find(tx, access, id);
        await requireManage(access, row);
        return impactOf(tx, id);
      });
    },

    /** Inside a gated transaction: the agent the caller may chat with, or 404. */
    async forChat(tx: Tx, access: Access, agentId: string): Promise<ChatAgent> {
      // The same visibility as `find`, with the provider in the same round trip (every message reads this).
      const [row] = await tx
        .select({
          id: agents.id,
          instructions: agents.instructions,
          temperature: agents.temperature,
          providerId: providers.id,
          providerName: providers.name,
        })
        .from(agents)
        .leftJoin(providers, eq(providers.id, agents.providerId))
        .where(and(eq(agents.id, agentId), eq(agents.workspaceId, access.workspaceId), visibleTo(access)));
      if (!row) throw new NotFoundError("No such agent.");
      const { providerId, providerName, ...agent } = row;
      return {
        ...agent,
        provider: providerId && providerName !== null ? { id: providerId, name: providerName } : null,
      };
    },

    /**
     * Inside a gated transaction: the agents the caller may chat with (the same
     * visibility as {@link forChat}), newest first, at most `limit`; with `name`,
     * only those named exactly so. For the OpenAI-compatible API's model list.
     */
    async chatAgents(
      tx: Tx,
      access: Access,
      q: { limit: number; name?: string | undefined },
    ): Promise<{ id: string; name: string; createdAt: Date }[]> {
      return tx
        .select({ id: agents.id, name: agents.name, createdAt: agents.createdAt })
        .from(agents)
        .where(
          and(
            eq(agents.workspaceId, access.workspaceId),
            visibleTo(access),
            q.name !== undefined ? eq(agents.name, q.name) : undefined,
          ),
        )
        .orderBy(desc(agents.createdAt), desc(agents.id))
        .limit(q.limit);
    },

    /**
     * The platform-wide inputs of {@link gatewaySettings} (the operator's tool policy and connectors switch), for
     * the runtime manager's settings cache: when it changes, every workspace's settings are read again.
     */
    async gatewayPolicyKey(): Promise<string> {
      return JSON.stringify(await gatewayPolicy());
    },

    /**
     * What the workspace's gateway serves (never a key): every agent, and the providers they use. Read again only
     * when the workspace's settings version moved or {@link gatewayPolicyKey} changed (runtime-settings-cache.ts).
     */
    async gatewaySettings(workspaceId: string): Promise<GatewaySettings> {
      const { policy, withConnectors } = await gatewayPolicy();
      return withScope(deps.db, { workspaceId }, async (tx) => {
        const mcp =
          withConnectors && deps.mcpCatalog ? await gatewayConnectors(tx, workspaceId, deps.mcpCatalog) : undefined;
        const rows = await tx.select().from(agents).where(eq(agents.workspaceId, workspaceId)).orderBy(agents.id);
        const used = [...new Set(rows.map((a) => a.providerId))];
        const gatewayProviders = await providersForGateway(tx, workspaceId, used);
        // The gateway knows only the models it is told of: make sure each agent's is listed.
        for (const p of gatewayProviders) {
          for (const a of rows) {
            if (a.providerId === p.id && !p.models.some((m) => m.id === a.model)) p.models.push({ id: a.model });
          }
        }
        return {
          providers: gatewayProviders,
          agents: rows.map((a) => {
            // Grants the operator has since disallowed (or a missing sandbox) stop here; the changed
            // settings hash restarts a running gateway at its next wake.
            const tools = usableTools(a.tools, policy);
            return {
              id: a.id,
              // The id, not the display name: renaming an agent should not restart its gateway.
              name: a.id,
              model: `${a.providerId}/${a.model}`,
              ...(a.temperature !== null ? { temperature: a.temperature } : {}),
              ...(tools.length ? { tools } : {}),
              // Rendered as the gateway's exec settings (openclaw-config.ts): a change restarts it at the next wake.
              execPolicy: a.execPolicy,
              ...(mcp?.byAgent.has(a.id) ? { connectors: mcp.byAgent.get(a.id) } : {}),
            };
          }),
          // Secrets stay in Reef: HTTP connectors reach the gateway as Reef's MCP proxy (openclaw-config.ts).
          ...(mcp?.connectors.length ? { connectors: mcp.connectors } : {}),
        };
      });
    },
  };
}

export type AgentService = ReturnType<typeof createAgentService>;
