import { BadRequestError, ForbiddenError, NotFoundError } from "@reef/contracts";
import { type Db, schema, withScope } from "@reef/db";
import { and, asc, eq, gt, ilike, isNull, or, sql } from "drizzle-orm";
import { type AuditEntry, type AuditQuery, appendAudit, queryAudit } from "../audit/audit-service.ts";
import type { RequestContext, UserActor } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";

const { users, sessions, userTotp, workspaces, workspaceMembers } = schema;

export interface AdminUserView {
  id: string;
  email: string;
  name: string;
  platformRole: "super_admin" | "user";
  deactivated: boolean;
  createdAt: string;
  workspaceCount: number;
  /** A confirmed authenticator (two-factor on). */
  twoFactorEnabled: boolean;
}

export interface AdminWorkspaceView {
  id: string;
  name: string;
  personal: boolean;
  createdAt: string;
  memberCount: number;
  owners: { userId: string; email: string }[];
  /** Its own monthly token budget; null: the platform default applies. */
  monthlyTokenBudget: number | null;
}

type AdminContext = RequestContext & { actor: UserActor };

/** Throws Forbidden unless a platform operator (super_admin) is acting. */
export function requireOperator(ctx: RequestContext): asserts ctx is AdminContext {
  if (ctx.actor.kind !== "user" || ctx.actor.platformRole !== "super_admin") {
    throw new ForbiddenError("Only platform operators can do this.");
  }
}

/**
 * Operator views: users, workspaces with membership and counts, and the
 * platform audit trail. Runs in platform scope, which RLS grants on metadata
 * tables only; workspace content stays out of reach.
 */
export function createAdminService(deps: { db: Db }) {
  const { db } = deps;
  const platform = <T>(ctx: AdminContext, fn: Parameters<typeof withScope<T>>[2]) =>
    withScope(db, { platform: true, userId: ctx.actor.userId }, fn);

  return {
    listUsers(
      ctx: RequestContext,
      q: { q?: string | undefined; cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<AdminUserView>> {
      requireOperator(ctx);
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { email: "text", id: "uuid" });
      const search = q.q?.trim();
      return platform(ctx, async (tx) => {
        const pattern = search ? `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : undefined;
        const rows = await tx
          .select({
            u: users,
            workspaceCount: sql<number>`(select count(*)::int from workspace_members m where m.user_id = ${users.id})`,
            twoFactorConfirmedAt: userTotp.confirmedAt,
          })
          .from(users)
          .leftJoin(userTotp, eq(userTotp.userId, users.id))
          .where(
            and(
              pattern ? or(ilike(users.email, pattern), ilike(users.name, pattern)) : undefined,
              cursor
                ? or(
                    gt(sql`lower(${users.email})`, cursor.email),
                    and(eq(sql`lower(${users.email})`, cursor.email), gt(users.id, cursor.id)),
                  )
                : undefined,
            ),
          )
          .orderBy(asc(sql`lower(${users.email})`), asc(users.id))
          .limit(limit + 1);
        return toPage(
          rows,
          limit,
          (r) => ({
            id: r.u.id,
            email: r.u.email,
            name: r.u.name,
            platformRole: r.u.platformRole,
            deactivated: r.u.deactivatedAt !== null,
            createdAt: r.u.createdAt.toISOString(),
            workspaceCount: r.workspaceCount,
            twoFactorEnabled: r.twoFactorConfirmedAt !== null,
          }),
          (r) => ({ email: r.u.email.toLowerCase(), id: r.u.id }),
        );
      });
    },

    /** Changes a user's platform role or deactivates them (never yourself). Deactivation ends their sessions at once. */
    updateUser(
      ctx: RequestContext,
      userId: string,
      input: { role?: "super_admin" | "user" | undefined; deactivated?: boolean | undefined },
    ) {
      requireOperator(ctx);
      if (userId === ctx.actor.userId)
        throw new BadRequestError("You cannot change your own platform role or deactivate yourself.");
      return platform(ctx, async (tx) => {
        const [before] = await tx.select().from(users).where(eq(users.id, userId));
        if (!before) throw new NotFoundError("No such user.");
        const set: Partial<typeof users.$inferInsert> = { updatedAt: new Date() };
        if (input.role) set.platformRole = input.role;
        if (input.deactivated !== undefined)
          set.deactivatedAt = input.deactivated ? (before.deactivatedAt ?? new Date()) : null;
        const [after] = await tx.update(users).set(set).where(eq(users.id, userId)).returning();
        if (!after) throw new NotFoundError("No such user.");
        if (input.deactivated) {
          await tx
            .update(sessions)
            .set({ revokedAt: new Date() })
            .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)));
        }
        if (input.role && input.role !== before.platformRole) {
          await appendAudit(tx, ctx, {
            workspaceId: null,
            action: "user.platform_role_change",
            targetType: "user",
            targetId: userId,
            details: { from: before.platformRole, to: input.role },
          });
        }
        if (input.deactivated !== undefined && input.deactivated !== (before.deactivatedAt !== null)) {
          await appendAudit(tx, ctx, {
            workspaceId: null,
            action: input.deactivated ? "user.deactivate" : "user.reactivate",
            targetType: "user",
            targetId: userId,
          });
        }
        const [totp] = await tx
          .select({ confirmedAt: userTotp.confirmedAt })
          .from(userTotp)
          .where(eq(userTotp.userId, userId));
        return {
          id: after.id,
          email: after.email,
          name: after.name,
          platformRole: after.platformRole,
          deactivated: after.deactivatedAt !== null,
          createdAt: after.createdAt.toISOString(),
          twoFactorEnabled: totp?.confirmedAt != null,
        };
      });
    },

    listWorkspaces(
      ctx: RequestContext,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<AdminWorkspaceView>> {
      requireOperator(ctx);
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { id: "uuid" });
      return platform(ctx, async (tx) => {
        const rows = await tx
          .select()
          .from(workspaces)
          .where(cursor ? gt(workspaces.id, cursor.id) : undefined)
          .orderBy(asc(workspaces.id))
          .limit(limit + 1);
        const ids = rows.slice(0, limit).map((w) => w.id);
        const members = ids.length
          ? await tx
              .select({
                workspaceId: workspaceMembers.workspaceId,
                userId: workspaceMembers.userId,
                role: workspaceMembers.role,
                email: users.email,
              })
              .from(workspaceMembers)
              .innerJoin(users, eq(users.id, workspaceMembers.userId))
              .where(sql`${workspaceMembers.workspaceId} in ${ids}`)
          : [];
        return toPage(
          rows,
          limit,
          (w) => {
            const mine = members.filter((m) => m.workspaceId === w.id);
            return {
              id: w.id,
              name: w.name,
              personal: w.personal,
              createdAt: w.createdAt.toISOString(),
              memberCount: mine.length,
              owners: mine.filter((m) => m.role === "owner").map((m) => ({ userId: m.userId, email: m.email })),
              monthlyTokenBudget: w.monthlyTokenBudget,
            };
          },
          (w) => ({ id: w.id }),
        );
      });
    },

    /**
     * Sets a workspace's monthly token budget (null: the platform default),
     * enforced at the LLM proxy from its next call. Audited in the platform
     * trail and in the workspace's own, so its admins see who changed it.
     */
    updateWorkspace(
      ctx: RequestContext,
      workspaceId: string,
      input: { monthlyTokenBudget: number | null },
    ): Promise<{ id: string; monthlyTokenBudget: number | null }> {
      requireOperator(ctx);
      // The workspace's own scope too: RLS lets a workspace row change only there.
      return withScope(db, { platform: true, userId: ctx.actor.userId, workspaceId }, async (tx) => {
        const [before] = await tx.select().from(workspaces).where(eq(workspaces.id, workspaceId));
        if (!before) throw new NotFoundError("No such workspace.");
        const [after] = await tx
          .update(workspaces)
          .set({ monthlyTokenBudget: input.monthlyTokenBudget, updatedAt: new Date() })
          .where(eq(workspaces.id, workspaceId))
          .returning();
        if (!after) throw new NotFoundError("No such workspace.");
        const event = {
          action: "workspace.token_budget_set",
          targetType: "workspace",
          targetId: workspaceId,
          details: { from: before.monthlyTokenBudget, to: after.monthlyTokenBudget },
        };
        await appendAudit(tx, ctx, { workspaceId: null, ...event });
        await appendAudit(tx, ctx, { workspaceId, ...event });
        return { id: after.id, monthlyTokenBudget: after.monthlyTokenBudget };
      });
    },

    listPlatformAudit(ctx: RequestContext, q: AuditQuery): Promise<Page<AuditEntry>> {
      requireOperator(ctx);
      return platform(ctx, (tx) => queryAudit(tx, null, q));
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
