import { healthBodySchema, readinessBodySchema } from "@reef/contracts";
import type { SystemService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

/** Liveness and readiness probes. Unauthenticated, and they reveal no data. */
export function healthRoutes(deps: { system: SystemService; version: string }): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      "/healthz",
      { schema: { tags: ["health"], summary: "The process is up", response: { 200: healthBodySchema } } },
      async () => ({ status: "ok" as const, version: deps.version }),
    );
    app.get(
      "/readyz",
      {
        schema: {
          tags: ["health"],
          summary: "The database is reachable and every migration is applied",
          response: { 200: readinessBodySchema, 503: readinessBodySchema },
        },
      },
      async (_request, reply) => {
        const readiness = await deps.system.readiness();
        return reply.status(readiness.status === "ready" ? 200 : 503).send(readiness);
      },
    );
  };
}
