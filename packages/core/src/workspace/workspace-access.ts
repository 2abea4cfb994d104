import { AppError, ForbiddenError, NotFoundError } from "@reef/contracts";
import { type Db, isUuid, schema, type Tx, type WorkspaceRole, withScope } from "@reef/db";
import { and, eq } from "drizzle-orm";
import type { AuditService } from "../audit/audit-service.ts";
import type { Action, Permissions } from "../authz/permissions.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext } from "../shared/context.ts";

const { workspaceMembers, workspaces } = schema;

/**
 * A member of a workspace that requires a second factor, on a session signed in
 * without one (API keys are not affected: they are the workspace's own credentials).
 */
function twoFactorRequired(): AppError {
  return new AppError(
    "TWO_FACTOR_REQUIRED",
    "This workspace requires two-factor sign-in: sign out and sign in again with your authenticator app (or set one up in your account).",
  );
}

/** A permission the caller's role lacks, found inside a gated call; the gate audits it. */
export class AccessDeniedError extends ForbiddenError {
  readonly action: Action;
  readonly role: WorkspaceRole;
  constructor(role: WorkspaceRole, action: Action) {
    super(`Your role (${role}) does not allow ${action}.`);
    this.role = role;
    this.action = action;
  }
}

/** The caller's standing in one workspace, established inside the workspace's scope. */
export interface Access {
  workspaceId: string;
  role: WorkspaceRole;
  /** The acting user, when a person (not an API key) is acting. */
  userId: string | null;
}

/** Whose rate-limit budget a call spends: each person and each API key has their own. */
function actorKey(ctx: RequestContext): string {
  const actor = ctx.actor;
  switch (actor.kind) {
    case "user":
      return `user:${actor.userId}`;
    case "api_key":
      return `key:${actor.keyId}`;
    case "system":
      return `system:${actor.name}`;
    default:
      return "anonymous";
  }
}

/**
 * The one gate every workspace-scoped service call passes: resolves the caller's
 * role in the workspace (404 if they have none, so ids do not reveal existence),
 * checks the permission table (403, audited), then runs `fn` in the workspace's
 * RLS scope.
 */
export function createWorkspaceGate(deps: {
  db: Db;
  permissions: Permissions;
  audit: AuditService;
  rateLimits: RateLimits;
}) {
  /** The caller's access, and for a person whether the workspace wants a second factor their session lacks. */
  async function roleIn(
    tx: Tx,
    ctx: RequestContext,
    workspaceId: string,
  ): Promise<(Access & { lacksSecondFactor?: boolean }) | undefined> {
    const actor = ctx.actor;
    if (actor.kind === "api_key") {
      return actor.workspaceId === workspaceId ? { workspaceId, role: actor.role, userId: null } : undefined;
    }
    if (actor.kind !== "user") return undefined;
    // The workspace's two-factor flag comes with the membership read: no extra round trip.
    const [m] = await tx
      .select({ role: workspaceMembers.role, requireTwoFactor: workspaces.requireTwoFactor })
      .from(workspaceMembers)
      .innerJoin(workspaces, eq(workspaces.id, workspaceMembers.workspaceId))
      .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, actor.userId)));
    if (!m) return undefined;
    return {
      workspaceId,
      role: m.role,
      userId: actor.userId,
      ...(m.requireTwoFactor && !actor.secondFactor ? { lacksSecondFactor: true } : {}),
    };
  }

  return {
    /** Inside `run`: throws (and the gate audits) unless the caller's role also allows `action`. */
    async require(access: Access, action: Action): Promise<void> {
      if (!(await deps.permissions.can(access.role, action))) throw new AccessDeniedError(access.role, action);
    },
    /** Inside `run`: whether the caller's role allows `action`. */
    can(access: Access, action: Action): Promise<boolean> {
      return deps.permissions.can(access.role, action);
    },
    async run<T>(
      ctx: RequestContext,
      workspaceId: string,
      action: Action,
      fn: (tx: Tx, access: Access) => Promise<T>,
    ): Promise<T> {
      if (!isUuid(workspaceId)) throw new NotFoundError("No such workspace.");
      const userId = ctx.actor.kind === "user" ? ctx.actor.userId : undefined;
      const scope = { workspaceId, ...(userId ? { userId } : {}) };
      // The budget is spent before the call acts, so a refused call changes nothing
      // and sends nothing, each person and key from their own budget (an outsider
      // only spends theirs). Outside the call's transaction: the limiter takes its
      // own pool connection, and holding one while waiting for another would
      // starve the pool under load. Only a refusal asks who the caller is here:
      // outsiders get their 404, and nothing lands in this workspace's trail.
      await deps.rateLimits.consume(
        action.endsWith(":read") ? "api_read" : "api_write",
        `${workspaceId}:${actorKey(ctx)}`,
        ctx,
        async () => {
          if (!(await withScope(deps.db, scope, (tx) => roleIn(tx, ctx, workspaceId)))) {
            throw new NotFoundError("No such workspace.");
          }
          return workspaceId;
        },
      );
      let denied: { role: WorkspaceRole; action: Action } | undefined;
      const result = await withScope(deps.db, scope, async (tx) => {
        const access = await roleIn(tx, ctx, workspaceId);
        if (!access) throw new NotFoundError("No such workspace.");
        if (access.lacksSecondFactor) throw twoFactorRequired();
        if (!(await deps.permissions.can(access.role, action))) {
          denied = { role: access.role, action };
          return undefined;
        }
        return { value: await fn(tx, access) };
      }).catch((err: unknown) => {
        // A finer permission checked inside `fn` (see `require`): rolled back, then audited below.
        if (!(err instanceof AccessDeniedError)) throw err;
        denied = { role: err.role, action: err.action };
        return undefined;
      });
      if (!result) {
        await deps.audit.recordEvent(ctx, {
          workspaceId,
          action: "access.denied",
          outcome: "denied",
          details: { action: denied?.action ?? action, role: denied?.role },
        });
        throw new ForbiddenError(`Your role (${denied?.role}) does not allow ${denied?.action ?? action}.`);
      }
      return result.value;
    },
  };
}

export type WorkspaceGate = ReturnType<typeof createWorkspaceGate>;
