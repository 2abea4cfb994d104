import {
  createProviderBodySchema,
  pageOf,
  pageQuerySchema,
  providerSchema,
  providerTestResultSchema,
  updateProviderBodySchema,
} from "@reef/contracts";
import type { ProviderService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });
const one = wid.extend({ providerId: z.uuid() });

export function providerRoutes(deps: { providers: ProviderService }): FastifyPluginAsyncZod {
  const { providers } = deps;
  return async (app) => {
    app.get(
      "/api/v1/workspaces/:wid/providers",
      {
        schema: {
          tags: ["providers"],
          summary: "Shared providers and your personal ones; keys are masked",
          params: wid,
          querystring: pageQuerySchema,
          response: { 200: pageOf(providerSchema) },
        },
      },
      async (request) => providers.list(requireActor(request), request.params.wid, request.query),
    );
    app.post(
      "/api/v1/workspaces/:wid/providers",
      {
        schema: {
          tags: ["providers"],
          summary: "Add a provider; the key goes into the vault and is never returned",
          params: wid,
          body: createProviderBodySchema,
          response: { 201: providerSchema },
        },
      },
      async (request, reply) =>
        reply.status(201).send(await providers.create(requireActor(request), request.params.wid, request.body)),
    );
    app.get(
      "/api/v1/workspaces/:wid/providers/:providerId",
      { schema: { tags: ["providers"], params: one, response: { 200: providerSchema } } },
      async (request) => providers.get(requireActor(request), request.params.wid, request.params.providerId),
    );
    app.patch(
      "/api/v1/workspaces/:wid/providers/:providerId",
      {
        schema: {
          tags: ["providers"],
          summary: "Change a provider; a new key replaces the old one",
          params: one,
          body: updateProviderBodySchema,
          response: { 200: providerSchema },
        },
      },
      async (request) =>
        providers.update(requireActor(request), request.params.wid, request.params.providerId, request.body),
    );
    app.delete(
      "/api/v1/workspaces/:wid/providers/:providerId",
      {
        schema: {
          tags: ["providers"],
          summary: "Delete a provider no agent uses",
          params: one,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await providers.remove(requireActor(request), request.params.wid, request.params.providerId);
        return reply.status(204).send(null);
      },
    );
    app.post(
      "/api/v1/workspaces/:wid/providers/:providerId/test",
      {
        schema: {
          tags: ["providers"],
          summary: "Check the provider answers with its key; refreshes its model list",
          params: one,
          response: { 200: providerTestResultSchema },
        },
      },
      async (request) => providers.test(requireActor(request), request.params.wid, request.params.providerId),
    );
  };
}
