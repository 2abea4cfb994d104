import { randomBytes } from "node:crypto";

/** A fresh double-submit CSRF token. */
export function newCsrfToken(): string {
  return randomBytes(24).toString("base64url");
}
