import { approvalDecisionBodySchema, approvalQuerySchema, approvalSchema, pageOf } from "@reef/contracts";
import type { ApprovalService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });
const one = wid.extend({ approvalId: z.uuid() });

/** The approvals inbox: what agents asked to do, and people's answers. */
export function approvalRoutes(deps: { approvals: ApprovalService }): FastifyPluginAsyncZod {
  const { approvals } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/approvals",
      {
        schema: {
          tags: ["approvals"],
          summary: "Requests for approval, newest first (default: those still waiting)",
          params: wid,
          querystring: approvalQuerySchema,
          response: { 200: pageOf(approvalSchema) },
        },
      },
      async (request) => approvals.list(requireActor(request), request.params.wid, request.query),
    );
    app.get(
      "/api/v1/workspaces/:wid/approvals/:approvalId",
      { schema: { tags: ["approvals"], params: one, response: { 200: approvalSchema } } },
      async (request) => approvals.get(requireActor(request), request.params.wid, request.params.approvalId),
    );
    app.post(
      "/api/v1/workspaces/:wid/approvals/:approvalId/decision",
      {
        schema: {
          tags: ["approvals"],
          summary: "Approve or deny; the first answer wins and reaches the waiting agent",
          params: one,
          body: approvalDecisionBodySchema,
          response: { 200: approvalSchema },
        },
      },
      async (request) =>
        approvals.decide(requireActor(request), request.params.wid, request.params.approvalId, request.body.decision),
    );
  };
}
