import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decrypt, encrypt, rootKeyId, secretAad, unwrapDataKey, wrapDataKey } from "./envelope.ts";

describe("vault envelope", () => {
  it("names a root key by a stable fingerprint that differs per key and is not the key", () => {
    const key = randomBytes(32);
    expect(rootKeyId(key)).toMatch(/^[0-9a-f]{16}$/);
    expect(rootKeyId(Buffer.from(key))).toBe(rootKeyId(key));
    expect(rootKeyId(randomBytes(32))).not.toBe(rootKeyId(key));
    expect(key.toString("hex")).not.toContain(rootKeyId(key));
  });

  it("wraps a data key so that only the same root key, workspace and version unwrap it", () => {
    const [root, other] = [randomBytes(32), randomBytes(32)];
    const dataKey = randomBytes(32);
    const wid = randomUUID();
    const wrapped = wrapDataKey(root, dataKey, wid, 1);
    expect(wrapped).not.toContain(dataKey.toString("base64url"));
    expect(unwrapDataKey(root, wrapped, wid, 1).equals(dataKey)).toBe(true);
    // Fresh IV each time: wrapping twice never repeats a ciphertext.
    expect(wrapDataKey(root, dataKey, wid, 1)).not.toBe(wrapped);
    expect(() => unwrapDataKey(other, wrapped, wid, 1)).toThrow();
    expect(() => unwrapDataKey(root, wrapped, randomUUID(), 1)).toThrow();
    expect(() => unwrapDataKey(root, wrapped, wid, 2)).toThrow();
    const [iv, ct, tag] = wrapped.split(".") as [string, string, string];
    const flipped = Buffer.from(ct, "base64url");
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(() => unwrapDataKey(root, [iv, flipped.toString("base64url"), tag].join("."), wid, 1)).toThrow();
    expect(() => unwrapDataKey(root, `${iv}.${ct}`, wid, 1)).toThrow(/malformed/);
  });

  it("binds a sealed secret to its workspace and record", () => {
    const key = randomBytes(32);
    const wid = randomUUID();
    const parts = encrypt(key, Buffer.from("sk-secret"), secretAad(wid, "r1"));
    expect(decrypt(key, parts, secretAad(wid, "r1")).toString()).toBe("sk-secret");
    expect(() => decrypt(key, parts, secretAad(wid, "r2"))).toThrow();
    expect(() => decrypt(key, parts, secretAad(randomUUID(), "r1"))).toThrow();
  });
});
