import { type Db, schema, withScope } from "@reef/db";
import { and, eq, isNotNull } from "drizzle-orm";
import { createSealer, type Sealer } from "../shared/sealing.ts";

const { runtimes } = schema;

/** The root key in use, and older ones whose sealed tokens are still accepted. */
export interface TokenKeyring {
  current: Buffer;
  previous: Buffer[];
}

/**
 * The sealer for gateway tokens at rest (each bound to its workspace). Opens
 * tokens sealed under a previous root key, so running gateways stay reachable
 * through a root-key rotation.
 */
export function createRuntimeTokenSealer(keyring: TokenKeyring): Sealer {
  return createSealer(keyring, "runtime-token");
}

/**
 * Reseals every stored gateway token under the current root key, for `reef
 * rotate-keys`: after it, dropping the previous key leaves no running gateway
 * unreachable. A token no configured key opens is left alone (counted as
 * `unreadable`); the runtime manager restarts that gateway on its next use.
 */
export async function resealRuntimeTokens(
  db: Db,
  keyring: TokenKeyring,
): Promise<{ resealed: number; unreadable: number }> {
  const sealer = createRuntimeTokenSealer(keyring);
  return withScope(db, { platform: true }, async (tx) => {
    // Under the rows' locks: a gateway starting meanwhile writes its new token after us, never under us.
    const rows = await tx
      .select({ workspaceId: runtimes.workspaceId, tokenSealed: runtimes.tokenSealed })
      .from(runtimes)
      .where(isNotNull(runtimes.tokenSealed))
      .orderBy(runtimes.workspaceId)
      .for("update");
    let resealed = 0;
    let unreadable = 0;
    for (const row of rows) {
      if (!row.tokenSealed) continue;
      let next: string | undefined;
      try {
        next = sealer.reseal(row.tokenSealed, row.workspaceId);
      } catch {
        unreadable++;
        continue;
      }
      if (!next) continue;
      await tx
        .update(runtimes)
        .set({ tokenSealed: next })
        .where(and(eq(runtimes.workspaceId, row.workspaceId), eq(runtimes.tokenSealed, row.tokenSealed)));
      resealed++;
    }
    return { resealed, unreadable };
  });
}
