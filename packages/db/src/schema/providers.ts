import { sql } from "drizzle-orm";
import { index, jsonb, pgTable, real, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { tenantIsolation } from "./roles.ts";
import { users } from "./users.ts";
import { workspaces } from "./workspaces.ts";

export const PROVIDER_KINDS = ["openai", "anthropic", "openrouter", "ollama", "openai-compatible"] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/**
 * An LLM provider of a workspace. Shared with every member unless `ownerUserId`
 * is set: then it is that member's personal provider, which only they can see
 * and use (the service enforces it; RLS enforces the workspace).
 */
export const providers = pgTable(
  "providers",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    ownerUserId: uuid().references(() => users.id, { onDelete: "cascade" }),
    name: text().notNull(),
    kind: text({ enum: PROVIDER_KINDS }).notNull(),
    baseUrl: text().notNull(),
    /** Sealed by the vault with the workspace's data key; null for keyless providers (Ollama). */
    apiKeySealed: text(),
    /** The key's last four characters, for recognising it. */
    apiKeyLast4: text(),
    models: jsonb().$type<string[]>().notNull().default([]),
    createdBy: uuid().references(() => users.id, { onDelete: "set null" }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("providers_name_unique").on(
      t.workspaceId,
      sql`coalesce(${t.ownerUserId}, '00000000-0000-0000-0000-000000000000'::uuid)`,
      sql`lower(${t.name})`,
    ),
    index("providers_list_idx").on(t.workspaceId, t.createdAt, t.id),
    tenantIsolation("providers_tenant_isolation", t.workspaceId),
  ],
).enableRLS();

export const AGENT_TOOLS = ["web", "files", "shell"] as const;
export type AgentTool = (typeof AGENT_TOOLS)[number];
export const EXEC_POLICIES = ["deny", "allowlist", "ask", "allow"] as const;
export type ExecPolicy = (typeof EXEC_POLICIES)[number];

/**
 * An agent served by the workspace's gateway. An agent on a personal provider is
 * personal too (`ownerUserId`): only that member may chat with it.
 */
export const agents = pgTable(
  "agents",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    ownerUserId: uuid().references(() => users.id, { onDelete: "cascade" }),
    name: text().notNull(),
    providerId: uuid()
      .notNull()
      .references(() => providers.id, { onDelete: "restrict" }),
    model: text().notNull(),
    instructions: text().notNull().default(""),
    /** One or two sentences for the agent gallery: what this agent is for. */
    description: text().notNull().default(""),
    /** Suggested first messages, shown as buttons on a new conversation. */
    starterPrompts: text().array().notNull().default(sql`'{}'::text[]`),
    temperature: real(),
    /** Tool groups beyond messaging that this agent may use (granted by an admin). */
    tools: jsonb().$type<AgentTool[]>().notNull().default([]),
    /**
     * What the agent's shell commands need: `deny` none run; `allowlist` only
     * commands matching `execAllowlist`; `ask` those match, the rest wait for a
     * person's approval; `allow` all run. Only matters with the shell tool.
     */
    execPolicy: text({ enum: EXEC_POLICIES }).notNull().default("ask"),
    /** Command patterns (OpenClaw's exec allowlist globs) that run without asking. */
    execAllowlist: text().array().notNull().default(sql`'{}'::text[]`),
    createdBy: uuid().references(() => users.id, { onDelete: "set null" }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("agents_list_idx").on(t.workspaceId, t.createdAt, t.id),
    index("agents_provider_idx").on(t.providerId),
    tenantIsolation("agents_tenant_isolation", t.workspaceId),
  ],
).enableRLS();
