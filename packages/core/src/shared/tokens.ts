import { createHash, randomBytes } from "node:crypto";

/** A new secret token: 32 random bytes, base64url, with a recognisable prefix. */
export function newToken(prefix: string): string {
  return `${prefix}${randomBytes(32).toString("base64url")}`;
}

/**
 * Tokens are high-entropy, so a plain SHA-256 is the right storage hash: fast to
 * look up, useless to anyone who reads the table.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
