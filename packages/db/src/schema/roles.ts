import { sql } from "drizzle-orm";
import { pgRole } from "drizzle-orm/pg-core";

/**
 * The group role every application connection belongs to. It is created by the
 * first migration (not by drizzle-kit) and holds only DML grants, never
 * BYPASSRLS, so row-level security applies to everything the app does.
 */
export const appRole = pgRole("reef_app").existing();

/** The workspace the current transaction is scoped to (see `withWorkspace`), or NULL. */
export const currentWorkspaceId = sql`reef_current_workspace_id()`;
