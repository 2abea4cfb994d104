import {
  acceptInviteResponseSchema,
  createInviteBodySchema,
  createInviteResponseSchema,
  createWorkspaceBodySchema,
  deleteWorkspaceBodySchema,
  invitePreviewSchema,
  inviteSchema,
  memberSchema,
  pageOf,
  pageQuerySchema,
  updateMemberBodySchema,
  updateWorkspaceBodySchema,
  workspaceImpactSchema,
  workspaceSchema,
} from "@reef/contracts";
import type { InviteService, WorkspaceService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor, requireUser } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });

/** Workspaces, their members and invites. */
export function workspaceRoutes(deps: { workspaces: WorkspaceService; invites: InviteService }): FastifyPluginAsyncZod {
  const { workspaces, invites } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces",
      {
        schema: {
          tags: ["workspaces"],
          summary: "Your workspaces",
          querystring: pageQuerySchema,
          response: { 200: pageOf(workspaceSchema) },
        },
      },
      async (request) => workspaces.list(requireActor(request), request.query),
    );
    app.post(
      "/api/v1/workspaces",
      {
        schema: {
          tags: ["workspaces"],
          summary: "Create a workspace you own",
          body: createWorkspaceBodySchema,
          response: { 201: workspaceSchema },
        },
      },
      async (request, reply) => reply.status(201).send(await workspaces.create(requireUser(request), request.body)),
    );
    app.get(
      "/api/v1/workspaces/:wid",
      { schema: { tags: ["workspaces"], params: wid, response: { 200: workspaceSchema } } },
      async (request) => workspaces.get(requireActor(request), request.params.wid),
    );
    app.patch(
      "/api/v1/workspaces/:wid",
      {
        schema: {
          tags: ["workspaces"],
          summary: "Rename, set the default agent, or require members to sign in with two-factor (owners and admins)",
          params: wid,
          body: updateWorkspaceBodySchema,
          response: { 200: workspaceSchema },
        },
      },
      async (request) => workspaces.update(requireActor(request), request.params.wid, request.body),
    );
    app.get(
      "/api/v1/workspaces/:wid/impact",
      {
        schema: {
          tags: ["workspaces"],
          summary: "What deleting the workspace deletes: agents, conversations, members (those who may delete it)",
          params: wid,
          response: { 200: workspaceImpactSchema },
        },
      },
      async (request) => workspaces.impact(requireActor(request), request.params.wid),
    );
    app.delete(
      "/api/v1/workspaces/:wid",
      {
        schema: {
          tags: ["workspaces"],
          summary: "Delete with everything in it (owners; confirm with the name)",
          params: wid,
          body: deleteWorkspaceBodySchema,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await workspaces.delete(requireActor(request), request.params.wid, request.body);
        return reply.status(204).send(null);
      },
    );

    app.get(
      "/api/v1/workspaces/:wid/members",
      {
        schema: {
          tags: ["members"],
          params: wid,
          querystring: pageQuerySchema,
          response: { 200: pageOf(memberSchema) },
        },
      },
      async (request) => workspaces.listMembers(requireActor(request), request.params.wid, request.query),
    );
    const member = wid.extend({ userId: z.uuid() });
    app.patch(
      "/api/v1/workspaces/:wid/members/:userId",
      {
        schema: {
          tags: ["members"],
          summary: "Change a member's role",
          params: member,
          body: updateMemberBodySchema,
          response: { 200: memberSchema },
        },
      },
      async (request) =>
        workspaces.updateMember(requireActor(request), request.params.wid, request.params.userId, request.body),
    );
    app.delete(
      "/api/v1/workspaces/:wid/members/:userId",
      {
        schema: {
          tags: ["members"],
          summary: "Remove a member (or leave)",
          params: member,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await workspaces.removeMember(requireActor(request), request.params.wid, request.params.userId);
        return reply.status(204).send(null);
      },
    );

    app.post(
      "/api/v1/workspaces/:wid/invites",
      {
        schema: {
          tags: ["members"],
          summary: "Invite someone by email",
          params: wid,
          body: createInviteBodySchema,
          response: { 201: createInviteResponseSchema },
        },
      },
      async (request, reply) => {
        const result = await invites.create(requireActor(request), request.params.wid, request.body);
        // The log never holds the token.
        request.log.info(
          { inviteId: result.invite.id, workspaceId: request.params.wid },
          result.delivery === "email"
            ? "invite created; emailed to the invitee"
            : "invite created; link returned to the inviter",
        );
        return reply.status(201).send(result);
      },
    );
    app.get(
      "/api/v1/workspaces/:wid/invites",
      {
        schema: {
          tags: ["members"],
          params: wid,
          querystring: pageQuerySchema,
          response: { 200: pageOf(inviteSchema) },
        },
      },
      async (request) => invites.list(requireActor(request), request.params.wid, request.query),
    );
    app.delete(
      "/api/v1/workspaces/:wid/invites/:inviteId",
      {
        schema: {
          tags: ["members"],
          summary: "Revoke a pending invite",
          params: wid.extend({ inviteId: z.uuid() }),
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await invites.revoke(requireActor(request), request.params.wid, request.params.inviteId);
        return reply.status(204).send(null);
      },
    );
    app.post(
      "/api/v1/workspaces/:wid/invites/:inviteId/resend",
      {
        schema: {
          tags: ["members"],
          summary: "Send a pending invite again with a fresh link (the old link stops working)",
          params: wid.extend({ inviteId: z.uuid() }),
          response: { 200: createInviteResponseSchema },
        },
      },
      async (request) => {
        const result = await invites.resend(requireActor(request), request.params.wid, request.params.inviteId);
        request.log.info({ inviteId: result.invite.id, workspaceId: request.params.wid }, "invite sent again");
        return result;
      },
    );
    app.get(
      "/api/v1/invites/:token",
      {
        schema: {
          tags: ["members"],
          summary: "What an invite link is for (workspace, inviter, role, invited email); no sign-in needed",
          params: z.object({ token: z.string().min(10).max(100) }),
          response: { 200: invitePreviewSchema },
        },
      },
      async (request) => invites.preview(request.ctx, request.params.token),
    );
    app.post(
      "/api/v1/invites/:token/accept",
      {
        schema: {
          tags: ["members"],
          summary: "Accept an invite as the signed-in invitee",
          params: z.object({ token: z.string().min(10).max(100) }),
          response: { 200: acceptInviteResponseSchema },
        },
      },
      async (request) => invites.accept(requireUser(request), request.params.token),
    );
  };
}
