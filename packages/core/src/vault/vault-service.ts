import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { type Db, schema, type Tx, withScope } from "@reef/db";
import { and, eq, ne } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";

const { workspaceKeys, vaultState } = schema;

/** The root key in use, and older ones still accepted while a rotation is under way. */
export interface RootKeyring {
  current: Buffer;
  previous: Buffer[];
}

/** A fingerprint of a root key (HMAC-based, reveals nothing about the key), stored with what it wraps. */
export function rootKeyId(key: Buffer): string {
  return createHmac("sha256", key).update("reef/vault/root-key-id/v1").digest("hex").slice(0, 16);
}

/** The configured root key(s) cannot open what the database holds. */
export class VaultKeyError extends Error {}

export interface Vault {
  /** Seals `plaintext` for one record of a workspace with the workspace's data key (created on first use). Call inside a transaction scoped to that workspace. */
  seal(tx: Tx, workspaceId: string, recordId: string, plaintext: string): Promise<string>;
  /** Opens a value sealed by `seal` for the same workspace and record; throws if moved to another row/workspace or tampered. */
  open(tx: Tx, workspaceId: string, recordId: string, sealed: string): Promise<string>;
}

const ALG = "aes-256-gcm";
const FORMAT = "v1";

function kek(root: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", root, Buffer.from("reef"), Buffer.from("vault/kek/v1"), 32));
}

function encrypt(key: Buffer, plaintext: Buffer, aad: string): string[] {
  const iv = randomBytes(12);
  const cipher = createCipheriv(ALG, key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [iv.toString("base64url"), ct.toString("base64url"), cipher.getAuthTag().toString("base64url")];
}

function decrypt(key: Buffer, [iv, ct, tag]: string[], aad: string): Buffer {
  if (!iv || ct === undefined || !tag) throw new Error("malformed sealed value");
  const decipher = createDecipheriv(ALG, key, Buffer.from(iv, "base64url"));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]);
}

const wrapAad = (workspaceId: string, version: number) => `reef/workspace-key/${workspaceId}/${version}`;
const sealAad = (workspaceId: string, recordId: string) => `reef/secret/${workspaceId}/${recordId}`;

/** Wraps a data key under a root key: `<rootKeyId>.<iv>.<ct>.<tag>`. */
function wrap(root: Buffer, dataKey: Buffer, workspaceId: string, version: number): string {
  return encrypt(kek(root), dataKey, wrapAad(workspaceId, version)).join(".");
}

function keyringById(keyring: RootKeyring): Map<string, Buffer> {
  return new Map([keyring.current, ...keyring.previous].map((k) => [rootKeyId(k), k]));
}

/**
 * Envelope encryption: one data key per workspace, wrapped by the root key;
 * secrets sealed (AES-256-GCM) with the data key and bound to their workspace
 * and record, with the data-key version in the ciphertext. Rotating the root key
 * rewraps data keys only ({@link rotateRootKey}).
 */
export function createVault(deps: { keyring: RootKeyring }): Vault {
  const roots = keyringById(deps.keyring);
  // Unwrapped data keys, briefly: a chat turn opens a key per provider per wake.
  const cache = new Map<string, { key: Buffer; version: number; at: number }>();
  const CACHE_MS = 60_000;
  const CACHE_MAX = 1000;

  function unwrap(row: typeof workspaceKeys.$inferSelect): Buffer {
    const root = roots.get(row.rootKeyId);
    if (!root) {
      throw new VaultKeyError(
        `workspace ${row.workspaceId}'s data key is wrapped by root key ${row.rootKeyId}, which is not configured`,
      );
    }
    return decrypt(kek(root), row.wrappedKey.split("."), wrapAad(row.workspaceId, row.version));
  }

  async function dataKey(tx: Tx, workspaceId: string, version?: number): Promise<{ key: Buffer; version: number }> {
    const cacheKey = `${workspaceId}/${version ?? "latest"}`;
    const hit = cache.get(cacheKey);
    if (hit && Date.now() - hit.at < CACHE_MS) return { key: hit.key, version: hit.version };
    const find = () =>
      tx
        .select()
        .from(workspaceKeys)
        .where(
          version === undefined
            ? eq(workspaceKeys.workspaceId, workspaceId)
            : and(eq(workspaceKeys.workspaceId, workspaceId), eq(workspaceKeys.version, version)),
        )
        .orderBy(workspaceKeys.version);
    let rows = await find();
    // A key created in this transaction is not cached: the transaction may yet roll back.
    const fresh = rows.length === 0;
    if (fresh) {
      // Only sealing creates a key; opening without one means the value is not this workspace's.
      if (version !== undefined) throw new Error(`no data key version ${version} for this workspace`);
      // Two first seals at once: one insert wins, both then read the same key.
      await tx
        .insert(workspaceKeys)
        .values({
          workspaceId,
          version: 1,
          wrappedKey: wrap(deps.keyring.current, randomBytes(32), workspaceId, 1),
          rootKeyId: rootKeyId(deps.keyring.current),
        })
        .onConflictDoNothing();
      rows = await find();
    }
    const row = rows.at(-1);
    if (!row) throw new Error("workspace data key vanished");
    const key = unwrap(row);
    if (fresh) return { key, version: row.version };
    if (cache.size >= CACHE_MAX) cache.clear();
    const entry = { key, version: row.version, at: Date.now() };
    cache.set(`${workspaceId}/${row.version}`, entry);
    if (version === undefined) cache.set(`${workspaceId}/latest`, entry);
    return { key, version: row.version };
  }

  return {
    async seal(tx, workspaceId, recordId, plaintext) {
      const { key, version } = await dataKey(tx, workspaceId);
      return [
        FORMAT,
        String(version),
        ...encrypt(key, Buffer.from(plaintext, "utf8"), sealAad(workspaceId, recordId)),
      ].join(".");
    },
    async open(tx, workspaceId, recordId, sealed) {
      const [format, version, ...parts] = sealed.split(".");
      if (format !== FORMAT || !version || !/^\d+$/.test(version)) throw new Error("not a vault-sealed value");
      const { key } = await dataKey(tx, workspaceId, Number(version));
      return decrypt(key, parts, sealAad(workspaceId, recordId)).toString("utf8");
    },
  };
}

/**
 * At start-up: fails with a clear, actionable error if the configured root key(s)
 * cannot unwrap what the database holds; records the current root key id on a
 * fresh database.
 */
export async function checkRootKey(db: Db, keyring: RootKeyring): Promise<void> {
  const ids = keyringById(keyring);
  const currentId = rootKeyId(keyring.current);
  await withScope(db, { platform: true }, async (tx) => {
    const [state] = await tx.select().from(vaultState).where(eq(vaultState.id, 1));
    const unknown = await tx
      .selectDistinct({ id: workspaceKeys.rootKeyId })
      .from(workspaceKeys)
      .where(ne(workspaceKeys.rootKeyId, currentId));
    const missing = [
      ...(state && !ids.has(state.rootKeyId) ? [state.rootKeyId] : []),
      ...unknown.map((u) => u.id),
    ].filter((id) => !ids.has(id));
    if (missing.length) {
      throw new VaultKeyError(
        `REEF_SECRET_KEY does not match the key this database's vault was created with (key id ${[...new Set(missing)].join(", ")}; the configured key is ${currentId}). Set the right key, or put the old key in REEF_SECRET_KEY_PREVIOUS and run \`reef rotate-keys\`.`,
      );
    }
    if (!state) await tx.insert(vaultState).values({ id: 1, rootKeyId: currentId }).onConflictDoNothing();
  });
}

/**
 * Rewraps every workspace data key (and the vault's record of its root key)
 * under `keyring.current`; secrets are not re-encrypted. Safe to run twice or
 * concurrently (each row is rewrapped under its lock).
 */
export async function rotateRootKey(
  db: Db,
  keyring: RootKeyring,
): Promise<{ rewrapped: number; alreadyCurrent: number }> {
  const ids = keyringById(keyring);
  const currentId = rootKeyId(keyring.current);
  return withScope(db, { platform: true }, async (tx) => {
    const rows = await tx.select().from(workspaceKeys).for("update");
    let rewrapped = 0;
    for (const row of rows) {
      if (row.rootKeyId === currentId) continue;
      const root = ids.get(row.rootKeyId);
      if (!root) {
        throw new VaultKeyError(
          `workspace ${row.workspaceId}'s data key is wrapped by root key ${row.rootKeyId}; put that key in REEF_SECRET_KEY_PREVIOUS`,
        );
      }
      const dataKey = decrypt(kek(root), row.wrappedKey.split("."), wrapAad(row.workspaceId, row.version));
      await tx
        .update(workspaceKeys)
        .set({
          wrappedKey: wrap(keyring.current, dataKey, row.workspaceId, row.version),
          rootKeyId: currentId,
          rewrappedAt: new Date(),
        })
        .where(and(eq(workspaceKeys.workspaceId, row.workspaceId), eq(workspaceKeys.version, row.version)));
      rewrapped++;
    }
    await tx
      .insert(vaultState)
      .values({ id: 1, rootKeyId: currentId })
      .onConflictDoUpdate({ target: vaultState.id, set: { rootKeyId: currentId, updatedAt: new Date() } });
    await appendAudit(
      tx,
      { actor: { kind: "system", name: "reef rotate-keys" } },
      {
        workspaceId: null,
        action: "vault.rotate_root_key",
        targetType: "vault",
        details: { rootKeyId: currentId, rewrapped, alreadyCurrent: rows.length - rewrapped },
      },
    );
    return { rewrapped, alreadyCurrent: rows.length - rewrapped };
  });
}
