import { timingSafeEqual } from "node:crypto";
import cookie from "@fastify/cookie";
import { AppError, UnauthorizedError } from "@reef/contracts";
import type { Actor, ApiKeyService, IdentityService, RequestContext, UserActor } from "@reef/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { newCsrfToken } from "../csrf.ts";

export const SESSION_COOKIE = "reef_session";
export const CSRF_COOKIE = "reef_csrf";
export const CSRF_HEADER = "x-csrf-token";

declare module "fastify" {
  interface FastifyRequest {
    /** Who is calling and from where; set for every /api request. */
    ctx: RequestContext;
    /** How the actor authenticated, for CSRF: cookie sessions need the token, bearer keys do not. */
    authVia: "cookie" | "bearer" | "none";
  }
}

export interface AuthPluginOptions {
  identity: IdentityService;
  apiKeys: ApiKeyService;
  secureCookies: boolean;
}

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Authenticates every /api request: a `Bearer reef_…` API key, or the session
 * cookie. Cookie-authenticated mutations must echo the `reef_csrf` cookie in the
 * `x-csrf-token` header (double submit). Routes then ask for the actor they need.
 */
async function authPlugin(app: FastifyInstance, opts: AuthPluginOptions) {
  await app.register(cookie);
  app.decorateRequest("ctx", null as unknown as RequestContext);
  app.decorateRequest("authVia", "none");

  app.addHook("onRequest", async (request) => {
    const base = {
      ip: request.ip,
      userAgent: request.headers["user-agent"],
      requestId: String(request.id),
    };
    request.ctx = { ...base, actor: { kind: "anonymous" } };
    if (!request.url.startsWith("/api/v1/")) return;

    const authorization = request.headers.authorization;
    if (authorization !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(authorization);
      const actor = match?.[1] ? await opts.apiKeys.authenticate(match[1], base) : undefined;
      if (!actor) throw new UnauthorizedError("The API key is not valid, has expired or was revoked.");
      request.ctx = { ...base, actor };
      request.authVia = "bearer";
      return;
    }

    const token = request.cookies[SESSION_COOKIE];
    if (!token) return;
    const actor = await opts.identity.authenticateSession(token);
    if (!actor) return;
    request.ctx = { ...base, actor };
    request.authVia = "cookie";
    if (MUTATING.has(request.method)) {
      const header = request.headers[CSRF_HEADER];
      const cookieToken = request.cookies[CSRF_COOKIE];
      if (typeof header !== "string" || !cookieToken || !safeEqual(header, cookieToken)) {
        throw new AppError(
          "CSRF_FAILED",
          `Missing or wrong ${CSRF_HEADER} header: send the value of the ${CSRF_COOKIE} cookie.`,
        );
      }
    }
  });
}

export const registerAuth = fp(authPlugin, { name: "reef-auth" });

/** The request's actor if a person is signed in; otherwise 401. */
export function requireUser(request: FastifyRequest): RequestContext & { actor: UserActor } {
  const ctx = request.ctx;
  if (ctx.actor.kind !== "user") throw new UnauthorizedError();
  return ctx as RequestContext & { actor: UserActor };
}

/** The request's context if anyone (person or API key) is authenticated; otherwise 401. */
export function requireActor(
  request: FastifyRequest,
): RequestContext & { actor: Exclude<Actor, { kind: "anonymous" }> } {
  const ctx = request.ctx;
  if (ctx.actor.kind === "anonymous") throw new UnauthorizedError();
  return ctx as RequestContext & { actor: Exclude<Actor, { kind: "anonymous" }> };
}

/** Sets the session and CSRF cookies after sign-in. */
export function setSessionCookies(
  reply: FastifyReply,
  session: { token: string; expiresAt: Date },
  secure: boolean,
): void {
  const common = { path: "/", sameSite: "lax" as const, secure, expires: session.expiresAt };
  reply.setCookie(SESSION_COOKIE, session.token, { ...common, httpOnly: true });
  reply.setCookie(CSRF_COOKIE, newCsrfToken(), { ...common, httpOnly: false });
}

export function clearSessionCookies(reply: FastifyReply, secure: boolean): void {
  const common = { path: "/", sameSite: "lax" as const, secure };
  reply.clearCookie(SESSION_COOKIE, { ...common, httpOnly: true });
  reply.clearCookie(CSRF_COOKIE, common);
}
