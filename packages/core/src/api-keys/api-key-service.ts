import { ForbiddenError, NotFoundError } from "@reef/contracts";
import { type Db, schema, type Tx, type WorkspaceRole, withScope } from "@reef/db";
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import { roleAtMost } from "../authz/permissions.ts";
import type { Actor, RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import { hashToken, newToken } from "../shared/tokens.ts";
import type { WorkspaceGate } from "../workspace/workspace-access.ts";

const { apiKeys } = schema;
const KEY_PREFIX = "reef_";
const TOUCH_EVERY_MS = 60_000;

export interface ApiKeyView {
  id: string;
  name: string;
  role: WorkspaceRole;
  /** The key's first characters, to tell keys apart; never the key. */
  prefix: string;
  createdBy: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  createdAt: string;
}

function toView(k: typeof apiKeys.$inferSelect): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    role: k.role,
    prefix: k.prefix,
    createdBy: k.createdBy,
    expiresAt: k.expiresAt?.toISOString() ?? null,
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    createdAt: k.createdAt.toISOString(),
  };
}

/**
 * Revokes every live key `userId` created in the workspace, audited, inside the
 * caller's transaction: called when they leave or are removed, so a key never
 * outlives its creator's membership (and a later rejoin does not revive it).
 */
export async function revokeKeysOfCreator(
  tx: Tx,
  ctx: RequestContext,
  workspaceId: string,
  userId: string,
): Promise<void> {
  const revoked = await tx
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.workspaceId, workspaceId), eq(apiKeys.createdBy, userId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id, name: apiKeys.name });
  for (const key of revoked) {
    await appendAudit(tx, ctx, {
      workspaceId,
      action: "api_key.revoke",
      targetType: "api_key",
      targetId: key.id,
      details: { name: key.name, reason: "creator_left_workspace" },
    });
  }
}

export function createApiKeyService(deps: { db: Db; gate: WorkspaceGate }) {
  const { db, gate } = deps;
  return {
    /** Creates a key with a role no higher than its creator's; the secret is returned only here. */
    create(
      ctx: RequestContext,
      workspaceId: string,
      input: { name: string; role: WorkspaceRole; expiresAt?: Date | undefined },
    ) {
      return gate.run(ctx, workspaceId, "api_keys:create", async (tx, access) => {
        if (!access.userId) throw new ForbiddenError("API keys cannot create API keys; sign in as a person.");
        if (!roleAtMost(input.role, access.role))
          throw new ForbiddenError(
            `You cannot create a ${input.role} key: it is above your own role (${access.role}).`,
          );
        if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
          throw new ForbiddenError("The expiry date must be in the future.");
        }
        const key = newToken(KEY_PREFIX);
        const [row] = await tx
          .insert(apiKeys)
          .values({
            workspaceId,
            name: input.name.trim(),
            role: input.role,
            prefix: key.slice(0, KEY_PREFIX.length + 6),
            keyHash: hashToken(key),
            createdBy: access.userId,
            expiresAt: input.expiresAt ?? null,
          })
          .returning();
        if (!row) throw new Error("api key insert returned nothing");
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "api_key.create",
          targetType: "api_key",
          targetId: row.id,
          details: { name: row.name, role: row.role },
        });
        return { apiKey: toView(row), key };
      });
    },

    list(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<ApiKeyView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      return gate.run(ctx, workspaceId, "api_keys:read", async (tx) => {
        const rows = await tx
          .select()
          .from(apiKeys)
          .where(and(eq(apiKeys.workspaceId, workspaceId), olderThan(apiKeys.createdAt, apiKeys.id, cursor)))
          .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
          .limit(limit + 1);
        return toPage(rows, limit, toView, (r) => ({ createdAt: r.createdAt.toISOString(), id: r.id }));
      });
    },

    revoke(ctx: RequestContext, workspaceId: string, keyId: string): Promise<void> {
      return gate.run(ctx, workspaceId, "api_keys:revoke", async (tx) => {
        const done = await tx
          .update(apiKeys)
          .set({ revokedAt: new Date() })
          .where(and(eq(apiKeys.id, keyId), eq(apiKeys.workspaceId, workspaceId), isNull(apiKeys.revokedAt)))
          .returning({ id: apiKeys.id });
        if (done.length === 0) throw new NotFoundError("No such active API key.");
        await appendAudit(tx, ctx, { workspaceId, action: "api_key.revoke", targetType: "api_key", targetId: keyId });
      });
    },

    /**
     * Resolves a bearer key to an actor, or undefined when it is unknown, revoked,
     * expired, or its creator is no longer a member of its workspace (or was
     * deactivated or deleted). The actor's role is the lower of the key's own and
     * its creator's current role, so a demotion takes effect on the next request.
     * One round trip (`reef_api_key_actor`). Records first use in the audit log.
     */
    async authenticate(
      key: string,
      ctx: Omit<RequestContext, "actor">,
    ): Promise<Extract<Actor, { kind: "api_key" }> | undefined> {
      if (!key.startsWith(KEY_PREFIX) || key.length > 100) return undefined;
      const { rows } = await db.execute<{
        o_key_id: string;
        o_workspace_id: string;
        o_role: WorkspaceRole;
        o_last_used_at: string | null;
      }>(sql`select * from reef_api_key_actor(${hashToken(key)})`);
      const row = rows[0];
      if (!row) return undefined;
      const actor = {
        kind: "api_key" as const,
        keyId: row.o_key_id,
        workspaceId: row.o_workspace_id,
        role: row.o_role,
      };
      const lastUsed = row.o_last_used_at ? new Date(row.o_last_used_at).getTime() : undefined;
      if (lastUsed === undefined || Date.now() - lastUsed > TOUCH_EVERY_MS) {
        await withScope(db, { workspaceId: row.o_workspace_id }, async (tx) => {
          await tx.update(apiKeys).set({ lastUsedAt: new Date() }).where(eq(apiKeys.id, row.o_key_id));
          if (lastUsed === undefined) {
            await appendAudit(
              tx,
              { ...ctx, actor },
              {
                workspaceId: row.o_workspace_id,
                action: "api_key.first_use",
                targetType: "api_key",
                targetId: row.o_key_id,
              },
            );
          }
        });
      }
      return actor;
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
