import { randomBytes, randomUUID } from "node:crypto";
import { type Tx, withScope } from "@reef/db";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unwrapDataKey } from "../src/vault/envelope.ts";
import { checkRootKey, createVault, rootKeyId, rotateRootKey, VaultKeyError } from "../src/vault/vault-service.ts";

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const keyC = randomBytes(32);

/** A database of its own per describe block: rotation and the start-up check see every row. */
function useDatabase() {
  const ref: { t: TestDatabase } = {} as { t: TestDatabase };
  beforeAll(async () => {
    ref.t = await createTestDatabase();
  });
  afterAll(() => ref.t.drop());
  return {
    get t() {
      return ref.t;
    },
    async workspace(): Promise<string> {
      const id = randomUUID();
      await ref.t.owner.query("insert into workspaces (id, name) values ($1, 'vault test')", [id]);
      return id;
    },
    inWs<T>(wid: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
      return withScope(ref.t.database.db, { workspaceId: wid }, fn);
    },
    async keyRows(wid: string) {
      const { rows } = await ref.t.owner.query(
        "select version, wrapped_key, root_key_id from workspace_keys where workspace_id = $1",
        [wid],
      );
      return rows as { version: number; wrapped_key: string; root_key_id: string }[];
    },
  };
}

describe("vault", () => {
  const d = useDatabase();
  const vault = () => createVault({ keyring: { current: keyA, previous: [] } });

  it("seals and opens a secret; the stored form carries the key version and not the secret", async () => {
    const wid = await d.workspace();
    const v = vault();
    const sealed = await d.inWs(wid, (tx) => v.seal(tx, wid, "rec-1", "sk-live-secret"));
    expect(sealed).toMatch(/^v1\.1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain("sk-live");
    expect(await d.inWs(wid, (tx) => v.open(tx, wid, "rec-1", sealed))).toBe("sk-live-secret");
    // A fresh vault (another replica, a restart) opens it too: the key is in the database, not in memory.
    expect(await d.inWs(wid, (tx) => vault().open(tx, wid, "rec-1", sealed))).toBe("sk-live-secret");
    const rows = await d.keyRows(wid);
    expect(rows).toEqual([expect.objectContaining({ version: 1, root_key_id: rootKeyId(keyA) })]);
  });

  it("a ciphertext moved to another record or workspace, or tampered with, does not open", async () => {
    const w1 = await d.workspace();
    const w2 = await d.workspace();
    const v = vault();
    const sealed = await d.inWs(w1, (tx) => v.seal(tx, w1, "rec", "secret"));
    await d.inWs(w2, (tx) => v.seal(tx, w2, "rec", "other secret"));
    expect(await d.inWs(w1, (tx) => v.open(tx, w1, "rec", sealed))).toBe("secret");
    await expect(d.inWs(w1, (tx) => v.open(tx, w1, "other-rec", sealed))).rejects.toThrow();
    await expect(d.inWs(w2, (tx) => v.open(tx, w2, "rec", sealed))).rejects.toThrow();
    const parts = sealed.split(".");
    for (const i of [2, 3, 4]) {
      const bytes = Buffer.from(parts[i] ?? "", "base64url");
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      const tampered = parts.with(i, bytes.toString("base64url")).join(".");
      await expect(d.inWs(w1, (tx) => v.open(tx, w1, "rec", tampered))).rejects.toThrow();
    }
    // A version this workspace has no key for.
    await expect(d.inWs(w1, (tx) => v.open(tx, w1, "rec", parts.with(1, "7").join(".")))).rejects.toThrow(
      /no data key version 7/,
    );
    await expect(d.inWs(w1, (tx) => v.open(tx, w1, "rec", "plain text"))).rejects.toThrow(/not a vault-sealed value/);
  });

  it("gives every workspace its own data key", async () => {
    const [w1, w2] = [await d.workspace(), await d.workspace()];
    const v = vault();
    await d.inWs(w1, (tx) => v.seal(tx, w1, "r", "s"));
    await d.inWs(w2, (tx) => v.seal(tx, w2, "r", "s"));
    const [k1, k2] = await Promise.all(
      [w1, w2].map(async (wid) => {
        const [row] = await d.keyRows(wid);
        return unwrapDataKey(keyA, row?.wrapped_key ?? "", wid, 1);
      }),
    );
    expect(k1).toHaveLength(32);
    expect(k1?.equals(k2 as Buffer)).toBe(false);
  });

  it("concurrent first seals in one workspace end with one data key that opens them all", async () => {
    const wid = await d.workspace();
    const sealed = await Promise.all(
      Array.from({ length: 8 }, (_, i) => d.inWs(wid, (tx) => vault().seal(tx, wid, `r${i}`, `s${i}`))),
    );
    expect(await d.keyRows(wid)).toHaveLength(1);
    const v = vault();
    for (const [i, s] of sealed.entries()) {
      expect(await d.inWs(wid, (tx) => v.open(tx, wid, `r${i}`, s))).toBe(`s${i}`);
    }
  });

  it("a data key created in a transaction that rolls back is not remembered", async () => {
    const wid = await d.workspace();
    const v = vault();
    await expect(
      d.inWs(wid, async (tx) => {
        await v.seal(tx, wid, "r", "s");
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const sealed = await d.inWs(wid, (tx) => v.seal(tx, wid, "r", "s"));
    expect(await d.inWs(wid, (tx) => vault().open(tx, wid, "r", sealed))).toBe("s");
  });

  it("does not open a data key wrapped by a root key it was not given", async () => {
    const wid = await d.workspace();
    const sealed = await d.inWs(wid, (tx) => vault().seal(tx, wid, "r", "s"));
    const other = createVault({ keyring: { current: keyB, previous: [] } });
    await expect(d.inWs(wid, (tx) => other.open(tx, wid, "r", sealed))).rejects.toBeInstanceOf(VaultKeyError);
  });
});

describe("root key check and rotation", () => {
  const d = useDatabase();

  /** A provider row holding a vault-sealed key, as the provider service stores it. */
  async function storedSecret(wid: string, v = createVault({ keyring: { current: keyA, previous: [] } })) {
    const id = randomUUID();
    const sealed = await d.inWs(wid, (tx) => v.seal(tx, wid, id, `sk-${id}`));
    await d.t.owner.query(
      "insert into providers (id, workspace_id, name, kind, base_url, api_key_sealed) values ($1, $2, $3, 'openai', 'https://api.example', $4)",
      [id, wid, `p-${id}`, sealed],
    );
    return id;
  }
  const stored = async (id: string) =>
    (await d.t.owner.query("select api_key_sealed from providers where id = $1", [id])).rows[0]
      ?.api_key_sealed as string;

  it("records the root key on a fresh database and refuses another key with what to do", async () => {
    await checkRootKey(d.t.database.db, { current: keyA, previous: [] });
    const { rows } = await d.t.owner.query("select root_key_id from vault_state");
    expect(rows).toEqual([{ root_key_id: rootKeyId(keyA) }]);
    // Before any secret exists, a different key is already refused.
    const wrong = checkRootKey(d.t.database.db, { current: keyB, previous: [] });
    await expect(wrong).rejects.toBeInstanceOf(VaultKeyError);
    await expect(wrong).rejects.toThrow(
      `REEF_SECRET_KEY does not match the key this database's vault was created with (key id ${rootKeyId(keyA)}; the configured key is ${rootKeyId(keyB)})`,
    );
    await expect(wrong).rejects.toThrow(/put the old key in REEF_SECRET_KEY_PREVIOUS and run `reef rotate-keys`/);
    // The old key as previous is accepted.
    await checkRootKey(d.t.database.db, { current: keyB, previous: [keyA] });
  });

  it("rotation rewraps data keys under the new key without touching the secrets", async () => {
    const [w1, w2] = [await d.workspace(), await d.workspace()];
    const p1 = await storedSecret(w1);
    const p2 = await storedSecret(w2);
    const before = { p1: await stored(p1), p2: await stored(p2), keys: await d.keyRows(w1) };

    // A vault holding only the new key cannot read what the old key wraps.
    const onlyB = createVault({ keyring: { current: keyB, previous: [] } });
    await expect(d.inWs(w1, (tx) => onlyB.open(tx, w1, p1, before.p1))).rejects.toBeInstanceOf(VaultKeyError);
    // Without the old key, rotation changes nothing and says which key is missing.
    await expect(rotateRootKey(d.t.database.db, { current: keyB, previous: [] })).rejects.toThrow(
      new RegExp(`root key ${rootKeyId(keyA)}.*REEF_SECRET_KEY_PREVIOUS`),
    );
    expect(await d.keyRows(w1)).toEqual(before.keys);

    // During the rotation, the new key (with the old one as previous) reads everything.
    const both = createVault({ keyring: { current: keyB, previous: [keyA] } });
    expect(await d.inWs(w1, (tx) => both.open(tx, w1, p1, before.p1))).toBe(`sk-${p1}`);

    expect(await rotateRootKey(d.t.database.db, { current: keyB, previous: [keyA] })).toEqual({
      rewrapped: 2,
      alreadyCurrent: 0,
    });
    expect(await rotateRootKey(d.t.database.db, { current: keyB, previous: [keyA] })).toEqual({
      rewrapped: 0,
      alreadyCurrent: 2,
    });
    const after = await d.keyRows(w1);
    expect(after).toEqual([expect.objectContaining({ version: 1, root_key_id: rootKeyId(keyB) })]);
    expect(after[0]?.wrapped_key).not.toBe(before.keys[0]?.wrapped_key);
    // Same data key, rewrapped; the stored secrets are byte for byte what they were.
    expect(
      unwrapDataKey(keyB, after[0]?.wrapped_key ?? "", w1, 1).equals(
        unwrapDataKey(keyA, before.keys[0]?.wrapped_key ?? "", w1, 1),
      ),
    ).toBe(true);
    expect(await stored(p1)).toBe(before.p1);
    expect(await stored(p2)).toBe(before.p2);
    // Only the new key now: it opens them, the old key is refused at start-up.
    const fresh = createVault({ keyring: { current: keyB, previous: [] } });
    expect(await d.inWs(w1, (tx) => fresh.open(tx, w1, p1, before.p1))).toBe(`sk-${p1}`);
    expect(await d.inWs(w2, (tx) => fresh.open(tx, w2, p2, before.p2))).toBe(`sk-${p2}`);
    await checkRootKey(d.t.database.db, { current: keyB, previous: [] });
    await expect(checkRootKey(d.t.database.db, { current: keyA, previous: [] })).rejects.toBeInstanceOf(VaultKeyError);
    expect((await d.t.owner.query("select root_key_id from vault_state")).rows).toEqual([
      { root_key_id: rootKeyId(keyB) },
    ]);

    const audit = await d.t.owner.query(
      "select details from platform_audit_log where action = 'vault.rotate_root_key' order by id",
    );
    expect(audit.rows.map((r) => r.details)).toEqual([
      { rootKeyId: rootKeyId(keyB), rewrapped: 2, alreadyCurrent: 0 },
      { rootKeyId: rootKeyId(keyB), rewrapped: 0, alreadyCurrent: 2 },
    ]);
  });

  it("concurrent rotations rewrap each key once", async () => {
    const wids = await Promise.all(Array.from({ length: 5 }, () => d.workspace()));
    const v = createVault({ keyring: { current: keyB, previous: [] } });
    for (const wid of wids) await storedSecret(wid, v);
    const { rows } = await d.t.owner.query("select count(*)::int as n from workspace_keys");
    const results = await Promise.all(
      [1, 2, 3].map(() => rotateRootKey(d.t.database.db, { current: keyC, previous: [keyB] })),
    );
    expect(results.reduce((n, r) => n + r.rewrapped, 0)).toBe(rows[0].n);
    for (const r of results) expect(r.rewrapped + r.alreadyCurrent).toBe(rows[0].n);
    const ids = await d.t.owner.query("select distinct root_key_id from workspace_keys");
    expect(ids.rows).toEqual([{ root_key_id: rootKeyId(keyC) }]);
    await checkRootKey(d.t.database.db, { current: keyC, previous: [] });
  });

  it("a damaged data key row stops the start-up check even though its key id matches", async () => {
    const wid = await d.workspace();
    await storedSecret(wid, createVault({ keyring: { current: keyC, previous: [] } }));
    await checkRootKey(d.t.database.db, { current: keyC, previous: [] });
    // One row per root key is unwrapped at start-up: damage them all, so whichever is sampled is damaged.
    await d.t.owner.query("update workspace_keys set wrapped_key = 'AAAA.AAAA.AAAA'");
    await expect(checkRootKey(d.t.database.db, { current: keyC, previous: [] })).rejects.toThrow(
      /data key does not open with root key/,
    );
  });
});
