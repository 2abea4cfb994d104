import { ConflictError, ForbiddenError, NotFoundError } from "@reef/contracts";
import { type Db, extendScope, schema, type WorkspaceRole, withScope } from "@reef/db";
import { and, desc, eq, isNull } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import { roleAtMost } from "../authz/permissions.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import { hashToken, newToken } from "../shared/tokens.ts";
import type { WorkspaceGate } from "./workspace-access.ts";

const { invites, workspaceMembers, users, workspaces } = schema;

export interface InviteView {
  id: string;
  workspaceId: string;
  email: string;
  role: WorkspaceRole;
  status: "pending" | "accepted" | "revoked" | "expired";
  expiresAt: string;
  createdAt: string;
}

function toView(i: typeof invites.$inferSelect): InviteView {
  const status = i.acceptedAt
    ? "accepted"
    : i.revokedAt
      ? "revoked"
      : i.expiresAt.getTime() <= Date.now()
        ? "expired"
        : "pending";
  return {
    id: i.id,
    workspaceId: i.workspaceId,
    email: i.email,
    role: i.role,
    status,
    expiresAt: i.expiresAt.toISOString(),
    createdAt: i.createdAt.toISOString(),
  };
}

export interface InviteServiceDeps {
  db: Db;
  /**
   * The mailer in force (platform settings can change it at any time). With one the
   * link goes to the invitee by email; without one it is returned to the inviter.
   */
  mailer: () => Promise<Mailer | undefined>;
  gate: WorkspaceGate;
  rateLimits: RateLimits;
  publicUrl: () => Promise<string>;
  ttlMs: number;
}

export function createInviteService(deps: InviteServiceDeps) {
  const { db, gate } = deps;
  return {
    /**
     * Invites someone by email with a role no higher than the inviter's. Returns the
     * single-use token and link once; only its hash is stored.
     */
    async create(ctx: RequestContext, workspaceId: string, input: { email: string; role: WorkspaceRole }) {
      // Read before the transaction: the settings come over their own connection.
      const [mailer, publicUrl] = await Promise.all([deps.mailer(), deps.publicUrl()]);
      return gate.run(ctx, workspaceId, "members:invite", async (tx, access) => {
        if (!roleAtMost(input.role, access.role))
          throw new ForbiddenError(`You cannot invite a ${input.role}: it is above your own role (${access.role}).`);
        const token = newToken("ri_");
        const [invite] = await tx
          .insert(invites)
          .values({
            workspaceId,
            email: input.email.trim(),
            role: input.role,
            tokenHash: hashToken(token),
            invitedBy: access.userId,
            expiresAt: new Date(Date.now() + deps.ttlMs),
          })
          .returning();
        if (!invite) throw new Error("invite insert returned nothing");
        const url = `${publicUrl.replace(/\/$/, "")}/invites/${token}`;
        if (mailer) {
          const [ws] = await tx
            .select({ name: workspaces.name })
            .from(workspaces)
            .where(eq(workspaces.id, workspaceId));
          const name = ws?.name ?? "a workspace";
          // Sent before commit: if the mail server refuses, no undelivered invite is left behind.
          await mailer.send({
            to: invite.email,
            subject: `You are invited to ${name} on Reef`,
            text: `You have been invited to join "${name}" as ${invite.role}.\n\nAccept the invite (valid until ${invite.expiresAt.toUTCString()}):\n${url}\n\nIf you did not expect this, ignore this email.\n`,
          });
        }
        await appendAudit(tx, ctx, {
          workspaceId,
          action: "invite.create",
          targetType: "invite",
          targetId: invite.id,
          details: { email: invite.email, role: invite.role, delivery: mailer ? "email" : "link" },
        });
        return mailer
          ? { invite: toView(invite), delivery: "email" as const }
          : { invite: toView(invite), delivery: "link" as const, token, url };
      });
    },

    list(
      ctx: RequestContext,
      workspaceId: string,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<InviteView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      return gate.run(ctx, workspaceId, "members:invite", async (tx) => {
        const rows = await tx
          .select()
          .from(invites)
          .where(and(eq(invites.workspaceId, workspaceId), olderThan(invites.createdAt, invites.id, cursor)))
          .orderBy(desc(invites.createdAt), desc(invites.id))
          .limit(limit + 1);
        return toPage(rows, limit, toView, (r) => ({ createdAt: r.createdAt.toISOString(), id: r.id }));
      });
    },

    revoke(ctx: RequestContext, workspaceId: string, inviteId: string): Promise<void> {
      return gate.run(ctx, workspaceId, "members:invite", async (tx) => {
        const done = await tx
          .update(invites)
          .set({ revokedAt: new Date() })
          .where(
            and(
              eq(invites.id, inviteId),
              eq(invites.workspaceId, workspaceId),
              isNull(invites.acceptedAt),
              isNull(invites.revokedAt),
            ),
          )
          .returning({ id: invites.id });
        if (done.length === 0) throw new NotFoundError("No such pending invite.");
        await appendAudit(tx, ctx, { workspaceId, action: "invite.revoke", targetType: "invite", targetId: inviteId });
      });
    },

    /** Accepts an invite for the signed-in user, whose email must be the invited one. */
    async accept(ctx: RequestContext, token: string) {
      if (ctx.actor.kind !== "user") throw new ForbiddenError("Sign in as the invited person to accept an invite.");
      const userId = ctx.actor.userId;
      await deps.rateLimits.consume("invite_accept", ctx.ip ?? "unknown", ctx);
      await deps.rateLimits.consume("invite_accept", `user:${userId}`, ctx);
      const tokenHash = hashToken(token);
      return withScope(db, { userId, lookup: { invite: tokenHash } }, async (tx) => {
        const [invite] = await tx.select().from(invites).where(eq(invites.tokenHash, tokenHash));
        if (!invite || invite.revokedAt) throw new NotFoundError("This invite link is not valid.");
        if (invite.acceptedAt) throw new ConflictError("This invite has already been used.");
        if (invite.expiresAt.getTime() <= Date.now())
          throw new ConflictError("This invite has expired. Ask for a new one.");
        const [user] = await tx.select().from(users).where(eq(users.id, userId));
        if (!user) throw new NotFoundError("No such user.");
        if (user.email.toLowerCase() !== invite.email.toLowerCase()) {
          // Do not name the invited address: the caller is not that person.
          throw new ForbiddenError(
            "This invite was sent to a different email address. Sign in with that address to accept it.",
          );
        }
        await extendScope(tx, { workspaceId: invite.workspaceId });
        const [existing] = await tx
          .select()
          .from(workspaceMembers)
          .where(and(eq(workspaceMembers.workspaceId, invite.workspaceId), eq(workspaceMembers.userId, userId)));
        if (existing) throw new ConflictError("You are already a member of this workspace.");
        await tx.insert(workspaceMembers).values({ workspaceId: invite.workspaceId, userId, role: invite.role });
        await tx.update(invites).set({ acceptedAt: new Date(), acceptedBy: userId }).where(eq(invites.id, invite.id));
        const [ws] = await tx.select().from(workspaces).where(eq(workspaces.id, invite.workspaceId));
        await appendAudit(tx, ctx, {
          workspaceId: invite.workspaceId,
          action: "invite.accept",
          targetType: "invite",
          targetId: invite.id,
          details: { role: invite.role },
        });
        return { workspace: { id: invite.workspaceId, name: ws?.name ?? "", role: invite.role } };
      });
    },
  };
}

export type InviteService = ReturnType<typeof createInviteService>;
