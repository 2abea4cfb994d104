import {
  apiKeySchema,
  createApiKeyBodySchema,
  createApiKeyResponseSchema,
  pageOf,
  pageQuerySchema,
} from "@reef/contracts";
import type { ApiKeyService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });

export function apiKeyRoutes(deps: { apiKeys: ApiKeyService }): FastifyPluginAsyncZod {
  const { apiKeys } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/api-keys",
      {
        schema: {
          tags: ["api keys"],
          params: wid,
          querystring: pageQuerySchema,
          response: { 200: pageOf(apiKeySchema) },
        },
      },
      async (request) => apiKeys.list(requireActor(request), request.params.wid, request.query),
    );
    app.post(
      "/api/v1/workspaces/:wid/api-keys",
      {
        schema: {
          tags: ["api keys"],
          summary: "Create a key; the secret `key` is shown only in this response",
          params: wid,
          body: createApiKeyBodySchema,
          response: { 201: createApiKeyResponseSchema },
        },
      },
      async (request, reply) => {
        const { expiresAt, ...rest } = request.body;
        const created = await apiKeys.create(requireActor(request), request.params.wid, {
          ...rest,
          expiresAt: expiresAt ? new Date(expiresAt) : undefined,
        });
        return reply.status(201).send(created);
      },
    );
    app.delete(
      "/api/v1/workspaces/:wid/api-keys/:keyId",
      {
        schema: {
          tags: ["api keys"],
          summary: "Revoke a key (effective on its next request)",
          params: wid.extend({ keyId: z.uuid() }),
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await apiKeys.revoke(requireActor(request), request.params.wid, request.params.keyId);
        return reply.status(204).send(null);
      },
    );
  };
}
