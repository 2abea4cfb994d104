import { createHash, randomInt } from "node:crypto";
import { generateSecret, generateURI, verify } from "otplib";

/** RFC 6238 as every authenticator app reads it: SHA-1, 6 digits, 30-second steps. */
const PERIOD_SEC = 30;
/** One step either side, for clocks a little apart and codes typed as they roll over. */
const TOLERANCE_SEC = PERIOD_SEC;

/** A new TOTP seed: 20 random bytes (160 bits, the RFC's recommendation), base32. */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

/** The `otpauth://` URI an authenticator app scans, labelled "Reef" and the account's email. */
export function totpUri(secret: string, email: string): string {
  return generateURI({ issuer: "Reef", label: email, secret, algorithm: "sha1", digits: 6, period: PERIOD_SEC });
}

/**
 * Checks a code against the seed. @returns the time step it belongs to, or
 * undefined when it is wrong or its step is not after `lastStep` (each code,
 * and any earlier one, is accepted once).
 */
export async function acceptTotpCode(
  secret: string,
  code: string,
  lastStep: number | null | undefined,
): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  const epoch = Math.floor(Date.now() / 1000);
  const result = await verify({
    secret,
    token: code,
    algorithm: "sha1",
    digits: 6,
    period: PERIOD_SEC,
    epoch,
    epochTolerance: TOLERANCE_SEC,
  });
  if (!result.valid) return undefined;
  const step = Math.floor(epoch / PERIOD_SEC) + result.delta;
  if (lastStep != null && step <= lastStep) return undefined;
  return step;
}

const RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";

/** Ten one-time recovery codes like `abcd-efgh-ijkl` (about 60 bits each), from the crypto RNG. */
export function newRecoveryCodes(count = 10): string[] {
  return Array.from({ length: count }, () =>
    Array.from({ length: 3 }, () =>
      Array.from({ length: 4 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join(""),
    ).join("-"),
  );
}

/** How a recovery code is stored and looked up: case, spaces and dashes do not matter when typed. */
export function hashRecoveryCode(code: string): string {
  const normal = code.toLowerCase().replace(/[^a-z0-9]/g, "");
  return createHash("sha256").update(`reef-recovery:${normal}`).digest("hex");
}
