import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/** Authenticated encryption of small secrets under a key derived from the root key. */
export interface Sealer {
  seal(plaintext: string, aad: string): string;
  /** Throws if the text was sealed under another key (not the current or a previous root key) or for another `aad`. */
  open(sealed: string, aad: string): string;
  /**
   * The value sealed again under the current root key if it was sealed under a
   * previous one; undefined if it already is current. Throws like {@link Sealer.open}.
   */
  reseal(sealed: string, aad: string): string | undefined;
}

/**
 * AES-256-GCM with a key derived (HKDF-SHA256) from the root key for one
 * purpose, binding each ciphertext to its row through `aad`, so a sealed value
 * moved to another row does not open. Given previous root keys too, it seals
 * with the current one and opens what any of them sealed (a root-key rotation
 * must not strand values sealed before it).
 */
export function createSealer(root: Buffer | { current: Buffer; previous: Buffer[] }, purpose: string): Sealer {
  const roots = Buffer.isBuffer(root) ? [root] : [root.current, ...root.previous];
  const derive = (k: Buffer) => Buffer.from(hkdfSync("sha256", k, Buffer.from("reef"), Buffer.from(purpose), 32));
  const keys = roots.map(derive);
  const key = keys[0] as Buffer;

  const openWith = (k: Buffer, sealed: string, aad: string) => {
    const [version, iv, ct, tag] = sealed.split(".");
    if (version !== "v1" || !iv || ct === undefined || !tag) throw new Error("not a sealed value");
    const decipher = createDecipheriv("aes-256-gcm", k, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString("utf8");
  };
  /** The plaintext, and whether the current key opened it. */
  const openAny = (sealed: string, aad: string): { plaintext: string; current: boolean } => {
    let first: unknown;
    for (const [i, k] of keys.entries()) {
      try {
        return { plaintext: openWith(k, sealed, aad), current: i === 0 };
      } catch (err) {
        first ??= err;
      }
    }
    throw first;
  };
  const seal = (plaintext: string, aad: string) => {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return ["v1", iv.toString("base64url"), ct.toString("base64url"), cipher.getAuthTag().toString("base64url")].join(
      ".",
    );
  };
  return {
    seal,
    open: (sealed, aad) => openAny(sealed, aad).plaintext,
    reseal(sealed, aad) {
      const opened = openAny(sealed, aad);
      return opened.current ? undefined : seal(opened.plaintext, aad);
    },
  };
}
