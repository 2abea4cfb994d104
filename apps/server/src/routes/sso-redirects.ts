import { AppError } from "@reef/contracts";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { SessionCookies } from "../plugins/auth.ts";

/** What an OIDC callback or a SAML response came to: signed in, or the account must be linked first. */
export interface SsoSignInResult {
  outcome:
    | { kind: "session"; session: { id: string; token: string; expiresAt: Date } }
    | { kind: "link_required"; token: string; email: string };
  /** Where to land (already checked to be a path on Reef). */
  next: string;
  provider: { name: string };
}

/** `/signin` showing why a sign-in did not happen (the web app renders `message`). */
export function signinErrorUrl(code: string, message: string): string {
  return `/signin?${new URLSearchParams({ error: code, message })}`;
}

/**
 * Ends a provider's round trip: to `/signin/link` when an existing account must
 * prove its password first, else with the session cookie set to `next`.
 */
export function finishSsoSignIn(reply: FastifyReply, cookies: SessionCookies, result: SsoSignInResult): FastifyReply {
  const { outcome } = result;
  if (outcome.kind === "link_required") {
    const query = new URLSearchParams({ token: outcome.token, email: outcome.email, provider: result.provider.name });
    return reply.redirect(`/signin/link?${query}`, 302);
  }
  cookies.set(reply, outcome.session);
  return reply.redirect(result.next, 302);
}

/**
 * A provider's round trip that failed: the person is sent back to `/signin`
 * with the reason, never shown an error page. Reef's own refusals carry their
 * sentence and are logged as info; anything else is a fault, logged as an error
 * and told in general words (its message may hold details not meant for them).
 */
export function ssoFailureRedirect(request: FastifyRequest, reply: FastifyReply, err: unknown, slug: string) {
  if (err instanceof AppError) {
    request.log.info({ code: err.code, slug }, "single sign-on refused");
    return reply.redirect(signinErrorUrl(err.code, err.message), 302);
  }
  request.log.error({ err, slug }, "single sign-on failed");
  return reply.redirect(
    signinErrorUrl("SSO_FAILED", "Signing in with your provider failed. Try again, or ask your administrator."),
    302,
  );
}
