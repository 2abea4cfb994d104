import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/** Authenticated encryption of small secrets under a key derived from the root key. */
export interface Sealer {
  seal(plaintext: string, aad: string): string;
  /** Throws if the text was sealed under another key or for another `aad`. */
  open(sealed: string, aad: string): string;
}

/**
 * AES-256-GCM with a key derived (HKDF-SHA256) from the root key for one
 * purpose, binding each ciphertext to its row through `aad`, so a sealed value
 * moved to another row does not open.
 */
export function createSealer(root: Buffer | { current: Buffer; previous: Buffer[] }, purpose: string): Sealer {
  const roots = Buffer.isBuffer(root) ? [root] : [root.current, ...root.previous];
  const derive = (k: Buffer) => Buffer.from(hkdfSync("sha256", k, Buffer.from("reef"), Buffer.from(purpose), 32));
  const [key, ...older] = roots.map(derive) as [Buffer, ...Buffer[]];
  const openWith = (k: Buffer, sealed: string, aad: string) => {
    const [version, iv, ct, tag] = sealed.split(".");
    if (version !== "v1" || !iv || ct === undefined || !tag) throw new Error("not a sealed value");
    const decipher = createDecipheriv("aes-256-gcm", k, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString("utf8");
  };
  return {
    seal(plaintext, aad) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      cipher.setAAD(Buffer.from(aad));
      const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return ["v1", iv.toString("base64url"), ct.toString("base64url"), cipher.getAuthTag().toString("base64url")].join(
        ".",
      );
    },
    open(sealed, aad) {
      try {
        return openWith(key, sealed, aad);
      } catch (err) {
        // Sealed before a root-key rotation: the previous keys still open it.
        for (const k of older) {
          try {
            return openWith(k, sealed, aad);
          } catch {}
        }
        throw err;
      }
    },
  };
}
