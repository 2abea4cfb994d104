import { sql } from "drizzle-orm";
import {
  boolean,
  index,
  jsonb,
  pgPolicy,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { agents } from "./providers.ts";
import { appRole, lookup, tenantIsolation } from "./roles.ts";
import { users } from "./users.ts";
import { workspaces } from "./workspaces.ts";

/**
 * `mcp`: any MCP server over HTTP; `n8n` and `activepieces`: their MCP
 * endpoints, set up from the instance URL and a token; `catalog`: a stdio
 * server from the operator's catalogue (run inside the runtime).
 */
export const CONNECTOR_KINDS = ["mcp", "n8n", "activepieces", "catalog"] as const;
export type ConnectorKind = (typeof CONNECTOR_KINDS)[number];

export const CONNECTOR_TRANSPORTS = ["streamable-http", "sse", "stdio"] as const;
export type ConnectorTransport = (typeof CONNECTOR_TRANSPORTS)[number];

/** A tool as the MCP server listed it at the last successful test. */
export interface ConnectorTool {
  name: string;
  description?: string;
}

/**
 * A workspace's MCP server. Its credentials (headers, the workflow engine's
 * API token) are sealed in the vault and never leave Reef: gateways reach the
 * server through Reef's MCP proxy, which adds them per call.
 */
export const connectors = pgTable(
  "connectors",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    name: text().notNull(),
    /** The server's name in the gateway (`<slug>__<tool>` tool names): unique per workspace. */
    slug: text().notNull(),
    kind: text({ enum: CONNECTOR_KINDS }).notNull(),
    transport: text({ enum: CONNECTOR_TRANSPORTS }).notNull(),
    /** The MCP endpoint (HTTP transports); null for catalogue (stdio) connectors. */
    url: text(),
    /** The n8n / Activepieces instance (presets), used to list its workflows. */
    instanceUrl: text(),
    /** An operator catalogue entry's id (`catalog` connectors). */
    catalogEntryId: text(),
    /** Header names sent to the server (their values are sealed in `headersSealed`). */
    headerNames: text().array().notNull().default(sql`'{}'::text[]`),
    /** JSON object of header name to value, sealed (record id: the connector id). */
    headersSealed: text(),
    /** The last four characters of the bearer token or first header value, to recognise it. */
    secretHint: text(),
    /** The workflow engine's REST API key (presets), sealed (record id: `<connector id>:api`). */
    apiKeySealed: text(),
    /** Only these tools are offered to agents; null: all the server lists. */
    toolAllowlist: text().array(),
    enabled: boolean().notNull().default(true),
    /** The tools listed at the last successful test. */
    tools: jsonb().$type<ConnectorTool[]>(),
    lastTestedAt: timestamp({ withTimezone: true }),
    lastTestOk: boolean(),
    /** Why the last test failed (a sentence, never a secret). */
    lastTestError: text(),
    createdBy: uuid().references(() => users.id, { onDelete: "set null" }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("connectors_workspace_idx").on(t.workspaceId, t.createdAt, t.id),
    uniqueIndex("connectors_slug_idx").on(t.workspaceId, t.slug),
    tenantIsolation("connectors_tenant_isolation", t.workspaceId),
  ],
).enableRLS();

/** Which agents may use a connector, and (when `tools` is set) which of its tools. */
export const agentConnectors = pgTable(
  "agent_connectors",
  {
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    agentId: uuid()
      .notNull()
      .references(() => agents.id, { onDelete: "cascade" }),
    connectorId: uuid()
      .notNull()
      .references(() => connectors.id, { onDelete: "cascade" }),
    /** Null: every tool the connector offers. */
    tools: text().array(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.agentId, t.connectorId] }),
    index("agent_connectors_connector_idx").on(t.connectorId),
    tenantIsolation("agent_connectors_tenant_isolation", t.workspaceId),
  ],
).enableRLS();

/**
 * The credential a runtime presents to Reef's MCP proxy, minted at each start
 * (the previous start's is deleted). Only its hash is stored.
 */
export const connectorCredentials = pgTable(
  "connector_credentials",
  {
    credentialHash: text().primaryKey(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("connector_credentials_workspace_idx").on(t.workspaceId),
    tenantIsolation("connector_credentials_tenant_isolation", t.workspaceId),
    // Reef's HTTP route for gateways on another network knows only the credential.
    pgPolicy("connector_credentials_lookup", {
      for: "select",
      to: appRole,
      using: sql`${t.credentialHash} = ${lookup("connector_credential")}`,
    }),
  ],
).enableRLS();
