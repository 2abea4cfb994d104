import { AppError, identitySchema, pageOf, pageQuerySchema, ssoLinkBodySchema, userSchema } from "@reef/contracts";
import type { SsoService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireUser, type SessionCookies } from "../plugins/auth.ts";
import { bindingCookie } from "./binding-cookie.ts";
import { finishSsoSignIn, signinErrorUrl, ssoFailureRedirect } from "./sso-redirects.ts";

/** The browser's half of an OIDC sign-in in flight: its state token is bound to this cookie. */
export const SSO_COOKIE = "reef_sso";

// Any text: an unknown slug is a 404 from the service, like a disabled provider.
const slugParams = z.object({ slug: z.string().max(100) });

/**
 * Single sign-on for people: start at the provider, come back on the callback
 * (a session cookie and a redirect, or `/signin` with the reason; never an error
 * page), link to an existing password account, and list one's linked accounts.
 * Start and callback are top-level GET navigations: no session or CSRF token needed.
 */
export function ssoRoutes(deps: { sso: SsoService; cookies: SessionCookies; secure: boolean }): FastifyPluginAsyncZod {
  const { sso, cookies, secure } = deps;
  // Ten minutes, as long as the state token it guards.
  const ssoCookie = bindingCookie({ name: SSO_COOKIE, path: "/api/v1/auth/sso", maxAgeS: 10 * 60, secure });
  return async (app) => {
    app.get(
      "/api/v1/auth/sso/:slug/start",
      {
        schema: {
          tags: ["auth"],
          summary: "Start signing in with a single sign-on provider: redirects to it",
          params: slugParams,
          querystring: z.object({ next: z.string().max(2000).optional() }),
        },
      },
      async (request, reply) => {
        // An unknown or disabled provider is a 404; a provider that cannot be reached sends the person
        // back to the sign-in page with the reason, as a failed callback does.
        await sso.provider(request.params.slug);
        let started: Awaited<ReturnType<SsoService["start"]>>;
        try {
          started = await sso.start(request.params.slug, request.query.next);
        } catch (err) {
          if (!(err instanceof AppError) || err.code === "NOT_FOUND") throw err;
          return reply.redirect(signinErrorUrl(err.code, err.message), 302);
        }
        if (started.binding) ssoCookie.set(reply, started.binding);
        return reply.header("cache-control", "no-store").redirect(started.redirectUrl, 302);
      },
    );

    app.get(
      "/api/v1/auth/sso/:slug/callback",
      {
        schema: {
          tags: ["auth"],
          summary: "Where the OIDC provider sends people back: signs in and redirects",
          params: slugParams,
          hide: true,
        },
      },
      async (request, reply) => {
        const query = request.url.indexOf("?");
        const params = new URLSearchParams(query >= 0 ? request.url.slice(query + 1) : "");
        reply.header("cache-control", "no-store");
        // One attempt per cookie, whatever happens.
        const binding = ssoCookie.read(request);
        ssoCookie.clear(reply);
        // No such (enabled) provider: a 404, as on start; everything after sends the person back to /signin.
        await sso.provider(request.params.slug);
        try {
          const result = await sso.oidcCallback(request.params.slug, params, binding, request.ctx);
          return finishSsoSignIn(reply, cookies, result);
        } catch (err) {
          return ssoFailureRedirect(request, reply, err, request.params.slug);
        }
      },
    );

    app.post(
      "/api/v1/auth/sso/link",
      {
        schema: {
          tags: ["auth"],
          summary: "Link a provider's account to your existing account by giving its password once; signs in",
          body: ssoLinkBodySchema,
          response: { 200: z.object({ user: userSchema }) },
        },
      },
      async (request, reply) => {
        const out = await sso.link(request.ctx, request.body.token, request.body.password);
        cookies.set(reply, out.session);
        return { user: out.user };
      },
    );

    app.get(
      "/api/v1/me/identities",
      {
        schema: {
          tags: ["auth"],
          summary: "Your accounts at single sign-on providers, linked to this account",
          querystring: pageQuerySchema,
          response: { 200: pageOf(identitySchema) },
        },
      },
      async (request) => sso.listIdentities(requireUser(request).actor, request.query),
    );
  };
}
