import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from "node:crypto";

/**
 * The vault's cryptography, without storage: AES-256-GCM everywhere, a key
 * encryption key derived (HKDF-SHA256) from the root key, and additional data
 * that binds every ciphertext to where it belongs.
 */

const ALG = "aes-256-gcm";

/** A fingerprint of a root key (HMAC-based, reveals nothing about the key), stored with what it wraps. */
export function rootKeyId(key: Buffer): string {
  return createHmac("sha256", key).update("reef/vault/root-key-id/v1").digest("hex").slice(0, 16);
}

/** The key that wraps data keys; never the root key itself, so the root key serves other purposes safely. */
function kek(root: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", root, Buffer.from("reef"), Buffer.from("vault/kek/v1"), 32));
}

/** `[iv, ciphertext, tag]`, base64url. */
export function encrypt(key: Buffer, plaintext: Buffer, aad: string): string[] {
  const iv = randomBytes(12);
  const cipher = createCipheriv(ALG, key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [iv.toString("base64url"), ct.toString("base64url"), cipher.getAuthTag().toString("base64url")];
}

/** Opens what {@link encrypt} made; throws on a wrong key, wrong `aad` or any change. */
export function decrypt(key: Buffer, parts: string[], aad: string): Buffer {
  const [iv, ct, tag] = parts;
  if (parts.length !== 3 || !iv || ct === undefined || !tag) throw new Error("malformed sealed value");
  const decipher = createDecipheriv(ALG, key, Buffer.from(iv, "base64url"));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]);
}

const wrapAad = (workspaceId: string, version: number) => `reef/workspace-key/${workspaceId}/${version}`;

/** Additional data of a sealed secret: a value copied to another record or workspace does not open. */
export const secretAad = (workspaceId: string, recordId: string) => `reef/secret/${workspaceId}/${recordId}`;

/** Wraps a workspace data key under a root key, bound to the workspace and key version: `<iv>.<ct>.<tag>`. */
export function wrapDataKey(root: Buffer, dataKey: Buffer, workspaceId: string, version: number): string {
  return encrypt(kek(root), dataKey, wrapAad(workspaceId, version)).join(".");
}

/** Unwraps what {@link wrapDataKey} made; throws if the root key, workspace or version differ. */
export function unwrapDataKey(root: Buffer, wrapped: string, workspaceId: string, version: number): Buffer {
  return decrypt(kek(root), wrapped.split("."), wrapAad(workspaceId, version));
}
