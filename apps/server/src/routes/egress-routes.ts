import {
  egressListsSchema,
  egressRefusalSchema,
  pageOf,
  pageQuerySchema,
  updateEgressListsBodySchema,
} from "@reef/contracts";
import type { EgressService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor, requireUser } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });

/** What the egress proxy refused a workspace's gateway, its allow and deny lists, and the operators' editor of them. */
export function egressRoutes(deps: { egress: EgressService }): FastifyPluginAsyncZod {
  const { egress } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/egress/refusals",
      {
        schema: {
          tags: ["egress"],
          summary:
            "Connections the egress proxy refused the workspace's gateway, per day and destination, newest first",
          params: wid,
          querystring: pageQuerySchema,
          response: { 200: pageOf(egressRefusalSchema) },
        },
      },
      async (request) => egress.listRefusals(requireActor(request), request.params.wid, request.query),
    );
    app.get(
      "/api/v1/workspaces/:wid/egress",
      {
        schema: {
          tags: ["egress"],
          summary: "The workspace's egress allow and deny lists (set by operators)",
          params: wid,
          response: { 200: egressListsSchema },
        },
      },
      async (request) => egress.getLists(requireActor(request), request.params.wid),
    );
    app.get(
      "/api/v1/admin/workspaces/:wid/egress",
      {
        schema: {
          tags: ["admin"],
          summary: "A workspace's egress allow and deny lists (operators only)",
          params: wid,
          response: { 200: egressListsSchema },
        },
      },
      async (request) => egress.getListsAsOperator(requireUser(request), request.params.wid),
    );
    app.patch(
      "/api/v1/admin/workspaces/:wid/egress",
      {
        schema: {
          tags: ["admin"],
          summary: "Set a workspace's egress allow and/or deny list (operators only; audited in both trails)",
          params: wid,
          body: updateEgressListsBodySchema,
          response: { 200: egressListsSchema },
        },
      },
      async (request) => egress.setListsAsOperator(requireUser(request), request.params.wid, request.body),
    );
  };
}
