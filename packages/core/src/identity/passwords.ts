import { hash, verify } from "@node-rs/argon2";
import { BadRequestError } from "@reef/contracts";

// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
// 2 = Argon2id (the package exposes it as a const enum, which type stripping cannot read).
const OPTIONS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 256;

// The handful of passwords every credential-stuffing list starts with.
const COMMON = new Set([
  "password123",
  "password1234",
  "1234567890",
  "12345678910",
  "qwertyuiop",
  "iloveyou123",
  "letmein1234",
  "passw0rd123",
  "administrator",
  "welcome123",
  "changeme123",
]);

/** Throws a BadRequest naming what is wrong with a new password. */
export function checkPasswordPolicy(password: string, email: string): void {
  const problems: string[] = [];
  if (password.length < PASSWORD_MIN) problems.push(`use at least ${PASSWORD_MIN} characters`);
  if (password.length > PASSWORD_MAX) problems.push(`use at most ${PASSWORD_MAX} characters`);
  if (COMMON.has(password.toLowerCase())) problems.push("choose a less common password");
  if (password.toLowerCase() === email.toLowerCase()) problems.push("do not use your email address as password");
  if (/^(.)\1+$/.test(password)) problems.push("do not repeat a single character");
  if (problems.length) {
    throw new BadRequestError(
      `The password is too weak: ${problems.join("; ")}.`,
      [{ in: "body", path: "password", message: problems.join("; ") }],
      "VALIDATION_FAILED",
    );
  }
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

let dummy: Promise<string> | undefined;

/**
 * Verifies a password. With no stored hash it still spends the time of a real
 * verification, so response times do not reveal which emails have accounts.
 */
export async function verifyPassword(stored: string | null | undefined, password: string): Promise<boolean> {
  if (!stored) {
    dummy ??= hash("reef-dummy-password-for-timing", OPTIONS);
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  return verify(stored, password).catch(() => false);
}
