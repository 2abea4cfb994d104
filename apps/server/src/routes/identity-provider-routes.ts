import {
  identityProviderBodySchema,
  identityProviderPatchSchema,
  identityProviderSchema,
  pageOf,
  pageQuerySchema,
} from "@reef/contracts";
import type { IdentityProviderService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireUser } from "../plugins/auth.ts";

const params = z.object({ providerId: z.uuid() });

/** Operators' single sign-on providers (OIDC and SAML). Secrets go in, never come out. */
export function identityProviderRoutes(deps: { identityProviders: IdentityProviderService }): FastifyPluginAsyncZod {
  const { identityProviders } = deps;
  return async (app) => {
    app.get(
      "/api/v1/admin/identity-providers",
      {
        schema: {
          tags: ["admin"],
          summary: "Single sign-on providers (operators only)",
          querystring: pageQuerySchema,
          response: { 200: pageOf(identityProviderSchema) },
        },
      },
      async (request) => identityProviders.list(requireUser(request), request.query),
    );
    app.post(
      "/api/v1/admin/identity-providers",
      {
        schema: {
          tags: ["admin"],
          summary: "Add a single sign-on provider; an OIDC issuer is checked first (operators only)",
          body: identityProviderBodySchema,
          response: { 201: identityProviderSchema },
        },
      },
      async (request, reply) =>
        reply.status(201).send(await identityProviders.create(requireUser(request), request.body)),
    );
    app.get(
      "/api/v1/admin/identity-providers/:providerId",
      {
        schema: {
          tags: ["admin"],
          summary: "One single sign-on provider (operators only)",
          params,
          response: { 200: identityProviderSchema },
        },
      },
      async (request) => identityProviders.get(requireUser(request), request.params.providerId),
    );
    app.patch(
      "/api/v1/admin/identity-providers/:providerId",
      {
        schema: {
          tags: ["admin"],
          summary: "Change a single sign-on provider; omit the secret to keep it (operators only)",
          params,
          body: identityProviderPatchSchema,
          response: { 200: identityProviderSchema },
        },
      },
      async (request) => identityProviders.patch(requireUser(request), request.params.providerId, request.body),
    );
    app.delete(
      "/api/v1/admin/identity-providers/:providerId",
      {
        schema: {
          tags: ["admin"],
          summary: "Remove a single sign-on provider and the accounts linked through it (operators only)",
          params,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await identityProviders.delete(requireUser(request), request.params.providerId);
        return reply.status(204).send(null);
      },
    );
  };
}
