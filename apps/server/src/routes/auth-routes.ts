import {
  loginBodySchema,
  meResponseSchema,
  pageOf,
  pageQuerySchema,
  sessionSchema,
  signInResultSchema,
  signupBodySchema,
  signupResponseSchema,
} from "@reef/contracts";
import type { IdentityService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireUser, type SessionCookies } from "../plugins/auth.ts";

/** Sign-up, sign-in, sign-out, the current user and their sessions. */
export function authRoutes(deps: { identity: IdentityService; cookies: SessionCookies }): FastifyPluginAsyncZod {
  const { identity, cookies } = deps;
  return async (app) => {
    app.post(
      "/api/v1/auth/signup",
      {
        schema: {
          tags: ["auth"],
          summary: "Create an account (and its personal workspace) and sign in",
          body: signupBodySchema,
          response: { 201: signupResponseSchema },
        },
      },
      async (request, reply) => {
        const result = await identity.signup(request.ctx, request.body);
        cookies.set(reply, result.session);
        return reply.status(201).send({ user: result.user, workspace: result.workspace });
      },
    );

    app.post(
      "/api/v1/auth/login",
      {
        schema: {
          tags: ["auth"],
          summary: "Sign in with email and password (or get the second-factor step it needs)",
          body: loginBodySchema,
          response: { 200: signInResultSchema },
        },
      },
      async (request, reply) => {
        const result = await identity.login(request.ctx, request.body);
        if (result.kind === "challenge") return { next: result.next, challenge: result.challenge };
        cookies.set(reply, result.session);
        return { user: result.user };
      },
    );

    app.post(
      "/api/v1/auth/logout",
      { schema: { tags: ["auth"], summary: "Sign out: revoke this session", response: { 204: z.null() } } },
      async (request, reply) => {
        await identity.logout(request.ctx);
        cookies.clear(reply);
        return reply.status(204).send(null);
      },
    );

    app.get(
      "/api/v1/me",
      {
        schema: {
          tags: ["auth"],
          summary: "The signed-in user and their workspaces",
          response: { 200: meResponseSchema },
        },
      },
      async (request) => identity.me(requireUser(request).actor),
    );

    app.get(
      "/api/v1/me/sessions",
      {
        schema: {
          tags: ["auth"],
          summary: "Your active sessions",
          querystring: pageQuerySchema,
          response: { 200: pageOf(sessionSchema) },
        },
      },
      async (request) => identity.listSessions(requireUser(request).actor, request.query),
    );

    app.delete(
      "/api/v1/me/sessions/:sessionId",
      {
        schema: {
          tags: ["auth"],
          summary: "Revoke one of your sessions",
          params: z.object({ sessionId: z.uuid() }),
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await identity.revokeSession(requireUser(request), request.params.sessionId);
        return reply.status(204).send(null);
      },
    );
  };
}
