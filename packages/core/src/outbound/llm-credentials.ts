import { createHash, randomBytes } from "node:crypto";
import { type Db, schema, withScope } from "@reef/db";
import { eq } from "drizzle-orm";

const { llmCredentials } = schema;

/** Every credential starts so: recognisable in a leak report, and never taken for a vendor key. */
export const CREDENTIAL_PREFIX = "reef-llm-";

/** A fresh credential: 32 random bytes, so guessing one is hopeless. */
export function mintCredential(): string {
  return `${CREDENTIAL_PREFIX}${randomBytes(32).toString("base64url")}`;
}

/** What is stored and looked up: the credential itself never reaches the database. */
export function hashCredential(credential: string): string {
  return createHash("sha256").update(credential).digest("hex");
}

/**
 * Replaces a workspace's credentials with fresh ones, one per provider, for
 * one runtime start: the previous gateway's credentials stop working as this
 * commits. @returns the credentials (to hand to the gateway) and the hashes
 * they replaced (so refusals can say "revoked" rather than "unknown").
 */
export async function rotateCredentials(
  db: Db,
  workspaceId: string,
  providerIds: readonly string[],
): Promise<{ credentials: Record<string, string>; revoked: string[] }> {
  const credentials: Record<string, string> = {};
  for (const id of providerIds) credentials[id] = mintCredential();
  const revoked = await withScope(db, { workspaceId }, async (tx) => {
    const old = await tx
      .delete(llmCredentials)
      .where(eq(llmCredentials.workspaceId, workspaceId))
      .returning({ hash: llmCredentials.credentialHash });
    const rows = Object.entries(credentials).map(([providerId, credential]) => ({
      credentialHash: hashCredential(credential),
      workspaceId,
      providerId,
    }));
    if (rows.length) await tx.insert(llmCredentials).values(rows);
    return old.map((r) => r.hash);
  });
  return { credentials, revoked };
}
