import { pageOf, pageQuerySchema, runtimeIsolationSchema, runtimeSchema } from "@reef/contracts";
import type { RuntimeService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor, requireUser } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });

/** A workspace's gateway runtime, and the operators' view of all of them. */
export function runtimeRoutes(deps: { runtimes: RuntimeService }): FastifyPluginAsyncZod {
  const { runtimes } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/runtime",
      {
        schema: {
          tags: ["runtime"],
          summary: "The workspace's gateway: state, uptime, memory",
          params: wid,
          response: { 200: runtimeSchema },
        },
      },
      async (request) => runtimes.get(requireActor(request), request.params.wid),
    );
    app.post(
      "/api/v1/workspaces/:wid/runtime/start",
      {
        schema: {
          tags: ["runtime"],
          summary: "Start the gateway (waits until it is ready)",
          params: wid,
          response: { 200: runtimeSchema },
        },
      },
      async (request) => runtimes.start(requireActor(request), request.params.wid),
    );
    app.post(
      "/api/v1/workspaces/:wid/runtime/wake",
      {
        schema: {
          tags: ["runtime"],
          summary: "Start waking the gateway without waiting (any member who may chat); 202 with the runtime",
          params: wid,
          response: { 202: runtimeSchema },
        },
      },
      async (request, reply) => reply.status(202).send(await runtimes.wake(requireActor(request), request.params.wid)),
    );
    app.post(
      "/api/v1/workspaces/:wid/runtime/stop",
      { schema: { tags: ["runtime"], summary: "Stop the gateway", params: wid, response: { 200: runtimeSchema } } },
      async (request) => runtimes.stop(requireActor(request), request.params.wid),
    );
    app.get(
      "/api/v1/admin/runtimes",
      {
        schema: {
          tags: ["admin"],
          summary: "Every workspace runtime (operators only)",
          querystring: pageQuerySchema,
          response: { 200: pageOf(runtimeSchema) },
        },
      },
      async (request) => runtimes.listAll(requireUser(request), request.query),
    );
    app.get(
      "/api/v1/admin/runtimes/isolation",
      {
        schema: {
          tags: ["admin"],
          summary: "How gateways are contained here: sandboxed or not, and whether shell and file tools may be granted",
          response: { 200: runtimeIsolationSchema },
        },
      },
      async (request) => runtimes.isolation(requireUser(request)),
    );
    app.post(
      "/api/v1/admin/runtimes/:wid/stop",
      {
        schema: {
          tags: ["admin"],
          summary: "Stop a workspace's gateway (operators only; audited in the workspace's trail)",
          params: wid,
          response: { 200: runtimeSchema },
        },
      },
      async (request) => runtimes.stopAsOperator(requireUser(request), request.params.wid),
    );
  };
}
