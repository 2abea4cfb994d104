import { integer, pgPolicy, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { appRole, platformScope, tenantIsolation } from "./roles.ts";
import { workspaces } from "./workspaces.ts";

/**
 * One data key per workspace (and version), wrapped by the root key. Secrets are
 * sealed with the data key; rotating the root key rewraps these rows only.
 */
export const workspaceKeys = pgTable(
  "workspace_keys",
  {
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    version: integer().notNull(),
    /** The data key sealed (AES-256-GCM) under the root key named by `rootKeyId`. */
    wrappedKey: text().notNull(),
    /** A fingerprint of the root key that wraps this row (never the key itself). */
    rootKeyId: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    rewrappedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.workspaceId, t.version] }),
    tenantIsolation("workspace_keys_tenant_isolation", t.workspaceId),
    // Key rotation rewraps every workspace's key: wrapped keys are useless without the root key.
    pgPolicy("workspace_keys_platform", { for: "all", to: appRole, using: platformScope, withCheck: platformScope }),
  ],
).enableRLS();

/** One row: the fingerprint of the root key the vault is under, checked at every start. */
export const vaultState = pgTable(
  "vault_state",
  {
    id: integer().primaryKey().default(1),
    rootKeyId: text().notNull(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (_t) => [
    pgPolicy("vault_state_platform", { for: "all", to: appRole, using: platformScope, withCheck: platformScope }),
  ],
).enableRLS();
