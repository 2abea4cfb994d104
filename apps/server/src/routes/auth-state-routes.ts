import { authStateSchema } from "@reef/contracts";
import type { AuthStateService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

/**
 * `GET /api/v1/auth/state`: what the web app boots from. Always 200 (signed in or not, valid cookie or
 * not), so the first page load of a fresh install, or a signed-out visit, logs no failed request.
 */
export function authStateRoutes(deps: { authState: AuthStateService }): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      "/api/v1/auth/state",
      {
        schema: {
          tags: ["auth"],
          summary: "Whether this browser is signed in, and which ways to sign in are on",
          response: { 200: authStateSchema },
        },
      },
      async (request, reply) => {
        // The answer changes on sign-in and sign-out: never serve it from a cache.
        reply.header("cache-control", "no-store");
        return deps.authState.state(request.ctx);
      },
    );
  };
}
