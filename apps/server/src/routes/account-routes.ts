import {
  emailChangeBodySchema,
  emailOnlyBodySchema,
  linkTokenBodySchema,
  magicLinkBodySchema,
  passwordChangeBodySchema,
  passwordResetCompleteBodySchema,
  profilePatchSchema,
  revokeSessionsBodySchema,
  signInResultSchema,
  userSchema,
} from "@reef/contracts";
import type { AccountService, EmailLinkService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireUser, type SessionCookies } from "../plugins/auth.ts";
import { bindingCookie } from "./binding-cookie.ts";

/** The cookie tying a magic link to the browser that asked for it. */
export const LINK_COOKIE = "reef_link";

const accepted = { 202: z.object({}) };
const noContent = { 204: z.null() };

/**
 * Emailed sign-in links (magic link, password reset, email confirmation) and the
 * signed-in user's own account (name, password, email, sign out everywhere).
 * `secureCookies`: Reef is served over https (the link cookie gets Secure).
 */
export function accountRoutes(deps: {
  emailLinks: EmailLinkService;
  account: AccountService;
  cookies: SessionCookies;
  secureCookies: boolean;
}): FastifyPluginAsyncZod {
  const { emailLinks, account, cookies } = deps;
  // Fifteen minutes, as long as the magic link it binds.
  const linkCookie = bindingCookie({
    name: LINK_COOKIE,
    path: "/api/v1/auth",
    maxAgeS: 15 * 60,
    secure: deps.secureCookies,
  });
  return async (app) => {
    app.post(
      "/api/v1/auth/magic-link",
      {
        schema: {
          tags: ["auth"],
          summary: "Email me a sign-in link (answers 202 whether or not the address has an account)",
          body: magicLinkBodySchema,
          response: accepted,
        },
      },
      async (request, reply) => {
        const { binding } = await emailLinks.requestMagicLink(request.ctx, {
          ...request.body,
          binding: linkCookie.read(request),
        });
        // Set for every address alike, so the answer does not tell which have accounts.
        linkCookie.set(reply, binding);
        return reply.status(202).send({});
      },
    );

    app.post(
      "/api/v1/auth/magic-link/consume",
      {
        schema: {
          tags: ["auth"],
          summary: "Sign in with an emailed link, in the browser that asked for it",
          description:
            "Posted by the /magic page, never done on GET: mail scanners open links to check them, which must not use them.",
          body: linkTokenBodySchema,
          response: { 200: signInResultSchema },
        },
      },
      async (request, reply) => {
        const { outcome } = await emailLinks.consumeMagicLink(request.ctx, {
          token: request.body.token,
          binding: linkCookie.read(request),
        });
        // The binding cookie stays (it expires by itself): another link asked from this browser still works here.
        if (outcome.kind === "challenge") return { next: outcome.next, challenge: outcome.challenge };
        cookies.set(reply, outcome.session);
        return { user: outcome.user };
      },
    );

    app.post(
      "/api/v1/auth/password-reset",
      {
        schema: {
          tags: ["auth"],
          summary: "Email me a password reset link (answers 202 whether or not the address has an account)",
          body: emailOnlyBodySchema,
          response: accepted,
        },
      },
      async (request, reply) => {
        await emailLinks.requestPasswordReset(request.ctx, request.body);
        return reply.status(202).send({});
      },
    );

    app.post(
      "/api/v1/auth/password-reset/complete",
      {
        schema: {
          tags: ["auth"],
          summary: "Set a new password from a reset link; every session of the account ends",
          body: passwordResetCompleteBodySchema,
          response: noContent,
        },
      },
      async (request, reply) => {
        await emailLinks.completePasswordReset(request.ctx, request.body);
        return reply.status(204).send(null);
      },
    );

    app.post(
      "/api/v1/auth/email-change/confirm",
      {
        schema: {
          tags: ["auth"],
          summary: "Confirm a new email address from the link mailed to it",
          body: linkTokenBodySchema,
          response: noContent,
        },
      },
      async (request, reply) => {
        await emailLinks.confirmEmailChange(request.ctx, request.body);
        return reply.status(204).send(null);
      },
    );

    app.patch(
      "/api/v1/me",
      {
        schema: {
          tags: ["auth"],
          summary: "Change your name",
          body: profilePatchSchema,
          response: { 200: z.object({ user: userSchema }) },
        },
      },
      async (request) => account.updateProfile(requireUser(request), request.body),
    );

    app.post(
      "/api/v1/me/password",
      {
        schema: {
          tags: ["auth"],
          summary: "Change your password; your other sessions end",
          body: passwordChangeBodySchema,
          response: noContent,
        },
      },
      async (request, reply) => {
        await account.changePassword(requireUser(request), request.body);
        return reply.status(204).send(null);
      },
    );

    app.post(
      "/api/v1/me/email",
      {
        schema: {
          tags: ["auth"],
          summary: "Change your email address: a confirmation link goes to the new one",
          body: emailChangeBodySchema,
          response: accepted,
        },
      },
      async (request, reply) => {
        await account.requestEmailChange(requireUser(request), request.body);
        return reply.status(202).send({});
      },
    );

    app.post(
      "/api/v1/me/sessions/revoke-all",
      {
        schema: {
          tags: ["auth"],
          summary: "Sign out everywhere: end your other sessions (and this one with includeCurrent)",
          body: revokeSessionsBodySchema,
          response: noContent,
        },
      },
      async (request, reply) => {
        const ctx = requireUser(request);
        await account.revokeAllSessions(ctx, request.body);
        if (request.body.includeCurrent) cookies.clear(reply);
        return reply.status(204).send(null);
      },
    );
  };
}
