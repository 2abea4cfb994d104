import { sql } from "drizzle-orm";
import { boolean, check, integer, pgPolicy, pgTable, smallint, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { appRole, platformScope } from "./roles.ts";
import { users } from "./users.ts";

/**
 * Platform settings an operator changes from the web app (one row). Each column
 * left null falls back to Reef's configuration (env or config file); a setting
 * the configuration fixes explicitly cannot be overridden here.
 */
export const platformSettings = pgTable(
  "platform_settings",
  {
    id: integer().primaryKey().default(1),
    publicUrl: text(),
    smtpHost: text(),
    smtpPort: integer(),
    /** `tls`: implicit TLS (465); `starttls`: upgrade required; `none`: plain (local relays only). */
    smtpSecurity: text({ enum: ["tls", "starttls", "none"] }),
    smtpUsername: text(),
    /** Sealed under the root key (purpose `platform-smtp`), never returned. */
    smtpPasswordSealed: text(),
    smtpFrom: text(),
    /** Idle minutes before a workspace's gateway is stopped (its memory freed); null: the configuration's. */
    runtimeIdleTimeoutMinutes: integer(),
    /** Idle minutes before it is paused (frozen, resumed in under a second); 0: never paused; null: configuration. */
    runtimePauseAfterMinutes: integer(),
    /** Resource caps (0: no limit); null falls back to the configuration. */
    maxWorkspacesPerUser: integer(),
    maxRuntimesPerUser: integer(),
    maxRuntimes: integer(),
    /**
     * Non-public hosts (`host` or `host:port`) members may use as a provider's
     * base URL, e.g. a local Ollama; null falls back to the configuration.
     */
    providerAllowedHosts: text().array(),
    /**
     * The tool groups (`web`, `files`, `shell`) workspace admins may grant agents;
     * null falls back to the configuration (default: web only).
     */
    grantableTools: text().array(),
    /** Whether workspaces may use MCP connectors; null falls back to the configuration (default on). */
    connectorsEnabled: boolean(),
    /** Non-public hosts (`host` or `host:port`) connectors may point at; null falls back to the configuration. */
    connectorAllowedHosts: text().array(),
    /** Password sign-in off for everyone but breakglass accounts; null falls back to the configuration (default off). */
    requireSso: boolean(),
    /** Every account needs a second factor (TOTP); null falls back to the configuration (default off). */
    requireTwoFactor: boolean(),
    /** Where the first-run wizard was left, so it resumes there. */
    setupStep: smallint().notNull().default(0),
    setupCompletedAt: timestamp({ withTimezone: true }),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedBy: uuid().references(() => users.id, { onDelete: "set null" }),
  },
  (t) => [
    check("platform_settings_single_row", sql`${t.id} = 1`),
    pgPolicy("platform_settings_platform", { for: "all", to: appRole, using: platformScope, withCheck: platformScope }),
  ],
).enableRLS();
