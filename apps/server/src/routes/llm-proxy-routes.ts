import { INTERNAL_PREFIX, type RuntimeOutboundService } from "@reef/core";
import type { FastifyPluginAsync } from "fastify";

/**
 * Reef's LLM proxy on the main server, for gateways that cannot use a socket
 * (containers, pods): `/internal/llm/<providerId>/…` with the credential
 * minted for the runtime. The request is handed over raw, before Fastify reads
 * its body, so the proxy streams both ways; no session or API key applies.
 */
export function llmProxyRoutes(deps: { outbound: RuntimeOutboundService }): FastifyPluginAsync {
  return async (app) => {
    app.route({
      method: ["GET", "POST"],
      url: `${INTERNAL_PREFIX}/llm/*`,
      schema: { hide: true },
      onRequest: async (request, reply) => {
        reply.hijack();
        deps.outbound.serveHttp(request.raw, reply.raw);
      },
      handler: async () => {},
    });
    // Reef's MCP proxy, the same way: `/internal/mcp/<connectorId>…` (DELETE ends a streamable HTTP session).
    app.route({
      method: ["GET", "POST", "DELETE"],
      url: `${INTERNAL_PREFIX}/mcp/*`,
      schema: { hide: true },
      onRequest: async (request, reply) => {
        reply.hijack();
        deps.outbound.serveHttp(request.raw, reply.raw);
      },
      handler: async () => {},
    });
  };
}
