import { createHash, randomBytes } from "node:crypto";
import { type Db, schema, withScope } from "@reef/db";
import { eq } from "drizzle-orm";

const { connectorCredentials } = schema;

/** Every MCP proxy credential starts so: recognisable in a leak report, never taken for a connector's own token. */
export const MCP_CREDENTIAL_PREFIX = "reef-mcp-";

/** A fresh credential: 32 random bytes, so guessing one is hopeless. */
export function mintMcpCredential(): string {
  return `${MCP_CREDENTIAL_PREFIX}${randomBytes(32).toString("base64url")}`;
}

/** What is stored and looked up: the credential itself never reaches the database. */
export function hashMcpCredential(credential: string): string {
  return createHash("sha256").update(credential).digest("hex");
}

/**
 * Replaces a workspace's MCP proxy credential for one runtime start: the
 * previous gateway's stops working as this commits. A workspace whose gateway
 * gets no HTTP connector gets none (`needed` false), and loses the old one.
 * @returns the new credential (to write into the gateway's config), if any.
 */
export async function rotateMcpCredential(db: Db, workspaceId: string, needed: boolean): Promise<string | undefined> {
  const credential = needed ? mintMcpCredential() : undefined;
  await withScope(db, { workspaceId }, async (tx) => {
    await tx.delete(connectorCredentials).where(eq(connectorCredentials.workspaceId, workspaceId));
    if (credential)
      await tx.insert(connectorCredentials).values({ credentialHash: hashMcpCredential(credential), workspaceId });
  });
  return credential;
}
