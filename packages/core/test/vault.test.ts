import { randomBytes, randomUUID } from "node:crypto";
import { createDb, withScope } from "@reef/db";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRootKey, createVault, rootKeyId, rotateRootKey, VaultKeyError } from "../src/vault/vault-service.ts";

let t: TestDatabase;
const keyA = randomBytes(32);
const keyB = randomBytes(32);

async function workspace(): Promise<string> {
  const id = randomUUID();
  await t.owner.query("insert into workspaces (id, name) values ($1, 'vault test')", [id]);
  return id;
}

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.drop());

describe("vault", () => {
  const vault = () => createVault({ keyring: { current: keyA, previous: [] } });
  const inWs = <T>(wid: string, fn: Parameters<typeof withScope<T>>[2]) =>
    withScope(t.database.db, { workspaceId: wid }, fn);

  it("seals and opens a secret; the stored form carries the key version and not the secret", async () => {
    const wid = await workspace();
    const v = vault();
    const sealed = await inWs(wid, (tx) => v.seal(tx, wid, "rec-1", "sk-live-secret"));
    expect(sealed).toMatch(/^v1\.1\./);
    expect(sealed).not.toContain("sk-live");
    expect(await inWs(wid, (tx) => v.open(tx, wid, "rec-1", sealed))).toBe("sk-live-secret");
    // A fresh vault (another replica, a restart) opens it too.
    expect(await inWs(wid, (tx) => vault().open(tx, wid, "rec-1", sealed))).toBe("sk-live-secret");
  });

  it("a ciphertext moved to another record or workspace, or tampered with, does not open", async () => {
    const w1 = await workspace();
    const w2 = await workspace();
    const v = vault();
    const sealed = await inWs(w1, (tx) => v.seal(tx, w1, "rec", "secret"));
    await inWs(w2, (tx) => v.seal(tx, w2, "rec", "other secret"));
    await expect(inWs(w1, (tx) => v.open(tx, w1, "other-rec", sealed))).rejects.toThrow();
    await expect(inWs(w2, (tx) => v.open(tx, w2, "rec", sealed))).rejects.toThrow();
    const parts = sealed.split(".");
    parts[3] = Buffer.from("tampered").toString("base64url");
    await expect(inWs(w1, (tx) => v.open(tx, w1, "rec", parts.join(".")))).rejects.toThrow();
    // Each workspace has its own data key.
    const { rows } = await t.owner.query("select wrapped_key from workspace_keys where workspace_id = any($1)", [
      [w1, w2],
    ]);
    expect(rows).toHaveLength(2);
    expect(rows[0].wrapped_key).not.toBe(rows[1].wrapped_key);
  });

  it("concurrent first seals in one workspace end with one data key that opens them all", async () => {
    const wid = await workspace();
    const sealed = await Promise.all(
      Array.from({ length: 8 }, (_, i) => inWs(wid, (tx) => vault().seal(tx, wid, `r${i}`, `s${i}`))),
    );
    const { rows } = await t.owner.query("select count(*)::int as n from workspace_keys where workspace_id = $1", [
      wid,
    ]);
    expect(rows[0].n).toBe(1);
    const v = vault();
    for (const [i, s] of sealed.entries()) expect(await inWs(wid, (tx) => v.open(tx, wid, `r${i}`, s))).toBe(`s${i}`);
  });

  it("a data key created in a transaction that rolls back is not remembered", async () => {
    const wid = await workspace();
    const v = vault();
    await expect(
      inWs(wid, async (tx) => {
        await v.seal(tx, wid, "r", "s");
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const sealed = await inWs(wid, (tx) => v.seal(tx, wid, "r", "s"));
    expect(await inWs(wid, (tx) => vault().open(tx, wid, "r", sealed))).toBe("s");
  });

  it("checks the root key at start-up, and rotation rewraps data keys without re-encrypting secrets", async () => {
    await checkRootKey(t.database.db, { current: keyA, previous: [] });
    const wid = await workspace();
    const sealed = await inWs(wid, (tx) => vault().seal(tx, wid, "rec", "kept secret"));

    // The wrong key fails at once, with what to do.
    const wrong = checkRootKey(t.database.db, { current: keyB, previous: [] });
    await expect(wrong).rejects.toBeInstanceOf(VaultKeyError);
    await expect(checkRootKey(t.database.db, { current: keyB, previous: [] })).rejects.toThrow(
      /REEF_SECRET_KEY does not match.*REEF_SECRET_KEY_PREVIOUS.*reef rotate-keys/,
    );
    // New key with the old one as previous: accepted, and both open the secret.
    await checkRootKey(t.database.db, { current: keyB, previous: [keyA] });
    const both = createVault({ keyring: { current: keyB, previous: [keyA] } });
    expect(await inWs(wid, (tx) => both.open(tx, wid, "rec", sealed))).toBe("kept secret");

    const result = await rotateRootKey(createDb(t.owner), { current: keyB, previous: [keyA] });
    expect(result.rewrapped).toBeGreaterThanOrEqual(1);
    const again = await rotateRootKey(createDb(t.owner), { current: keyB, previous: [keyA] });
    expect(again.rewrapped).toBe(0);
    const { rows } = await t.owner.query("select distinct root_key_id from workspace_keys");
    expect(rows.map((r) => r.root_key_id)).toEqual([rootKeyId(keyB)]);
    // Only the new key now; the stored secret was not touched.
    const onlyB = createVault({ keyring: { current: keyB, previous: [] } });
    expect(await inWs(wid, (tx) => onlyB.open(tx, wid, "rec", sealed))).toBe("kept secret");
    await checkRootKey(t.database.db, { current: keyB, previous: [] });
    await expect(checkRootKey(t.database.db, { current: keyA, previous: [] })).rejects.toBeInstanceOf(VaultKeyError);
    const audit = await t.owner.query("select details from platform_audit_log where action = 'vault.rotate_root_key'");
    expect(audit.rows).toHaveLength(2);
    expect(JSON.stringify(audit.rows)).not.toContain(keyB.toString("base64"));
  });
});
