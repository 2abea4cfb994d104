import {
  AppError,
  BadRequestError,
  ConflictError,
  ForbiddenError,
  LimitReachedError,
  NotFoundError,
} from "@reef/contracts";
import { type Db, schema, type Tx, type WorkspaceRole, withScope } from "@reef/db";
import type { JsonObject } from "@reef/runtime";
import { and, asc, count, eq, gt, isNull } from "drizzle-orm";
import { revokeKeysOfCreator } from "../api-keys/api-key-service.ts";
import { appendAudit } from "../audit/audit-service.ts";
import { roleAtMost } from "../authz/permissions.ts";
import { lockWorkspacesOf } from "../runtime/runtime-capacity.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";
import type { Access, WorkspaceGate } from "./workspace-access.ts";

const { workspaces, workspaceMembers, users, runtimes, agents, chatSessions } = schema;

export interface WorkspaceView {
  id: string;
  name: string;
  personal: boolean;
  role: WorkspaceRole;
  defaultAgentId: string | null;
  /** Members must have signed in with a second factor to use the workspace (API keys are not affected). */
  requireTwoFactor: boolean;
  createdAt: string;
}

/** What deleting a workspace deletes, for the confirmation people read first. */
export interface WorkspaceImpact {
  agents: number;
  sessions: number;
  members: number;
}

export interface MemberView {
  userId: string;
  email: string;
  name: string;
  role: WorkspaceRole;
  joinedAt: string;
}

export interface ListQuery {
  cursor?: string | undefined;
  limit?: number | undefined;
}

async function ownerCount(tx: Tx, workspaceId: string): Promise<number> {
  const [row] = await tx
    .select({ n: count() })
    .from(workspaceMembers)
    .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.role, "owner")));
  return row?.n ?? 0;
}

function toView(ws: typeof workspaces.$inferSelect, role: WorkspaceRole): WorkspaceView {
  return {
    id: ws.id,
    name: ws.name,
    personal: ws.personal,
    role,
    defaultAgentId: ws.defaultAgentId,
    requireTwoFactor: ws.requireTwoFactor,
    createdAt: ws.createdAt.toISOString(),
  };
}

function assertCanGrant(access: Access, role: WorkspaceRole): void {
  if (!roleAtMost(role, access.role))
    throw new ForbiddenError(`You cannot grant the ${role} role: it is above your own (${access.role}).`);
}

export function createWorkspaceService(deps: {
  db: Db;
  gate: WorkspaceGate;
  /** Removes a deleted workspace's runtime and its data (the runtime manager's `destroy`). */
  destroyRuntime?: (workspaceId: string, state: JsonObject) => Promise<void>;
  /** How many workspaces one person may own (0: no limit), read at each creation; no limit when absent. */
  maxWorkspacesPerUser?: () => Promise<number>;
}) {
  const { db, gate } = deps;

  async function memberRow(tx: Tx, workspaceId: string, userId: string) {
    const [m] = await tx
      .select()
      .from(workspaceMembers)
      .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)));
    if (!m) throw new NotFoundError("No such member.");
    return m;
  }

  function get(ctx: RequestContext, workspaceId: string): Promise<WorkspaceView> {
    return gate.run(ctx, workspaceId, "workspace:read", async (tx, access) => {
      const [ws] = await tx.select().from(workspaces).where(eq(workspaces.id, workspaceId));
      if (!ws) throw new NotFoundError("No such workspace.");
      return toView(ws, access.role);
    });
  }

  return {
    async create(ctx: RequestContext, input: { name: string }): Promise<WorkspaceView> {
      if (ctx.actor.kind !== "user") throw new ForbiddenError("Only people can create workspaces.");
      const userId = ctx.actor.userId;
      const id = crypto.randomUUID();
      const max = (await deps.maxWorkspacesPerUser?.()) ?? 0;
      return withScope(db, { workspaceId: id, userId }, async (tx) => {
        if (max > 0) {
          // Under a per-person lock, so concurrent creations (any replica) cannot overshoot.
          await lockWorkspacesOf(tx, userId);
          const [owned] = await tx
            .select({ n: count() })
            .from(workspaceMembers)
            .where(and(eq(workspaceMembers.userId, userId), eq(workspaceMembers.role, "owner")));
          const used = owned?.n ?? 0;
          if (used >= max) {
            throw new LimitReachedError(
              `You already own ${used} workspaces, the most Reef allows per person (${max}). ` +
                "Delete one you no longer need, or ask an administrator to raise the limit.",
              { limit: "workspacesPerUser", max, used },
            );
          }
        }
        const [ws] = await tx.insert(workspaces).values({ id, name: input.name.trim() }).returning();
        if (!ws) throw new Error("workspace insert returned nothing");
        await tx.insert(workspaceMembers).values({ workspaceId: id, userId, role: "owner" });
        await appendAudit(tx, ctx, {
          workspaceId: id,
          action: "workspace.create",
          targetType: "workspace",
          targetId: id,
          details: { name: ws.name },
        });
        return toView(ws, "owner");
      });
    },

    /** The caller's workspaces (an API key sees only its own). */
    async list(ctx: RequestContext, q: ListQuery): Promise<Page<WorkspaceView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { id: "uuid" });
      if (ctx.actor.kind === "api_key") {
        const ws = await get(ctx, ctx.actor.workspaceId);
        return { items: cursor ? [] : [ws], nextCursor: null };
      }
      if (ctx.actor.kind !== "user") return { items: [], nextCursor: null };
      const userId = ctx.actor.userId;
      return withScope(db, { userId }, async (tx) => {
        const rows = await tx
          .select({ ws: workspaces, role: workspaceMembers.role })
          .from(workspaceMembers)
          .innerJoin(workspaces, eq(workspaces.id, workspaceMembers.workspaceId))
          .where(and(eq(workspaceMembers.userId, userId), cursor ? gt(workspaces.id, cursor.id) : undefined))
          .orderBy(asc(workspaces.id))
          .limit(limit + 1);
        return toPage(
          rows,
          limit,
          (r) => toView(r.ws, r.role),
          (r) => ({ id: r.ws.id }),
        );
      });
    },

    get,

    /**
     * Renames the workspace, sets the agent people land on in chat (null: the
     * first agent) and/or requires members to sign in with a second factor.
     */
    update(
      ctx: RequestContext,
      workspaceId: string,
      input: {
        name?: string | undefined;
        defaultAgentId?: string | null | undefined;
        requireTwoFactor?: boolean | undefined;
      },
    ): Promise<WorkspaceView> {
      return gate.run(ctx, workspaceId, "workspace:update", async (tx, access) => {
        const [before] = await tx.select().from(workspaces).where(eq(workspaces.id, workspaceId));
        if (!before) throw new NotFoundError("No such workspace.");
        const set: Partial<typeof workspaces.$inferInsert> = { updatedAt: new Date() };
        if (input.name !== undefined) set.name = input.name.trim();
        if (input.defaultAgentId !== undefined && input.defaultAgentId !== null) {
          // Only a shared agent of this workspace: a personal one is invisible to everyone but its owner.
          const [agent] = await tx
            .select({ id: agents.id })
            .from(agents)
            .where(
              and(eq(agents.id, input.defaultAgentId), eq(agents.workspaceId, workspaceId), isNull(agents.ownerUserId)),
            );
          if (!agent) {
            throw new BadRequestError(
              "Pick one of this workspace's shared agents as the default.",
              [{ in: "body", path: "defaultAgentId", message: "not a shared agent of this workspace" }],
              "VALIDATION_FAILED",
            );
          }
        }
        if (input.defaultAgentId !== undefined) set.defaultAgentId = input.defaultAgentId;
        if (input.requireTwoFactor !== undefined) {
          // Turning it on from a session without a second factor would shut the person doing it out at once.
          if (input.requireTwoFactor && ctx.actor.kind === "user" && !ctx.actor.secondFactor) {
            throw new AppError(
              "TWO_FACTOR_REQUIRED",
              "Sign in with two-factor first: requiring it here would lock you out of this workspace.",
            );
          }
          set.requireTwoFactor = input.requireTwoFactor;
        }
        const [ws] = await tx.update(workspaces).set(set).where(eq(workspaces.id, workspaceId)).returning();
        if (!ws) throw new NotFoundError("No such workspace.");
        if (input.name !== undefined && ws.name !== before.name) {
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "workspace.rename",
            targetType: "workspace",
            targetId: workspaceId,
            details: { from: before.name, to: ws.name },
          });
        }
        if (input.defaultAgentId !== undefined && ws.defaultAgentId !== before.defaultAgentId) {
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "workspace.default_agent",
            targetType: "workspace",
            targetId: workspaceId,
            details: { from: before.defaultAgentId, to: ws.defaultAgentId },
          });
        }
        if (input.requireTwoFactor !== undefined && ws.requireTwoFactor !== before.requireTwoFactor) {
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "workspace.require_two_factor",
            targetType: "workspace",
            targetId: workspaceId,
            details: { from: before.requireTwoFactor, to: ws.requireTwoFactor },
          });
        }
        return toView(ws, access.role);
      });
    },

    /** What deleting the workspace deletes (owners: those who may delete it). */
    impact(ctx: RequestContext, workspaceId: string): Promise<WorkspaceImpact> {
      return gate.run(ctx, workspaceId, "workspace:delete", async (tx) => {
        const [a] = await tx.select({ n: count() }).from(agents).where(eq(agents.workspaceId, workspaceId));
        const [s] = await tx.select({ n: count() }).from(chatSessions).where(eq(chatSessions.workspaceId, workspaceId));
        const [m] = await tx
          .select({ n: count() })
          .from(workspaceMembers)
          .where(eq(workspaceMembers.workspaceId, workspaceId));
        return { agents: a?.n ?? 0, sessions: s?.n ?? 0, members: m?.n ?? 0 };
      });
    },

    /**
     * Deletes a workspace and everything in it, its runtime and the runtime's data
     * included. The caller must type its exact name.
     */
    delete(ctx: RequestContext, workspaceId: string, input: { confirmName: string }): Promise<void> {
      return gate
        .run(ctx, workspaceId, "workspace:delete", async (tx) => {
          const [ws] = await tx.select().from(workspaces).where(eq(workspaces.id, workspaceId));
          if (!ws) throw new NotFoundError("No such workspace.");
          if (input.confirmName !== ws.name) {
            throw new BadRequestError(
              "To delete this workspace, confirm with its exact name.",
              [{ in: "body", path: "confirmName", message: "does not match the workspace name" }],
              "VALIDATION_FAILED",
            );
          }
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "workspace.delete",
            targetType: "workspace",
            targetId: workspaceId,
            details: { name: ws.name },
          });
          // Read the runtime's handle before its row goes with the workspace's.
          const [runtime] = await tx
            .select({ handle: runtimes.handle })
            .from(runtimes)
            .where(eq(runtimes.workspaceId, workspaceId));
          await tx.delete(workspaces).where(eq(workspaces.id, workspaceId));
          return runtime?.handle ?? null;
        })
        .then(async (handle) => {
          // After commit: the gateway stops and its data (transcripts, the config
          // holding provider keys) is removed for good, even if it was stopped.
          await deps.destroyRuntime?.(workspaceId, (handle ?? {}) as JsonObject);
        });
    },

    listMembers(ctx: RequestContext, workspaceId: string, q: ListQuery): Promise<Page<MemberView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { userId: "uuid" });
      return gate.run(ctx, workspaceId, "members:read", async (tx) => {
        const rows = await tx
          .select({ m: workspaceMembers, u: { email: users.email, name: users.name } })
          .from(workspaceMembers)
          .innerJoin(users, eq(users.id, workspaceMembers.userId))
          .where(
            and(
              eq(workspaceMembers.workspaceId, workspaceId),
              cursor ? gt(workspaceMembers.userId, cursor.userId) : undefined,
            ),
          )
          .orderBy(asc(workspaceMembers.userId))
          .limit(limit + 1);
        return toPage(
          rows,
          limit,
          (r) => ({
            userId: r.m.userId,
            email: r.u.email,
            name: r.u.name,
            role: r.m.role,
            joinedAt: r.m.createdAt.toISOString(),
          }),
          (r) => ({ userId: r.m.userId }),
        );
      });
    },

    /** Changes a member's role: never above the caller's own, never leaving the workspace without an owner. */
    updateMember(
      ctx: RequestContext,
      workspaceId: string,
      userId: string,
      input: { role: WorkspaceRole },
    ): Promise<MemberView> {
      return gate.run(ctx, workspaceId, "members:update", async (tx, access) => {
        const m = await memberRow(tx, workspaceId, userId);
        assertCanGrant(access, input.role);
        if (!roleAtMost(m.role, access.role)) throw new ForbiddenError(`You cannot change the role of a ${m.role}.`);
        if (m.role === "owner" && input.role !== "owner" && (await ownerCount(tx, workspaceId)) <= 1) {
          throw new ConflictError("This is the last owner. Make someone else an owner first.");
        }
        const [updated] = await tx
          .update(workspaceMembers)
          .set({ role: input.role, updatedAt: new Date() })
          .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)))
          .returning();
        const [u] = await tx.select().from(users).where(eq(users.id, userId));
        if (!updated || !u) throw new NotFoundError("No such member.");
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "member.role_change",
          targetType: "user",
          targetId: userId,
          details: { from: m.role, to: input.role },
        });
        return { userId, email: u.email, name: u.name, role: updated.role, joinedAt: updated.createdAt.toISOString() };
      });
    },

    /** Removes a member (or lets a member leave); the last owner stays. */
    async removeMember(ctx: RequestContext, workspaceId: string, userId: string): Promise<void> {
      const self = ctx.actor.kind === "user" && ctx.actor.userId === userId;
      return gate.run(ctx, workspaceId, self ? "workspace:read" : "members:remove", async (tx, access) => {
        const m = await memberRow(tx, workspaceId, userId);
        if (!self && !roleAtMost(m.role, access.role)) throw new ForbiddenError(`You cannot remove a ${m.role}.`);
        if (m.role === "owner" && (await ownerCount(tx, workspaceId)) <= 1) {
          throw new ConflictError("This is the last owner. Make someone else an owner first, or delete the workspace.");
        }
        await tx
          .delete(workspaceMembers)
          .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)));
        await revokeKeysOfCreator(tx, ctx, workspaceId, userId);
        await appendAudit(tx, ctx, {
          workspaceId,
          action: self ? "member.leave" : "member.remove",
          targetType: "user",
          targetId: userId,
          details: { role: m.role },
        });
      });
    },
  };
}

export type WorkspaceService = ReturnType<typeof createWorkspaceService>;
