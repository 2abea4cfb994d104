import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AppError, BadRequestError } from "@reef/contracts";

/** How far a signed call's timestamp may be from Reef's clock, either way. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** A fresh signing secret: 32 random bytes, recognisable in a leak scan by its prefix. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`;
}

/** The signature header's value for a body: `sha256=` + hex HMAC of `${timestamp}.${deliveryId}.${body}`. */
export function signWebhook(secret: string, timestamp: number, deliveryId: string, body: string | Buffer): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.${deliveryId}.`).update(body).digest("hex");
  return `sha256=${mac}`;
}

/** The headers a signed call carries (WEBHOOK_HEADERS), as received. */
export interface SignedHeaders {
  timestamp?: string | undefined;
  delivery?: string | undefined;
  signature?: string | undefined;
}

/**
 * Checks a call's signature and freshness. The signature is checked first, so
 * nobody without the secret learns anything from the other answers.
 * @returns the delivery id (its uniqueness is checked where runs are recorded).
 * @throws SIGNATURE_INVALID (missing or wrong), SIGNATURE_EXPIRED (signed more than 5 minutes away from now).
 */
export function verifyWebhook(
  secret: string,
  headers: SignedHeaders,
  rawBody: string | Buffer,
  now = Date.now(),
): { deliveryId: string; timestamp: number } {
  const { timestamp, delivery, signature } = headers;
  if (!timestamp || !delivery || !signature) {
    throw new AppError(
      "SIGNATURE_INVALID",
      "The call is not signed: send X-Reef-Timestamp, X-Reef-Delivery and X-Reef-Signature (see the trigger's page).",
    );
  }
  if (!/^\d{1,12}$/.test(timestamp)) {
    throw new BadRequestError("X-Reef-Timestamp must be Unix time in seconds.", { header: "x-reef-timestamp" });
  }
  if (delivery.length > 200 || !/^[\x21-\x7e]+$/.test(delivery)) {
    throw new BadRequestError("X-Reef-Delivery must be 1 to 200 printable characters without spaces.", {
      header: "x-reef-delivery",
    });
  }
  const ts = Number(timestamp);
  const expected = Buffer.from(signWebhook(secret, ts, delivery, rawBody));
  const given = Buffer.from(signature.trim());
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new AppError("SIGNATURE_INVALID", "The signature does not match this trigger's secret.");
  }
  if (Math.abs(now / 1000 - ts) > WEBHOOK_TOLERANCE_SECONDS) {
    throw new AppError(
      "SIGNATURE_EXPIRED",
      "The call was signed more than 5 minutes ago (or ahead of this server's clock): sign it again with the current time.",
    );
  }
  return { deliveryId: delivery, timestamp: ts };
}
