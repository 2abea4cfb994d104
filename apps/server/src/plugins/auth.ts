import cookie from "@fastify/cookie";
import { AppError, UnauthorizedError } from "@reef/contracts";
import type { Actor, ApiKeyService, IdentityService, RequestContext, UserActor } from "@reef/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { type CsrfTokens, cookieNames } from "../csrf.ts";

export const CSRF_HEADER = "x-csrf-token";

declare module "fastify" {
  interface FastifyRequest {
    /** Who is calling and from where; set for every /api request. */
    ctx: RequestContext;
    /** How the actor authenticated, for CSRF: cookie sessions need the token, bearer keys do not. */
    authVia: "cookie" | "bearer" | "none";
  }
}

/** The session and CSRF cookies: their names (`__Host-` on https), setting and clearing them. */
export interface SessionCookies {
  readonly names: { session: string; csrf: string };
  /** Whether `presented` is the CSRF token of this session (constant time; previous root keys pass too). */
  verifyCsrf(sessionId: string, presented: string): boolean;
  /** Whether the CSRF cookie holds the session's current token, so need not be sent again. */
  csrfCookieCurrent(sessionId: string, cookie: string | undefined): boolean;
  /** Sets both cookies after sign-in: the HttpOnly session token and the readable, session-bound CSRF token. */
  set(reply: FastifyReply, session: { id: string; token: string; expiresAt: Date }): void;
  /** Sends the session's CSRF cookie again (it was missing, or made under a root key since retired). */
  refreshCsrf(reply: FastifyReply, sessionId: string): void;
  clear(reply: FastifyReply): void;
}

/** `secure`: Reef's public URL is https (cookies get Secure and the `__Host-` prefix). */
export function createSessionCookies(opts: { secure: boolean; csrf: CsrfTokens }): SessionCookies {
  const names = cookieNames(opts.secure);
  const common = { path: "/", sameSite: "lax" as const, secure: opts.secure };
  return {
    names,
    verifyCsrf: (sessionId, presented) => opts.csrf.verify(sessionId, presented),
    // A plain comparison: it only decides whether to re-send the cookie; the header check guards.
    csrfCookieCurrent: (sessionId, cookie) => cookie === opts.csrf.tokenFor(sessionId),
    set(reply, session) {
      reply.setCookie(names.session, session.token, { ...common, httpOnly: true, expires: session.expiresAt });
      reply.setCookie(names.csrf, opts.csrf.tokenFor(session.id), {
        ...common,
        httpOnly: false,
        expires: session.expiresAt,
      });
    },
    refreshCsrf(reply, sessionId) {
      reply.setCookie(names.csrf, opts.csrf.tokenFor(sessionId), { ...common, httpOnly: false });
    },
    clear(reply) {
      reply.clearCookie(names.session, { ...common, httpOnly: true });
      reply.clearCookie(names.csrf, common);
    },
  };
}

export interface AuthPluginOptions {
  identity: IdentityService;
  apiKeys: ApiKeyService;
  cookies: SessionCookies;
}

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const SAML_ACS = /^\/api\/v1\/auth\/sso\/[^/?]+\/acs(?:\?|$)/;

/**
 * Authenticates every /api request: a `Bearer reef_…` API key, or the session
 * cookie. Cookie-authenticated mutations must send the session's CSRF token (an
 * HMAC of the session id, also in the readable CSRF cookie) in `x-csrf-token`.
 * Routes then ask for the actor they need.
 */
async function authPlugin(app: FastifyInstance, opts: AuthPluginOptions) {
  const { names } = opts.cookies;
  await app.register(cookie);
  app.decorateRequest("ctx", null as unknown as RequestContext);
  app.decorateRequest("authVia", "none");

  app.addHook("onRequest", async (request, reply) => {
    const base = {
      ip: request.ip,
      userAgent: request.headers["user-agent"],
      requestId: String(request.id),
    };
    request.ctx = { ...base, actor: { kind: "anonymous" } };
    if (!request.url.startsWith("/api/v1/")) return;
    // Webhook calls carry their own credential (a signature, checked by the webhook service): no session, no
    // CSRF, and a stray Authorization header from the calling system is not taken for an API key.
    if (request.url.startsWith("/api/v1/hooks/")) return;
    // The SAML ACS is posted by the IdP's page: its credential is the signed assertion and the single-use
    // RelayState. A same-site IdP (idp.example.com for reef.example.com) gets the Lax session cookie sent
    // along, which must not turn the post into a cookie-authenticated mutation that wants a CSRF header.
    if (request.method === "POST" && SAML_ACS.test(request.url)) return;

    const authorization = request.headers.authorization;
    if (authorization !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(authorization);
      const actor = match?.[1] ? await opts.apiKeys.authenticate(match[1], base) : undefined;
      if (!actor) throw new UnauthorizedError("The API key is not valid, has expired or was revoked.");
      request.ctx = { ...base, actor };
      request.authVia = "bearer";
      return;
    }

    const token = request.cookies[names.session];
    if (!token) return;
    const actor = await opts.identity.authenticateSession(token);
    if (!actor) return;
    request.ctx = { ...base, actor };
    request.authVia = "cookie";
    // Once a root-key rotation ends, tokens made under the old key stop passing:
    // the page gets its current token back on its next request (even a refused one).
    if (!opts.cookies.csrfCookieCurrent(actor.sessionId, request.cookies[names.csrf])) {
      opts.cookies.refreshCsrf(reply, actor.sessionId);
    }
    if (MUTATING.has(request.method)) {
      const header = request.headers[CSRF_HEADER];
      if (typeof header !== "string" || !opts.cookies.verifyCsrf(actor.sessionId, header)) {
        throw new AppError(
          "CSRF_FAILED",
          `Missing or wrong ${CSRF_HEADER} header: send the value of the ${names.csrf} cookie.`,
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
