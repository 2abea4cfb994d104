import { randomUUID } from "node:crypto";
import {
  BadRequestError,
  ConflictError,
  type ConnectorTestResult,
  type ConnectorView,
  type CreateConnectorBody,
  NotFoundError,
  type UpdateConnectorBody,
} from "@reef/contracts";
import { isUuid, schema, type Tx } from "@reef/db";
import { and, desc, eq, inArray } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, encodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import { isUniqueViolation } from "../shared/pg-errors.ts";
import type { Vault } from "../vault/vault-service.ts";
import type { Access, WorkspaceGate } from "../workspace/workspace-access.ts";
import {
  connectorApiKeyRecordId,
  mergeHeaders,
  openConnectorApiKey,
  openConnectorHeaders,
  sealHeaders,
} from "./connector-credentials.ts";
import { probeConnector } from "./connector-probe.ts";
import {
  checkUrlShape,
  connectorInvalid,
  connectorsDisabled,
  n8nMcpUrl,
  requireCallable,
  resolvePreset,
  slugFor,
} from "./connector-urls.ts";
import { type ConnectorRow, toConnectorViews, visibleAgents } from "./connector-view.ts";
import { listWorkflows, type WorkflowPage } from "./connector-workflows.ts";
import type { McpCatalog } from "./mcp-catalog.ts";

const { connectors, agentConnectors, agents } = schema;

/** Whether connectors are on, and which non-public hosts they may use (platform setting, then config). */
export type ConnectorPolicy = () => Promise<{ enabled: boolean; allowedHosts: string[] }>;

/** An agent's opt-in: null tools means every tool the connector offers. */
export interface ConnectorAgentInput {
  agentId: string;
  tools: string[] | null;
}

const sameOrigin = (a: string | null, b: string | null) =>
  a !== null && b !== null && new URL(a).origin === new URL(b).origin;

/**
 * A workspace's MCP connectors: the servers its agents may use, their sealed
 * credentials (write-only; shown as header names and a hint), per-agent
 * opt-in, connection tests and, for n8n and Activepieces, their workflows.
 * URLs are checked against the private-address policy when saved and again at
 * every connection. Every change is audited without a header value, token or key.
 */
export function createConnectorService(deps: {
  gate: WorkspaceGate;
  vault: Vault;
  /** The operator's stdio catalogue (loaded at start). */
  catalog: McpCatalog;
  policy: ConnectorPolicy;
  /** A connection test's limit (default 10 s). */
  probeTimeoutMs?: number;
}) {
  const { gate, vault, catalog } = deps;

  async function requireEnabled(): Promise<readonly string[]> {
    const policy = await deps.policy();
    if (!policy.enabled) throw connectorsDisabled();
    return policy.allowedHosts;
  }

  async function find(tx: Tx, workspaceId: string, id: string): Promise<ConnectorRow> {
    if (!isUuid(id)) throw new NotFoundError("No such connector.");
    const [row] = await tx
      .select()
      .from(connectors)
      .where(and(eq(connectors.id, id), eq(connectors.workspaceId, workspaceId)));
    if (!row) throw new NotFoundError("No such connector.");
    return row;
  }

  async function viewOf(tx: Tx, access: Access, row: ConnectorRow): Promise<ConnectorView> {
    const [view] = await toConnectorViews(tx, access, [row]);
    if (!view) throw new Error("connector view missing");
    return view;
  }

  /** What a create body resolves to (URLs derived for presets, the catalogue entry checked). */
  function resolveCreate(input: CreateConnectorBody) {
    if (input.kind === "catalog") {
      if (!input.catalogEntryId)
        throw connectorInvalid("Choose an entry of the operator's catalogue.", "catalogEntryId");
      if (!catalog.get(input.catalogEntryId)) {
        throw connectorInvalid("The operator's catalogue has no such entry.", "catalogEntryId");
      }
      if (input.url || input.instanceUrl || input.bearerToken || input.headers || input.apiKey || input.transport) {
        throw connectorInvalid(
          "A catalogue connector runs inside the runtime as the operator set it up: it takes no URL, transport or credentials.",
        );
      }
      return { transport: "stdio" as const, url: null, instanceUrl: null, catalogEntryId: input.catalogEntryId };
    }
    if (input.catalogEntryId)
      throw connectorInvalid("Only catalogue connectors take a catalogue entry.", "catalogEntryId");
    const { url, instanceUrl } = resolvePreset(input);
    checkUrlShape(url, "url");
    if (instanceUrl) checkUrlShape(instanceUrl, "instanceUrl");
    if (input.apiKey && input.kind === "mcp") {
      throw connectorInvalid("Only n8n and Activepieces connectors take a REST API key.", "apiKey");
    }
    return { transport: input.transport ?? ("streamable-http" as const), url, instanceUrl, catalogEntryId: null };
  }

  function checkAllowlist(list: string[] | null | undefined) {
    if (list && new Set(list).size !== list.length) throw connectorInvalid("A tool is listed twice.", "toolAllowlist");
  }

  async function audit(
    tx: Tx,
    ctx: RequestContext,
    workspaceId: string,
    action: string,
    targetId: string | null,
    details: Record<string, unknown>,
    outcome: "success" | "failure" = "success",
  ) {
    await appendAudit(tx, ctx, {
      workspaceId,
      action: `connector.${action}`,
      targetType: "connector",
      ...(targetId ? { targetId } : {}),
      outcome,
      details,
    });
  }

  const probe = (
    target: { url: string; transport: "streamable-http" | "sse"; headers: Record<string, string> },
    allowedHosts: readonly string[],
  ) => probeConnector(target, { allowedHosts, ...(deps.probeTimeoutMs ? { timeoutMs: deps.probeTimeoutMs } : {}) });

  return {
    list(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<ConnectorView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      return gate.run(ctx, workspaceId, "connectors:read", async (tx, access) => {
        const rows = await tx
          .select()
          .from(connectors)
          .where(and(eq(connectors.workspaceId, workspaceId), olderThan(connectors.createdAt, connectors.id, cursor)))
          .orderBy(desc(connectors.createdAt), desc(connectors.id))
          .limit(limit + 1);
        const page = toPage(
          rows,
          limit,
          (r) => r,
          (r) => ({ createdAt: r.createdAt.toISOString(), id: r.id }),
        );
        return { ...page, items: await toConnectorViews(tx, access, page.items) };
      });
    },

    get(ctx: RequestContext, workspaceId: string, id: string): Promise<ConnectorView> {
      return gate.run(ctx, workspaceId, "connectors:read", async (tx, access) =>
        viewOf(tx, access, await find(tx, workspaceId, id)),
      );
    },

    /** Adds a connector; its URL must be one Reef may call (checked before anything is stored). */
    async create(ctx: RequestContext, workspaceId: string, input: CreateConnectorBody): Promise<ConnectorView> {
      // Authorise before resolving hosts, so nobody can make Reef look up names they may not configure.
      await gate.run(ctx, workspaceId, "connectors:manage", async () => {});
      const allowedHosts = await requireEnabled();
      const resolved = resolveCreate(input);
      checkAllowlist(input.toolAllowlist);
      const headers = mergeHeaders({}, { bearerToken: input.bearerToken, headers: input.headers });
      if (resolved.url) await requireCallable(resolved.url, "url", allowedHosts);
      if (resolved.instanceUrl && input.apiKey)
        await requireCallable(resolved.instanceUrl, "instanceUrl", allowedHosts);
      return gate.run(ctx, workspaceId, "connectors:manage", async (tx, access) => {
        const id = randomUUID();
        const taken = await tx
          .select({ slug: connectors.slug })
          .from(connectors)
          .where(eq(connectors.workspaceId, workspaceId));
        const slug = slugFor(input.name, new Set(taken.map((r) => r.slug)));
        const sealed = await sealHeaders(tx, vault, workspaceId, id, headers);
        try {
          const [row] = await tx
            .insert(connectors)
            .values({
              id,
              workspaceId,
              name: input.name.trim(),
              slug,
              kind: input.kind,
              ...resolved,
              ...sealed,
              apiKeySealed: input.apiKey
                ? await vault.seal(tx, workspaceId, connectorApiKeyRecordId(id), input.apiKey)
                : null,
              toolAllowlist: input.toolAllowlist ?? null,
              enabled: input.enabled ?? true,
              createdBy: access.userId,
            })
            .returning();
          if (!row) throw new Error("connector insert returned nothing");
          await audit(tx, ctx, workspaceId, "create", id, {
            name: row.name,
            slug,
            kind: row.kind,
            transport: row.transport,
            host: row.url ? new URL(row.url).host : null,
            catalogEntryId: row.catalogEntryId,
            headerNames: row.headerNames,
            apiKey: row.apiKeySealed !== null,
            enabled: row.enabled,
          });
          return viewOf(tx, access, row);
        } catch (err) {
          if (isUniqueViolation(err))
            throw new ConflictError("Another connector was just added with this name; try again.");
          throw err;
        }
      });
    },

    /**
     * Changes a connector. Credentials are write-only (absent keeps, null
     * removes). Stored credentials go only to the origin they were entered
     * for: moving the URL to another origin needs them again.
     */
    async update(
      ctx: RequestContext,
      workspaceId: string,
      id: string,
      patch: UpdateConnectorBody,
    ): Promise<ConnectorView> {
      const before = await gate.run(ctx, workspaceId, "connectors:manage", (tx) => find(tx, workspaceId, id));
      const allowedHosts = await requireEnabled();
      checkAllowlist(patch.toolAllowlist);
      const changesTarget =
        patch.url !== undefined ||
        patch.instanceUrl !== undefined ||
        patch.transport !== undefined ||
        patch.bearerToken !== undefined ||
        patch.headers !== undefined ||
        patch.apiKey !== undefined;
      let url = before.url;
      let instanceUrl = before.instanceUrl;
      if (before.kind === "catalog") {
        if (changesTarget) {
          throw connectorInvalid(
            "A catalogue connector takes no URL, transport or credentials: only its name, tools and switch.",
          );
        }
      } else {
        if (patch.instanceUrl !== undefined) instanceUrl = patch.instanceUrl.replace(/\/+$/, "");
        if (patch.url !== undefined) url = patch.url;
        else if (
          before.kind === "n8n" &&
          patch.instanceUrl !== undefined &&
          before.instanceUrl &&
          before.url === n8nMcpUrl(before.instanceUrl)
        ) {
          // The MCP URL was derived from the instance: it follows it.
          url = n8nMcpUrl(patch.instanceUrl);
        }
        if (before.kind === "activepieces" && patch.url !== undefined && patch.instanceUrl === undefined) {
          instanceUrl = resolvePreset({ kind: "activepieces", url }).instanceUrl;
        }
        if (url) checkUrlShape(url, "url");
        if (instanceUrl) checkUrlShape(instanceUrl, "instanceUrl");
        if (patch.apiKey && before.kind === "mcp")
          throw connectorInvalid("Only n8n and Activepieces connectors take a REST API key.", "apiKey");
        if (
          before.headersSealed &&
          url !== before.url &&
          !sameOrigin(url, before.url) &&
          patch.bearerToken === undefined &&
          patch.headers === undefined
        ) {
          throw new BadRequestError(
            "Enter the token and headers again to move the connector to another address: Reef sends stored credentials only to the address they were entered for.",
            { field: "bearerToken" },
            "API_KEY_REQUIRED",
          );
        }
        if (
          before.apiKeySealed &&
          instanceUrl !== before.instanceUrl &&
          !sameOrigin(instanceUrl, before.instanceUrl) &&
          patch.apiKey === undefined
        ) {
          throw new BadRequestError(
            "Enter the API key again to move the connector to another instance: Reef sends a stored key only to the address it was entered for.",
            { field: "apiKey" },
            "API_KEY_REQUIRED",
          );
        }
        if (url && url !== before.url) await requireCallable(url, "url", allowedHosts);
        if (instanceUrl && instanceUrl !== before.instanceUrl)
          await requireCallable(instanceUrl, "instanceUrl", allowedHosts);
      }
      return gate.run(ctx, workspaceId, "connectors:manage", async (tx, access) => {
        const row = await find(tx, workspaceId, id);
        const set: Partial<typeof connectors.$inferInsert> = { updatedAt: new Date() };
        if (patch.name !== undefined) set.name = patch.name.trim();
        if (patch.enabled !== undefined) set.enabled = patch.enabled;
        if (patch.toolAllowlist !== undefined) set.toolAllowlist = patch.toolAllowlist;
        if (patch.transport !== undefined) set.transport = patch.transport;
        if (url !== row.url) set.url = url;
        if (instanceUrl !== row.instanceUrl) set.instanceUrl = instanceUrl;
        if (patch.bearerToken !== undefined || patch.headers !== undefined) {
          const current = await openConnectorHeaders(tx, vault, row);
          Object.assign(
            set,
            await sealHeaders(
              tx,
              vault,
              workspaceId,
              id,
              mergeHeaders(current, { bearerToken: patch.bearerToken, headers: patch.headers }),
            ),
          );
        }
        if (patch.apiKey !== undefined) {
          set.apiKeySealed = patch.apiKey
            ? await vault.seal(tx, workspaceId, connectorApiKeyRecordId(id), patch.apiKey)
            : null;
        }
        // The tools listed at the last test were another server's: test again.
        if (set.url !== undefined || set.transport !== undefined) {
          set.tools = null;
          set.lastTestedAt = null;
          set.lastTestOk = null;
          set.lastTestError = null;
        }
        const [updated] = await tx.update(connectors).set(set).where(eq(connectors.id, id)).returning();
        if (!updated) throw new NotFoundError("No such connector.");
        await audit(tx, ctx, workspaceId, "update", id, {
          // Which fields changed, never their values: some of them are secrets.
          fields: Object.keys(patch).sort(),
          ...(set.url !== undefined ? { host: url ? new URL(url).host : null } : {}),
          headerNames: updated.headerNames,
        });
        return viewOf(tx, access, updated);
      });
    },

    delete(ctx: RequestContext, workspaceId: string, id: string): Promise<void> {
      return gate.run(ctx, workspaceId, "connectors:manage", async (tx) => {
        const row = await find(tx, workspaceId, id);
        await tx.delete(connectors).where(eq(connectors.id, id));
        await audit(tx, ctx, workspaceId, "delete", id, { name: row.name, slug: row.slug, kind: row.kind });
      });
    },

    /**
     * Replaces which agents may use the connector (and which of its tools).
     * Agents must be this workspace's and visible to the caller; other members'
     * personal agents are "not found", and their opt-ins are left as they are.
     */
    async setAgents(
      ctx: RequestContext,
      workspaceId: string,
      id: string,
      list: ConnectorAgentInput[],
    ): Promise<ConnectorView> {
      await gate.run(ctx, workspaceId, "connectors:manage", async () => {});
      await requireEnabled();
      return gate.run(ctx, workspaceId, "connectors:manage", async (tx, access) => {
        const row = await find(tx, workspaceId, id);
        const ids = list.map((a) => a.agentId);
        if (new Set(ids).size !== ids.length) throw connectorInvalid("An agent is listed twice.", "agents");
        for (const a of list) {
          if (a.tools && new Set(a.tools).size !== a.tools.length)
            throw connectorInvalid("A tool is listed twice.", "agents");
          const outside = row.toolAllowlist && a.tools?.find((t) => !row.toolAllowlist?.includes(t));
          if (outside)
            throw connectorInvalid(`The connector does not offer the tool "${outside}" (see its tool list).`, "agents");
        }
        const found = ids.length
          ? await tx
              .select({ id: agents.id })
              .from(agents)
              .where(and(eq(agents.workspaceId, workspaceId), inArray(agents.id, ids), visibleAgents(access)))
          : [];
        if (found.length !== ids.length) throw new NotFoundError("No such agent.");
        // Only the opt-ins the caller can see are replaced.
        const visible = await tx
          .select({ id: agentConnectors.agentId })
          .from(agentConnectors)
          .innerJoin(agents, eq(agents.id, agentConnectors.agentId))
          .where(and(eq(agentConnectors.connectorId, id), visibleAgents(access)));
        if (visible.length) {
          await tx.delete(agentConnectors).where(
            and(
              eq(agentConnectors.connectorId, id),
              inArray(
                agentConnectors.agentId,
                visible.map((v) => v.id),
              ),
            ),
          );
        }
        if (list.length) {
          await tx
            .insert(agentConnectors)
            .values(list.map((a) => ({ workspaceId, agentId: a.agentId, connectorId: id, tools: a.tools })));
        }
        await tx.update(connectors).set({ updatedAt: new Date() }).where(eq(connectors.id, id));
        await audit(tx, ctx, workspaceId, "agents.set", id, {
          agents: list.map((a) => ({ agentId: a.agentId, tools: a.tools })),
        });
        return viewOf(tx, access, (await find(tx, workspaceId, id)) as ConnectorRow);
      });
    },

    /**
     * Connects to the saved connector and lists its tools; the result (tools,
     * when, why it failed) is stored on the connector. Catalogue connectors run
     * inside the runtime and cannot be reached from Reef: refused with a reason.
     */
    async test(ctx: RequestContext, workspaceId: string, id: string): Promise<ConnectorTestResult> {
      await gate.run(ctx, workspaceId, "connectors:manage", async () => {});
      const allowedHosts = await requireEnabled();
      const target = await gate.run(ctx, workspaceId, "connectors:manage", async (tx) => {
        const row = await find(tx, workspaceId, id);
        if (row.transport === "stdio" || !row.url) {
          throw connectorInvalid(
            "A catalogue connector runs inside the workspace's runtime, so Reef cannot test it from here: enable it for an agent and ask the agent to list its tools.",
          );
        }
        return { url: row.url, transport: row.transport, headers: await openConnectorHeaders(tx, vault, row) };
      });
      const result = await probe(target, allowedHosts);
      await gate.run(ctx, workspaceId, "connectors:manage", async (tx) => {
        await find(tx, workspaceId, id);
        await tx
          .update(connectors)
          .set({
            lastTestedAt: new Date(),
            lastTestOk: result.ok,
            lastTestError: result.error ? `${result.error.code}: ${result.error.message}` : null,
            ...(result.ok
              ? {
                  tools: result.tools.map((t) =>
                    t.description ? { name: t.name, description: t.description } : { name: t.name },
                  ),
                }
              : {}),
          })
          .where(eq(connectors.id, id));
        await audit(
          tx,
          ctx,
          workspaceId,
          "test",
          id,
          {
            ok: result.ok,
            code: result.error?.code ?? null,
            tools: result.tools.length,
            durationMs: result.durationMs,
          },
          result.ok ? "success" : "failure",
        );
      });
      return result;
    },

    /** Tests a connector before it is saved (the form's "Test connection"): nothing is stored. */
    async testDraft(
      ctx: RequestContext,
      workspaceId: string,
      input: CreateConnectorBody,
    ): Promise<ConnectorTestResult> {
      await gate.run(ctx, workspaceId, "connectors:manage", async () => {});
      const allowedHosts = await requireEnabled();
      const resolved = resolveCreate(input);
      if (!resolved.url || resolved.catalogEntryId) {
        throw connectorInvalid(
          "A catalogue connector runs inside the workspace's runtime, so Reef cannot test it from here.",
        );
      }
      const headers = mergeHeaders({}, { bearerToken: input.bearerToken, headers: input.headers });
      const result = await probe({ url: resolved.url, transport: resolved.transport, headers }, allowedHosts);
      await gate.run(ctx, workspaceId, "connectors:manage", (tx) =>
        audit(
          tx,
          ctx,
          workspaceId,
          "test",
          null,
          {
            draft: true,
            kind: input.kind,
            host: new URL(resolved.url).host,
            ok: result.ok,
            code: result.error?.code ?? null,
            tools: result.tools.length,
          },
          result.ok ? "success" : "failure",
        ),
      );
      return result;
    },

    /** The n8n workflows or Activepieces flows the connector's API key can see (the engine's cursor passed through). */
    async workflows(
      ctx: RequestContext,
      workspaceId: string,
      id: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<WorkflowPage> {
      // Reef's own cursor wraps the engine's: a tampered one is refused here, before any engine sees it.
      const engineCursor = decodeCursor(q.cursor, { engine: "text" })?.engine;
      await gate.run(ctx, workspaceId, "connectors:read", async () => {});
      const allowedHosts = await requireEnabled();
      const source = await gate.run(ctx, workspaceId, "connectors:read", async (tx) => {
        const row = await find(tx, workspaceId, id);
        if (row.kind !== "n8n" && row.kind !== "activepieces") {
          throw connectorInvalid("Only n8n and Activepieces connectors list workflows.");
        }
        const apiKey = await openConnectorApiKey(tx, vault, row);
        if (!apiKey || !row.instanceUrl || !row.url) {
          throw connectorInvalid("Add the engine's REST API key to the connector to list its workflows.", "apiKey");
        }
        return { kind: row.kind, instanceUrl: row.instanceUrl, url: row.url, apiKey };
      });
      const page = await listWorkflows(source, { limit: q.limit, cursor: engineCursor }, { allowedHosts });
      return { ...page, nextCursor: page.nextCursor ? encodeCursor({ engine: page.nextCursor }) : null };
    },

    /** The operator's catalogue as workspace admins see it: never its commands. */
    catalog(): { id: string; name: string; description: string }[] {
      return catalog.entries.map((e) => ({ id: e.id, name: e.name, description: e.description }));
    },
  };
}

export type ConnectorService = ReturnType<typeof createConnectorService>;
