import type { Tx } from "@reef/db";
import type { Vault } from "../vault/vault-service.ts";
import { connectorInvalid } from "./connector-urls.ts";
import { AUTHORIZATION, type ConnectorRow } from "./connector-view.ts";

/** The vault record of a connector's headers (the bearer token is its `Authorization`). */
export const connectorHeadersRecordId = (connectorId: string) => connectorId;
/** The vault record of a workflow engine's REST API key. */
export const connectorApiKeyRecordId = (connectorId: string) => `${connectorId}:api`;

/** The headers Reef adds to every call to the connector (MCP proxy, tests), opened from the vault. */
export async function openConnectorHeaders(
  tx: Tx,
  vault: Vault,
  row: Pick<ConnectorRow, "id" | "workspaceId" | "headersSealed">,
): Promise<Record<string, string>> {
  if (!row.headersSealed) return {};
  const text = await vault.open(tx, row.workspaceId, connectorHeadersRecordId(row.id), row.headersSealed);
  return JSON.parse(text) as Record<string, string>;
}

/** The REST API key of a preset connector, opened from the vault; undefined when none is stored. */
export async function openConnectorApiKey(
  tx: Tx,
  vault: Vault,
  row: Pick<ConnectorRow, "id" | "workspaceId" | "apiKeySealed">,
): Promise<string | undefined> {
  if (!row.apiKeySealed) return undefined;
  return vault.open(tx, row.workspaceId, connectorApiKeyRecordId(row.id), row.apiKeySealed);
}

/** Header names the user may not set: the token has its own field, and these belong to the transport. */
const RESERVED = new Set([
  "authorization",
  "host",
  "content-length",
  "content-type",
  "accept",
  "mcp-session-id",
  "connection",
  "transfer-encoding",
]);

/**
 * Applies write-only credential changes: absent keeps what is stored, null
 * removes it, a value replaces it. The bearer token is stored as the
 * `Authorization` header next to the other headers.
 */
export function mergeHeaders(
  current: Record<string, string>,
  change: { bearerToken?: string | null | undefined; headers?: Record<string, string> | null | undefined },
): Record<string, string> {
  const out: Record<string, string> = {};
  const token = current[AUTHORIZATION];
  if (change.headers === undefined) {
    for (const [k, v] of Object.entries(current)) if (k !== AUTHORIZATION) out[k] = v;
  } else if (change.headers !== null) {
    const seen = new Set<string>();
    for (const [k, v] of Object.entries(change.headers)) {
      const lower = k.toLowerCase();
      if (RESERVED.has(lower)) {
        throw connectorInvalid(
          lower === "authorization"
            ? "Give the token as the bearer token, not as an Authorization header."
            : `Reef sets the ${k} header itself.`,
          "headers",
        );
      }
      if (seen.has(lower)) throw connectorInvalid(`The header ${k} is given twice.`, "headers");
      seen.add(lower);
      out[k] = v;
    }
  }
  if (change.bearerToken === undefined) {
    if (token !== undefined) out[AUTHORIZATION] = token;
  } else if (change.bearerToken !== null) {
    out[AUTHORIZATION] = `Bearer ${change.bearerToken}`;
  }
  return out;
}

/** `…abcd`: enough of the token (or else the first header value) to recognise it, never more. */
export function secretHintOf(headers: Record<string, string>): string | null {
  const auth = headers[AUTHORIZATION];
  const value = auth?.replace(/^Bearer\s+/i, "") ?? Object.values(headers)[0];
  if (!value) return null;
  // A short secret would be half shown: hint at it only when it is long enough.
  return value.length >= 12 ? `…${value.slice(-4)}` : "…";
}

/** Seals the headers under the connector's record (null when there are none). */
export async function sealHeaders(
  tx: Tx,
  vault: Vault,
  workspaceId: string,
  connectorId: string,
  headers: Record<string, string>,
): Promise<{ headersSealed: string | null; headerNames: string[]; secretHint: string | null }> {
  const names = Object.keys(headers).sort();
  if (names.length === 0) return { headersSealed: null, headerNames: [], secretHint: null };
  return {
    headersSealed: await vault.seal(tx, workspaceId, connectorHeadersRecordId(connectorId), JSON.stringify(headers)),
    headerNames: names,
    secretHint: secretHintOf(headers),
  };
}
