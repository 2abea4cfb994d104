import { AppError } from "@reef/contracts";
import type { SamlFlow } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { SessionCookies } from "../plugins/auth.ts";
import { finishSsoSignIn, ssoFailureRedirect } from "./sso-redirects.ts";

const FORM = "application/x-www-form-urlencoded";
const slugParams = z.object({ slug: z.string() });

/**
 * SAML's two endpoints for the IdP: the assertion consumer service (the IdP
 * POSTs the signed response here, cross-site, so no session cookie or CSRF
 * header comes with it; the single-use RelayState and the signed assertion are
 * the credentials) and Reef's SP metadata. The start is in the SSO routes.
 */
export function samlRoutes(deps: { samlFlow: SamlFlow; cookies: SessionCookies }): FastifyPluginAsyncZod {
  const { samlFlow, cookies } = deps;
  return async (app) => {
    // IdPs post HTML forms; parsed here only (this plugin is encapsulated), as plain strings.
    if (!app.hasContentTypeParser(FORM)) {
      app.addContentTypeParser(FORM, { parseAs: "string" }, (_request, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(String(body))));
      });
    }

    app.post(
      "/api/v1/auth/sso/:slug/acs",
      {
        schema: {
          tags: ["auth"],
          summary: "SAML assertion consumer service: the IdP posts SAMLResponse and RelayState (form); redirects",
          params: slugParams,
        },
      },
      async (request, reply) => {
        const body = (request.body ?? {}) as Record<string, unknown>;
        // An unknown or disabled provider is a 404, like its start and callback routes.
        const provider = await samlFlow.provider(request.params.slug);
        try {
          const SAMLResponse = body.SAMLResponse;
          if (typeof SAMLResponse !== "string" || SAMLResponse.length === 0) {
            throw new AppError("SSO_FAILED", "The identity provider's answer had no SAML response in it.");
          }
          const RelayState = typeof body.RelayState === "string" ? body.RelayState : undefined;
          const { outcome, next } = await samlFlow.acs(provider, { SAMLResponse, RelayState }, request.ctx);
          return finishSsoSignIn(reply, cookies, { outcome, next, provider });
        } catch (err) {
          return ssoFailureRedirect(request, reply, err, request.params.slug);
        }
      },
    );

    app.get(
      "/api/v1/auth/sso/:slug/metadata",
      {
        schema: {
          tags: ["auth"],
          summary: "Reef's SAML service-provider metadata for this provider (XML, for the IdP's configuration)",
          params: slugParams,
        },
      },
      async (request, reply) => {
        const provider = await samlFlow.provider(request.params.slug);
        const xml = await samlFlow.metadata(provider);
        return reply.type("application/samlmetadata+xml; charset=utf-8").send(xml);
      },
    );
  };
}
