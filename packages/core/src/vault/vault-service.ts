import { randomBytes } from "node:crypto";
import { type Db, schema, type Tx, withScope } from "@reef/db";
import { and, eq, sql } from "drizzle-orm";
import { appendAudit } from "../audit/audit-service.ts";
import { decrypt, encrypt, rootKeyId, secretAad, unwrapDataKey, wrapDataKey } from "./envelope.ts";

export { rootKeyId } from "./envelope.ts";

const { workspaceKeys, vaultState } = schema;
type KeyRow = typeof workspaceKeys.$inferSelect;

/** The root key in use, and older ones still accepted while a rotation is under way. */
export interface RootKeyring {
  current: Buffer;
  previous: Buffer[];
}

/** The configured root key(s) cannot open what the database holds. The message says what to do. */
export class VaultKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VaultKeyError";
  }
}

export interface Vault {
  /** Seals `plaintext` for one record of a workspace with the workspace's data key (created on first use). Call inside a transaction scoped to that workspace (withScope/gate tx). */
  seal(tx: Tx, workspaceId: string, recordId: string, plaintext: string): Promise<string>;
  /** Opens a value sealed by `seal` for the same workspace and record; throws if moved to another row/workspace or tampered. */
  open(tx: Tx, workspaceId: string, recordId: string, sealed: string): Promise<string>;
}

/** Sealed secrets: `v1.<data key version>.<iv>.<ciphertext>.<tag>`. */
const FORMAT = "v1";
/** How long an unwrapped data key is kept in memory, and how many at most. */
const CACHE_MS = 60_000;
const CACHE_MAX = 1000;

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
  const current = deps.keyring.current;
  // Unwrapped data keys, briefly: every gateway wake opens each provider key.
  const cache = new Map<string, { key: Buffer; version: number; at: number }>();

  function remember(key: string, entry: { key: Buffer; version: number; at: number }) {
    cache.delete(key);
    // Oldest first (insertion order): drop one to stay bounded.
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(key, entry);
  }

  function unwrap(row: KeyRow): Buffer {
    const root = roots.get(row.rootKeyId);
    if (!root) {
      throw new VaultKeyError(
        `workspace ${row.workspaceId}'s data key is wrapped by root key ${row.rootKeyId}, which is not configured (REEF_SECRET_KEY / REEF_SECRET_KEY_PREVIOUS)`,
      );
    }
    return unwrapDataKey(root, row.wrappedKey, row.workspaceId, row.version);
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
      // Two first seals at once: one insert wins (the other waits for it), both then read the same key.
      await tx
        .insert(workspaceKeys)
        .values({
          workspaceId,
          version: 1,
          wrappedKey: wrapDataKey(current, randomBytes(32), workspaceId, 1),
          rootKeyId: rootKeyId(current),
        })
        .onConflictDoNothing();
      rows = await find();
    }
    const row = rows.at(-1);
    if (!row) throw new Error("workspace data key vanished");
    const key = unwrap(row);
    if (!fresh) {
      const entry = { key, version: row.version, at: Date.now() };
      remember(`${workspaceId}/${row.version}`, entry);
      if (version === undefined) remember(`${workspaceId}/latest`, entry);
    }
    return { key, version: row.version };
  }

  return {
    async seal(tx, workspaceId, recordId, plaintext) {
      const { key, version } = await dataKey(tx, workspaceId);
      const parts = encrypt(key, Buffer.from(plaintext, "utf8"), secretAad(workspaceId, recordId));
      return [FORMAT, String(version), ...parts].join(".");
    },
    async open(tx, workspaceId, recordId, sealed) {
      const [format, version, ...parts] = sealed.split(".");
      if (format !== FORMAT || !version || !/^\d+$/.test(version)) throw new Error("not a vault-sealed value");
      const { key } = await dataKey(tx, workspaceId, Number(version));
      return decrypt(key, parts, secretAad(workspaceId, recordId)).toString("utf8");
    },
  };
}

function wrongKeyMessage(missing: string[], currentId: string): string {
  return (
    `REEF_SECRET_KEY does not match the key this database's vault was created with (key id ${missing.join(", ")}; ` +
    `the configured key is ${currentId}). Set the right key (REEF_SECRET_KEY, or DATA_DIR/secret.key when it is unset), ` +
    "or, to move to a new key, put the old key in REEF_SECRET_KEY_PREVIOUS and run `reef rotate-keys`."
  );
}

/**
 * At start-up: fails with a clear, actionable error ({@link VaultKeyError}) if
 * the configured root key(s) cannot unwrap what the database holds; records the
 * current root key id on a fresh database.
 */
export async function checkRootKey(db: Db, keyring: RootKeyring): Promise<void> {
  const roots = keyringById(keyring);
  const currentId = rootKeyId(keyring.current);
  await withScope(db, { platform: true }, async (tx) => {
    const [state] = await tx.select().from(vaultState).where(eq(vaultState.id, 1));
    // One data key per root key in use: enough to prove each configured key really opens its rows.
    const samples = await tx
      .selectDistinctOn([workspaceKeys.rootKeyId])
      .from(workspaceKeys)
      .orderBy(workspaceKeys.rootKeyId, workspaceKeys.workspaceId, workspaceKeys.version);
    const inUse = new Set([...(state ? [state.rootKeyId] : []), ...samples.map((s) => s.rootKeyId)]);
    const missing = [...inUse].filter((id) => !roots.has(id));
    if (missing.length) throw new VaultKeyError(wrongKeyMessage(missing, currentId));
    for (const row of samples) {
      try {
        unwrapDataKey(roots.get(row.rootKeyId) as Buffer, row.wrappedKey, row.workspaceId, row.version);
      } catch {
        throw new VaultKeyError(
          `workspace ${row.workspaceId}'s data key does not open with root key ${row.rootKeyId} although the key id matches: the workspace_keys row is damaged or was not written by Reef`,
        );
      }
    }
    if (!state) await tx.insert(vaultState).values({ id: 1, rootKeyId: currentId }).onConflictDoNothing();
  });
}

/**
 * Rewraps every workspace data key (and vault_state) under `keyring.current`;
 * secrets are not re-encrypted. Returns counts. Safe to run twice or
 * concurrently: rows are rewrapped under their locks, and a second run finds
 * them current. Recorded in the platform audit trail.
 */
export async function rotateRootKey(
  db: Db,
  keyring: RootKeyring,
): Promise<{ rewrapped: number; alreadyCurrent: number }> {
  const roots = keyringById(keyring);
  const currentId = rootKeyId(keyring.current);
  return withScope(db, { platform: true }, async (tx) => {
    // A concurrent run waits here, then re-reads the rows it waited for (already current).
    const rows = await tx
      .select()
      .from(workspaceKeys)
      .orderBy(workspaceKeys.workspaceId, workspaceKeys.version)
      .for("update");
    let rewrapped = 0;
    for (const row of rows) {
      if (row.rootKeyId === currentId) continue;
      const root = roots.get(row.rootKeyId);
      if (!root) {
        throw new VaultKeyError(
          `workspace ${row.workspaceId}'s data key is wrapped by root key ${row.rootKeyId}, which is configured neither as REEF_SECRET_KEY nor in REEF_SECRET_KEY_PREVIOUS; add it to REEF_SECRET_KEY_PREVIOUS and run again (nothing was changed)`,
        );
      }
      const dataKey = unwrapDataKey(root, row.wrappedKey, row.workspaceId, row.version);
      await tx
        .update(workspaceKeys)
        .set({
          wrappedKey: wrapDataKey(keyring.current, dataKey, row.workspaceId, row.version),
          rootKeyId: currentId,
          rewrappedAt: sql`now()`,
        })
        .where(and(eq(workspaceKeys.workspaceId, row.workspaceId), eq(workspaceKeys.version, row.version)));
      rewrapped++;
    }
    await tx
      .insert(vaultState)
      .values({ id: 1, rootKeyId: currentId })
      .onConflictDoUpdate({ target: vaultState.id, set: { rootKeyId: currentId, updatedAt: sql`now()` } });
    const alreadyCurrent = rows.length - rewrapped;
    await appendAudit(
      tx,
      { actor: { kind: "system", name: "reef rotate-keys" } },
      {
        workspaceId: null,
        action: "vault.rotate_root_key",
        targetType: "vault",
        details: { rootKeyId: currentId, rewrapped, alreadyCurrent },
      },
    );
    return { rewrapped, alreadyCurrent };
  });
}
