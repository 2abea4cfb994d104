import { sql } from "drizzle-orm";
import { type AnyPgColumn, pgPolicy, pgRole } from "drizzle-orm/pg-core";

/**
 * The group role every application connection belongs to. It is created by the
 * first migration (not by drizzle-kit) and holds only DML grants, never
 * BYPASSRLS, so row-level security applies to everything the app does.
 */
export const appRole = pgRole("reef_app").existing();

/** The workspace the current transaction is scoped to (see `withWorkspace`), or NULL. */
export const currentWorkspaceId = sql`reef_current_workspace_id()`;
/** The signed-in user the current transaction acts for (see `withUser`), or NULL. */
export const currentUserId = sql`reef_current_user_id()`;
/** True inside `withPlatformScope`: operator views of platform metadata, never tenant content. */
export const platformScope = sql`reef_platform_scope()`;

/**
 * The secret a request presented (a session token hash, an API key hash, an
 * invite token hash, or a sign-in email), set by `withLookup`. Policies let
 * exactly the row it names be read, so finding "the session for this cookie"
 * needs no cross-tenant read access.
 */
export function lookup(
  kind: "session" | "api_key" | "invite" | "email" | "llm_credential" | "connector_credential" | "auth_token",
) {
  return sql.raw(`reef_lookup('${kind}')`);
}

/** The policy every tenant table carries: rows of the transaction's workspace only, for reading and writing. */
export function tenantIsolation(name: string, workspaceId: AnyPgColumn) {
  return pgPolicy(name, {
    for: "all",
    to: appRole,
    using: sql`${workspaceId} = ${currentWorkspaceId}`,
    withCheck: sql`${workspaceId} = ${currentWorkspaceId}`,
  });
}
