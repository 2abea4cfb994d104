import {
  adminUpdateUserBodySchema,
  adminUpdateWorkspaceBodySchema,
  adminUserQuerySchema,
  adminUserSchema,
  adminWorkspaceSchema,
  auditEntrySchema,
  auditQuerySchema,
  pageOf,
  pageQuerySchema,
} from "@reef/contracts";
import type { AdminService, AuditQueryService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor, requireUser } from "../plugins/auth.ts";

function toAuditQuery(q: z.infer<typeof auditQuerySchema>) {
  return { ...q, after: q.after ? new Date(q.after) : undefined, before: q.before ? new Date(q.before) : undefined };
}

/** A workspace's audit trail, and the operator (admin) views. */
export function auditAndAdminRoutes(deps: {
  auditQuery: AuditQueryService;
  admin: AdminService;
}): FastifyPluginAsyncZod {
  const { auditQuery, admin } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/audit",
      {
        schema: {
          tags: ["audit"],
          summary: "Audit trail, newest first",
          params: z.object({ wid: z.uuid() }),
          querystring: auditQuerySchema,
          response: { 200: pageOf(auditEntrySchema) },
        },
      },
      async (request) => auditQuery.list(requireActor(request), request.params.wid, toAuditQuery(request.query)),
    );

    app.get(
      "/api/v1/admin/users",
      {
        schema: {
          tags: ["admin"],
          summary: "Users (operators only)",
          querystring: adminUserQuerySchema,
          response: { 200: pageOf(adminUserSchema) },
        },
      },
      async (request) => admin.listUsers(requireUser(request), request.query),
    );
    app.patch(
      "/api/v1/admin/users/:userId",
      {
        schema: {
          tags: ["admin"],
          summary: "Change platform role or deactivate (never yourself)",
          params: z.object({ userId: z.uuid() }),
          body: adminUpdateUserBodySchema,
          response: { 200: adminUserSchema },
        },
      },
      async (request) => admin.updateUser(requireUser(request), request.params.userId, request.body),
    );
    app.get(
      "/api/v1/admin/workspaces",
      {
        schema: {
          tags: ["admin"],
          summary: "Workspaces with membership and counts (operators only)",
          querystring: pageQuerySchema,
          response: { 200: pageOf(adminWorkspaceSchema) },
        },
      },
      async (request) => admin.listWorkspaces(requireUser(request), request.query),
    );
    app.patch(
      "/api/v1/admin/workspaces/:wid",
      {
        schema: {
          tags: ["admin"],
          summary: "Set a workspace's monthly token budget (operators only; null: the platform default)",
          params: z.object({ wid: z.uuid() }),
          body: adminUpdateWorkspaceBodySchema,
          response: { 200: z.object({ id: z.uuid(), monthlyTokenBudget: z.number().int().nullable() }) },
        },
      },
      async (request) => admin.updateWorkspace(requireUser(request), request.params.wid, request.body),
    );
    app.get(
      "/api/v1/admin/audit",
      {
        schema: {
          tags: ["admin"],
          summary: "Platform audit trail (operators only)",
          querystring: auditQuerySchema,
          response: { 200: pageOf(auditEntrySchema) },
        },
      },
      async (request) => admin.listPlatformAudit(requireUser(request), toAuditQuery(request.query)),
    );
  };
}
