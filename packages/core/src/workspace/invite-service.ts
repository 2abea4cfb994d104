import { ConflictError, ForbiddenError, NotFoundError } from "@reef/contracts";
import { type Db, extendScope, schema, type Tx, type WorkspaceRole, withScope } from "@reef/db";
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

type InviteRow = typeof invites.$inferSelect;

function toView(i: InviteRow): InviteView {
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

/** What an invite link shows before anyone signs in (see invitePreviewSchema). */
export interface InvitePreview {
  workspaceName: string;
  inviterName: string;
  role: WorkspaceRole;
  email: string;
  expiresAt: string;
}

export function createInviteService(deps: InviteServiceDeps) {
  const { db, gate } = deps;

  async function sendInviteMail(
    tx: Tx,
    mailer: Mailer,
    invite: typeof invites.$inferSelect,
    url: string,
    inviterName: string | undefined,
  ) {
    const [ws] = await tx
      .select({ name: workspaces.name })
      .from(workspaces)
      .where(eq(workspaces.id, invite.workspaceId));
    const name = ws?.name ?? "a workspace";
    const by = inviterName ? `${inviterName} has invited you` : "You have been invited";
    await mailer.send({
      to: invite.email,
      subject: `You are invited to ${name} on Reef`,
      text: `${by} to join "${name}" as ${invite.role}.\n\nAccept the invite (valid until ${invite.expiresAt.toUTCString()}):\n${url}\n\nIf you did not expect this, ignore this email.\n`,
    });
  }

  async function nameOf(tx: Tx, userId: string | null): Promise<string | undefined> {
    if (!userId) return undefined;
    const [u] = await tx.select({ name: users.name }).from(users).where(eq(users.id, userId));
    return u?.name;
  }

  /**
   * Mails the invite's link (or hands it back once when no mail is configured) and audits it. Mail goes out before
   * commit: if the mail server refuses, no undelivered invite is left behind.
   */
  async function deliver(
    tx: Tx,
    ctx: RequestContext,
    d: {
      invite: InviteRow;
      token: string;
      mailer: Awaited<ReturnType<InviteServiceDeps["mailer"]>>;
      publicUrl: string;
      inviterId: string | null;
      action: "invite.create" | "invite.resend";
    },
  ) {
    const { invite, token, mailer } = d;
    const url = `${d.publicUrl.replace(/\/$/, "")}/invites/${token}`;
    if (mailer) await sendInviteMail(tx, mailer, invite, url, await nameOf(tx, d.inviterId));
    await appendAudit(tx, ctx, {
      workspaceId: invite.workspaceId,
      action: d.action,
      targetType: "invite",
      targetId: invite.id,
      details: { email: invite.email, role: invite.role, delivery: mailer ? "email" : "link" },
    });
    return mailer
      ? { invite: toView(invite), delivery: "email" as const }
      : { invite: toView(invite), delivery: "link" as const, token, url };
  }

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
        return deliver(tx, ctx, {
          invite,
          token,
          mailer,
          publicUrl,
          inviterId: access.userId,
          action: "invite.create",
        });
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

    /**
     * Issues a fresh link for a pending (or expired) invite: the old link stops working at once, the
     * expiry starts over, and the new link is emailed (or returned once, without a mailer).
     */
    async resend(ctx: RequestContext, workspaceId: string, inviteId: string) {
      const [mailer, publicUrl] = await Promise.all([deps.mailer(), deps.publicUrl()]);
      return gate.run(ctx, workspaceId, "members:invite", async (tx, access) => {
        const [current] = await tx
          .select()
          .from(invites)
          .where(
            and(
              eq(invites.id, inviteId),
              eq(invites.workspaceId, workspaceId),
              isNull(invites.acceptedAt),
              isNull(invites.revokedAt),
            ),
          );
        if (!current) throw new NotFoundError("No such pending invite.");
        if (!roleAtMost(current.role, access.role))
          throw new ForbiddenError(`You cannot invite a ${current.role}: it is above your own role (${access.role}).`);
        const token = newToken("ri_");
        const [invite] = await tx
          .update(invites)
          .set({ tokenHash: hashToken(token), expiresAt: new Date(Date.now() + deps.ttlMs) })
          .where(eq(invites.id, inviteId))
          .returning();
        if (!invite) throw new NotFoundError("No such pending invite.");
        return deliver(tx, ctx, {
          invite,
          token,
          mailer,
          publicUrl,
          inviterId: access.userId,
          action: "invite.resend",
        });
      });
    },

    /**
     * What the invite page shows before sign-in: the workspace, the inviter, the role and the invited
     * address. Any link that cannot be used (unknown, revoked, used, expired) gets the same plain 404,
     * so the page reveals nothing about it.
     */
    async preview(ctx: RequestContext, token: string): Promise<InvitePreview> {
      await deps.rateLimits.consume("invite_accept", ctx.ip ?? "unknown", ctx);
      const tokenHash = hashToken(token);
      return withScope(db, { lookup: { invite: tokenHash } }, async (tx) => {
        const [invite] = await tx.select().from(invites).where(eq(invites.tokenHash, tokenHash));
        if (!invite || invite.revokedAt || invite.acceptedAt || invite.expiresAt.getTime() <= Date.now())
          throw new NotFoundError(
            "This invite link is not valid any more. Ask the person who invited you for a new one.",
          );
        await extendScope(tx, { workspaceId: invite.workspaceId });
        const [ws] = await tx
          .select({ name: workspaces.name })
          .from(workspaces)
          .where(eq(workspaces.id, invite.workspaceId));
        return {
          workspaceName: ws?.name ?? "",
          // The inviter may have left since (then their name is no longer visible here).
          inviterName: (await nameOf(tx, invite.invitedBy)) ?? "A member",
          role: invite.role,
          email: invite.email,
          expiresAt: invite.expiresAt.toISOString(),
        };
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
