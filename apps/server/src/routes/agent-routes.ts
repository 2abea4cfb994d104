import {
  agentImpactSchema,
  agentSchema,
  agentToolsSchema,
  createAgentBodySchema,
  pageOf,
  pageQuerySchema,
  updateAgentBodySchema,
} from "@reef/contracts";
import type { AgentService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });
const one = wid.extend({ agentId: z.uuid() });

export function agentRoutes(deps: { agents: AgentService }): FastifyPluginAsyncZod {
  const { agents } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/agents",
      {
        schema: {
          tags: ["agents"],
          params: wid,
          querystring: pageQuerySchema,
          response: { 200: pageOf(agentSchema) },
        },
      },
      async (request) => agents.list(requireActor(request), request.params.wid, request.query),
    );
    app.get(
      "/api/v1/workspaces/:wid/agent-tools",
      {
        schema: {
          tags: ["agents"],
          summary: "The tools admins may grant agents here, and why the others cannot be granted",
          params: wid,
          response: { 200: agentToolsSchema },
        },
      },
      async (request) => agents.tools(requireActor(request), request.params.wid),
    );
    app.post(
      "/api/v1/workspaces/:wid/agents",
      {
        schema: {
          tags: ["agents"],
          summary: "Create an agent; it is served by the workspace's gateway from the next message",
          params: wid,
          body: createAgentBodySchema,
          response: { 201: agentSchema },
        },
      },
      async (request, reply) =>
        reply.status(201).send(await agents.create(requireActor(request), request.params.wid, request.body)),
    );
    app.get(
      "/api/v1/workspaces/:wid/agents/:agentId",
      { schema: { tags: ["agents"], params: one, response: { 200: agentSchema } } },
      async (request) => agents.get(requireActor(request), request.params.wid, request.params.agentId),
    );
    app.patch(
      "/api/v1/workspaces/:wid/agents/:agentId",
      {
        schema: {
          tags: ["agents"],
          summary: "Change an agent; the change reaches the gateway before the next message",
          params: one,
          body: updateAgentBodySchema,
          response: { 200: agentSchema },
        },
      },
      async (request) => agents.update(requireActor(request), request.params.wid, request.params.agentId, request.body),
    );
    app.get(
      "/api/v1/workspaces/:wid/agents/:agentId/impact",
      {
        schema: {
          tags: ["agents"],
          summary: "What deleting this agent deletes: its conversations, and how many people they belong to",
          params: one,
          response: { 200: agentImpactSchema },
        },
      },
      async (request) => agents.impact(requireActor(request), request.params.wid, request.params.agentId),
    );
    app.delete(
      "/api/v1/workspaces/:wid/agents/:agentId",
      {
        schema: {
          tags: ["agents"],
          summary: "Delete an agent and its chat sessions",
          params: one,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await agents.remove(requireActor(request), request.params.wid, request.params.agentId);
        return reply.status(204).send(null);
      },
    );
  };
}
