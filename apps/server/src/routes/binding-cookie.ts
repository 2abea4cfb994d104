import type { FastifyReply, FastifyRequest } from "fastify";

/** Where a binding cookie is sent, for how long, and whether only over https. */
export interface BindingCookieOptions {
  name: string;
  /** Only the routes that check the binding get the cookie. */
  path: string;
  maxAgeS: number;
  /** Reef is served over https: the cookie gets Secure. */
  secure: boolean;
}

/** Reads, sets and clears one binding cookie. */
export interface BindingCookie {
  name: string;
  read(request: FastifyRequest): string | undefined;
  set(reply: FastifyReply, value: string): void;
  clear(reply: FastifyReply): void;
}

/**
 * A short-lived cookie tying a sign-in step to the browser that started it
 * (`reef_link` for emailed links, `reef_sso` for an OIDC sign-in), so a link or
 * callback replayed from another browser fails. HttpOnly (page scripts never
 * need it) and SameSite=Lax: it must come back on the top-level navigation from
 * the mail client or the identity provider, which Strict would drop.
 */
export function bindingCookie(opts: BindingCookieOptions): BindingCookie {
  const options = { path: opts.path, httpOnly: true, sameSite: "lax" as const, secure: opts.secure };
  return {
    name: opts.name,
    read: (request) => request.cookies[opts.name],
    set: (reply, value) => {
      reply.setCookie(opts.name, value, { ...options, maxAge: opts.maxAgeS });
    },
    clear: (reply) => {
      // Cleared with the attributes it was set with, or the browser keeps it.
      reply.clearCookie(opts.name, options);
    },
  };
}
