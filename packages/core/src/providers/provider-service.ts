import { randomUUID } from "node:crypto";
import { BadRequestError, ConflictError, NotFoundError } from "@reef/contracts";
import { type ProviderKind, schema, type Tx } from "@reef/db";
import type { ProviderInput as GatewayProvider } from "@reef/runtime";
import { and, count, desc, eq, inArray, isNull, or } from "drizzle-orm";
import { assertPersonalProviderAllowed } from "../agents/host-access-guard.ts";
import { appendAudit } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { assertCallable } from "../shared/guarded-http.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import { isUniqueViolation } from "../shared/pg-errors.ts";
import type { Vault } from "../vault/vault-service.ts";
import type { Access, WorkspaceGate } from "../workspace/workspace-access.ts";
import {
  maskKey,
  NOT_ALLOWED_MESSAGE,
  PROVIDER_KIND_INFO,
  type ProbeResult,
  type ProbeTransport,
  probeProvider,
} from "./provider-catalog.ts";

const { providers, agents } = schema;
type Row = typeof providers.$inferSelect;

/** A provider as members see it: the key only as a mask. */
export interface ProviderView {
  id: string;
  name: string;
  kind: ProviderKind;
  baseUrl: string;
  apiKey: string | null;
  models: string[];
  personal: boolean;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ProviderInput {
  name: string;
  kind: ProviderKind;
  baseUrl?: string | undefined;
  apiKey?: string | undefined;
  models?: string[] | undefined;
  personal?: boolean | undefined;
}

export interface ProviderPatch {
  name?: string | undefined;
  baseUrl?: string | undefined;
  apiKey?: string | undefined;
  models?: string[] | undefined;
}

export interface ProviderTestView {
  ok: boolean;
  reason: Exclude<ProbeResult, { ok: true }>["reason"] | null;
  message: string;
  models: string[];
  latencyMs: number;
}

function toView(row: Row): ProviderView {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    baseUrl: row.baseUrl,
    apiKey: maskKey(row.apiKeyLast4),
    models: row.models,
    personal: row.ownerUserId !== null,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Rows the caller may see: the workspace's shared providers and their own personal ones. */
function visibleTo(access: Access) {
  return access.userId
    ? or(isNull(providers.ownerUserId), eq(providers.ownerUserId, access.userId))
    : isNull(providers.ownerUserId);
}

const last4 = (key: string) => key.slice(-4);

/**
 * LLM providers of a workspace. Keys go into the vault on the way in and come
 * out only as a mask; they are opened only by Reef's LLM proxy, for a call of
 * the workspace's own gateway, and by {@link test} for the provider's own URL.
 */
export function createProviderService(deps: {
  gate: WorkspaceGate;
  vault: Vault;
  /**
   * Non-public hosts the operator allows as base URLs (platform setting or
   * `REEF_PROVIDER_ALLOWED_HOSTS`); every other non-public address is refused.
   */
  allowedHosts: () => Promise<readonly string[]>;
  /** How long a connection test or model-list fetch may take. */
  probeTimeoutMs?: number;
  /** Replaces the guarded network call (unit tests). */
  transport?: ProbeTransport;
}) {
  const { gate, vault } = deps;
  const timeoutMs = deps.probeTimeoutMs ?? 10_000;
  const probe = async (input: Parameters<typeof probeProvider>[0]) =>
    probeProvider(input, { timeoutMs, allowedHosts: await deps.allowedHosts(), transport: deps.transport });

  const notAllowed = () => new BadRequestError(NOT_ALLOWED_MESSAGE, { field: "baseUrl" }, "PROVIDER_URL_NOT_ALLOWED");

  /**
   * Refuses a base URL Reef may not call when it is saved, so neither Reef nor
   * the workspace's gateway is ever configured with one. Each call re-checks
   * (DNS may change), and so does every hop of every probe.
   */
  async function requireCallable(baseUrl: string) {
    try {
      await assertCallable(baseUrl, { allowedHosts: await deps.allowedHosts(), timeoutMs });
    } catch {
      throw notAllowed();
    }
  }

  /**
   * The stored key goes only to the URL it was entered for: a new base URL
   * needs the key again, or anyone who may edit the provider could point it at
   * their own server and have Reef send them the key on the next test or chat.
   */
  function requireKeyForNewUrl(row: Row, patch: ProviderPatch) {
    if (patch.baseUrl === undefined || patch.baseUrl === row.baseUrl) return;
    if (row.apiKeySealed && patch.apiKey === undefined) {
      throw new BadRequestError(
        "Enter the API key again to change the base URL: Reef sends a stored key only to the URL it was entered for.",
        { field: "apiKey" },
        "API_KEY_REQUIRED",
      );
    }
  }

  async function find(tx: Tx, access: Access, id: string): Promise<Row> {
    const [row] = await tx
      .select()
      .from(providers)
      .where(and(eq(providers.id, id), eq(providers.workspaceId, access.workspaceId), visibleTo(access)));
    if (!row) throw new NotFoundError("No such provider.");
    return row;
  }

  /** Shared providers need `providers:manage`; a personal one belongs to its owner alone. */
  async function requireManage(access: Access, row: Pick<Row, "ownerUserId">) {
    if (row.ownerUserId === null) await gate.require(access, "providers:manage");
    else if (row.ownerUserId !== access.userId) throw new NotFoundError("No such provider.");
  }

  function resolveInput(input: ProviderInput) {
    const info = PROVIDER_KIND_INFO[input.kind];
    const baseUrl = input.baseUrl ?? info.defaultBaseUrl;
    if (!baseUrl) {
      throw new BadRequestError(
        "An OpenAI-compatible provider needs its base URL.",
        { field: "baseUrl" },
        "VALIDATION_FAILED",
      );
    }
    if (info.keyRequired && !input.apiKey) {
      throw new BadRequestError(`A ${input.kind} provider needs an API key.`, { field: "apiKey" }, "VALIDATION_FAILED");
    }
    return { baseUrl };
  }

  return {
    list(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<ProviderView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      return gate.run(ctx, workspaceId, "providers:read", async (tx, access) => {
        const rows = await tx
          .select()
          .from(providers)
          .where(
            and(
              eq(providers.workspaceId, workspaceId),
              visibleTo(access),
              olderThan(providers.createdAt, providers.id, cursor),
            ),
          )
          .orderBy(desc(providers.createdAt), desc(providers.id))
          .limit(limit + 1);
        return toPage(rows, limit, toView, (r) => ({ createdAt: r.createdAt.toISOString(), id: r.id }));
      });
    },

    get(ctx: RequestContext, workspaceId: string, id: string): Promise<ProviderView> {
      return gate.run(ctx, workspaceId, "providers:read", async (tx, access) => toView(await find(tx, access, id)));
    },

    /**
     * Adds a provider. Without a model list, asks the provider for one (a failure
     * there still saves the provider, with no models, so the user can test and fix it).
     */
    async create(ctx: RequestContext, workspaceId: string, input: ProviderInput): Promise<ProviderView> {
      const action = input.personal ? "providers:personal" : "providers:manage";
      const { baseUrl } = resolveInput(input);
      // Authorise before calling out, so nobody can make Reef probe URLs they may not configure.
      await gate.run(ctx, workspaceId, action, async (tx, access) => {
        if (input.personal && !access.userId) {
          throw new BadRequestError("A personal provider belongs to a person; API keys cannot create one.");
        }
        if (input.personal) await assertPersonalProviderAllowed(tx, workspaceId);
      });
      await requireCallable(baseUrl);
      let models = input.models;
      if (!models) {
        const probed = await probe({ kind: input.kind, baseUrl, apiKey: input.apiKey });
        // A redirect into a private network is refused like a private base URL.
        if (!probed.ok && probed.reason === "not_allowed") throw notAllowed();
        models = probed.ok ? probed.models : [];
      }
      return gate.run(ctx, workspaceId, action, async (tx, access) => {
        // Again under the lock: an agent may have been given shell or files while the provider was probed.
        if (input.personal) await assertPersonalProviderAllowed(tx, workspaceId);
        const id = randomUUID();
        try {
          const [row] = await tx
            .insert(providers)
            .values({
              id,
              workspaceId,
              ownerUserId: input.personal ? access.userId : null,
              name: input.name.trim(),
              kind: input.kind,
              baseUrl,
              apiKeySealed: input.apiKey ? await vault.seal(tx, workspaceId, id, input.apiKey) : null,
              apiKeyLast4: input.apiKey ? last4(input.apiKey) : null,
              models: [...new Set(models)],
              createdBy: access.userId,
            })
            .returning();
          if (!row) throw new Error("provider insert returned nothing");
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "provider.create",
            targetType: "provider",
            targetId: id,
            details: { name: row.name, kind: row.kind, personal: row.ownerUserId !== null, models: row.models.length },
          });
          return toView(row);
        } catch (err) {
          if (isUniqueViolation(err)) throw new ConflictError(`A provider named "${input.name}" already exists.`);
          throw err;
        }
      });
    },

    async update(ctx: RequestContext, workspaceId: string, id: string, patch: ProviderPatch): Promise<ProviderView> {
      if (patch.baseUrl !== undefined) {
        // Authorise and check the key first, then resolve the new host outside any transaction.
        const changed = await gate.run(ctx, workspaceId, "providers:read", async (tx, access) => {
          const row = await find(tx, access, id);
          await requireManage(access, row);
          requireKeyForNewUrl(row, patch);
          return patch.baseUrl !== row.baseUrl;
        });
        if (changed && patch.baseUrl) await requireCallable(patch.baseUrl);
      }
      return gate.run(ctx, workspaceId, "providers:read", async (tx, access) => {
        const row = await find(tx, access, id);
        await requireManage(access, row);
        requireKeyForNewUrl(row, patch);
        const set: Partial<typeof providers.$inferInsert> = { updatedAt: new Date() };
        if (patch.name !== undefined) set.name = patch.name.trim();
        if (patch.baseUrl !== undefined) set.baseUrl = patch.baseUrl;
        if (patch.models !== undefined) set.models = [...new Set(patch.models)];
        if (patch.apiKey !== undefined) {
          set.apiKeySealed = await vault.seal(tx, workspaceId, id, patch.apiKey);
          set.apiKeyLast4 = last4(patch.apiKey);
        }
        try {
          const [updated] = await tx.update(providers).set(set).where(eq(providers.id, id)).returning();
          if (!updated) throw new NotFoundError("No such provider.");
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "provider.update",
            targetType: "provider",
            targetId: id,
            // Which fields changed, never their values: one of them may be the key.
            details: { fields: Object.keys(patch).sort() },
          });
          return toView(updated);
        } catch (err) {
          if (isUniqueViolation(err)) throw new ConflictError(`A provider named "${patch.name}" already exists.`);
          throw err;
        }
      });
    },

    remove(ctx: RequestContext, workspaceId: string, id: string): Promise<void> {
      return gate.run(ctx, workspaceId, "providers:read", async (tx, access) => {
        const row = await find(tx, access, id);
        await requireManage(access, row);
        const [used] = await tx.select({ n: count() }).from(agents).where(eq(agents.providerId, id));
        if (used && used.n > 0) {
          throw new ConflictError(
            `${used.n} agent${used.n === 1 ? " uses" : "s use"} this provider; move ${used.n === 1 ? "it" : "them"} to another provider or delete ${used.n === 1 ? "it" : "them"} first.`,
            { agents: used.n },
          );
        }
        await tx.delete(providers).where(eq(providers.id, id));
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "provider.delete",
          targetType: "provider",
          targetId: id,
          details: { name: row.name, kind: row.kind },
        });
      });
    },

    /**
     * Checks the provider answers with its key (a model-list call), and refreshes
     * its model list when it offers one. Answers with a plain reason on failure.
     */
    async test(ctx: RequestContext, workspaceId: string, id: string): Promise<ProviderTestView> {
      const target = await gate.run(ctx, workspaceId, "providers:read", async (tx, access) => {
        const row = await find(tx, access, id);
        await requireManage(access, row);
        const apiKey = row.apiKeySealed ? await vault.open(tx, workspaceId, id, row.apiKeySealed) : undefined;
        return { kind: row.kind, baseUrl: row.baseUrl, apiKey };
      });
      const result = await probe(target);
      return gate.run(ctx, workspaceId, "providers:read", async (tx, access) => {
        const row = await find(tx, access, id);
        const refresh = result.ok && result.models.length > 0;
        if (refresh)
          await tx.update(providers).set({ models: result.models, updatedAt: new Date() }).where(eq(providers.id, id));
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "provider.test",
          targetType: "provider",
          targetId: id,
          outcome: result.ok ? "success" : "failure",
          details: result.ok
            ? { models: result.models.length, latencyMs: result.latencyMs }
            : { reason: result.reason },
        });
        return result.ok
          ? {
              ok: true,
              reason: null,
              message: `Connected: ${result.models.length} model${result.models.length === 1 ? "" : "s"} available.`,
              models: refresh ? result.models : row.models,
              latencyMs: result.latencyMs,
            }
          : {
              ok: false,
              reason: result.reason,
              message: result.message,
              models: row.models,
              latencyMs: result.latencyMs,
            };
      });
    },
  };
}

export type ProviderService = ReturnType<typeof createProviderService>;

/**
 * The given providers as the workspace's gateway is configured with them:
 * never with their keys. The gateway reaches each through Reef's LLM proxy,
 * which opens the key for each call (see `outbound/llm-proxy.ts`).
 */
export async function providersForGateway(tx: Tx, workspaceId: string, ids: string[]): Promise<GatewayProvider[]> {
  if (ids.length === 0) return [];
  const rows = await tx
    .select()
    .from(providers)
    .where(and(eq(providers.workspaceId, workspaceId), inArray(providers.id, ids)))
    .orderBy(providers.id);
  return rows.map((row) => ({
    id: row.id,
    baseUrl: row.baseUrl,
    api: PROVIDER_KIND_INFO[row.kind].api,
    models: row.models.map((id) => ({ id })),
  }));
}
