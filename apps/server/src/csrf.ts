import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/**
 * CSRF tokens bound to the session: the token is an HMAC of the session's id
 * under a key derived from the root key, so only the server can make one, a
 * token works only with its own session, and every replica agrees without
 * storing anything. The browser still reads it from a cookie (the web app
 * echoes it in `x-csrf-token`), but the cookie's value is never trusted: a
 * self-made cookie and header pair proves nothing.
 */
export interface CsrfTokens {
  /** The token for a session, set as the readable CSRF cookie at sign-in. */
  tokenFor(sessionId: string): string;
  /** Whether `presented` is the session's token (under the current or a previous root key), in constant time. */
  verify(sessionId: string, presented: string): boolean;
}

const RECENT_MAX = 10_000;

function deriveKey(root: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", root, Buffer.from("reef"), Buffer.from("csrf/v1"), 32));
}

function mac(key: Buffer, sessionId: string): Buffer {
  return createHmac("sha256", key).update(`session:${sessionId}`).digest();
}

/** `roots`: the current root key first, then previous ones still accepted during a key rotation. */
export function createCsrfTokens(roots: readonly Buffer[]): CsrfTokens {
  const keys = roots.map(deriveKey);
  const [current] = keys;
  if (!current) throw new Error("createCsrfTokens needs the root key");
  // Every cookie-authenticated request asks for its session's token (to re-send a
  // stale cookie); remembering recent ones keeps an HMAC off the hot path.
  const recent = new Map<string, string>();
  return {
    tokenFor(sessionId) {
      let token = recent.get(sessionId);
      if (token === undefined) {
        token = mac(current, sessionId).toString("base64url");
        if (recent.size >= RECENT_MAX) recent.clear();
        recent.set(sessionId, token);
      }
      return token;
    },
    verify(sessionId, presented) {
      const given = Buffer.from(presented, "base64url");
      // base64url decoding ignores stray characters: insist the text round-trips.
      if (given.length !== 32 || given.toString("base64url") !== presented) return false;
      let ok = false;
      for (const key of keys) ok = timingSafeEqual(mac(key, sessionId), given) || ok;
      return ok;
    },
  };
}

/**
 * The cookie names. On https they carry the `__Host-` prefix, which browsers
 * accept only with Secure, Path=/ and no Domain: a sibling subdomain or a
 * plain-http page cannot plant or shadow them. Plain http keeps plain names,
 * since browsers refuse `__Host-` cookies without Secure.
 */
export function cookieNames(secure: boolean): { session: string; csrf: string } {
  const prefix = secure ? "__Host-" : "";
  return { session: `${prefix}reef_session`, csrf: `${prefix}reef_csrf` };
}
