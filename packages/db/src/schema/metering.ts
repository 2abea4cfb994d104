import { sql } from "drizzle-orm";
import {
  bigint,
  date,
  index,
  integer,
  pgPolicy,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import { agents, providers } from "./providers.ts";
import { appRole, lookup, tenantIsolation } from "./roles.ts";
import { workspaces } from "./workspaces.ts";

/**
 * The credentials a running gateway presents to Reef's LLM proxy, one per
 * provider, minted at each start (only their SHA-256 is kept). They are useless
 * outside Reef: the proxy swaps them for the provider's real key.
 */
export const llmCredentials = pgTable(
  "llm_credentials",
  {
    /** SHA-256 (hex) of the credential. */
    credentialHash: text().primaryKey(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    providerId: uuid()
      .notNull()
      .references(() => providers.id, { onDelete: "cascade" }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("llm_credentials_workspace_idx").on(t.workspaceId),
    tenantIsolation("llm_credentials_tenant_isolation", t.workspaceId),
    // The proxy that gateways reach over the network (containers) knows only the
    // credential: it may read that one row to learn its workspace, nothing else.
    pgPolicy("llm_credentials_lookup", {
      for: "select",
      to: appRole,
      using: sql`${t.credentialHash} = ${lookup("llm_credential")}`,
    }),
  ],
).enableRLS();

export const LLM_CALL_OUTCOMES = ["ok", "error", "refused", "budget", "aborted"] as const;
export type LlmCallOutcome = (typeof LLM_CALL_OUTCOMES)[number];

/** One call a gateway made to an LLM through Reef's proxy: what metering, usage and budgets read. */
export const llmCalls = pgTable(
  "llm_calls",
  {
    id: bigint({ mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    providerId: uuid().references(() => providers.id, { onDelete: "set null" }),
    /** Where the gateway said which agent asked (not every call does). */
    agentId: uuid().references(() => agents.id, { onDelete: "set null" }),
    model: text().notNull().default(""),
    /** The vendor API called, e.g. `chat.completions`, `responses`, `messages`, `models`. */
    endpoint: text().notNull().default(""),
    promptTokens: integer().notNull().default(0),
    completionTokens: integer().notNull().default(0),
    /** Until the first byte of the vendor's answer, and until its end. */
    firstByteMs: integer(),
    latencyMs: integer().notNull().default(0),
    outcome: text({ enum: LLM_CALL_OUTCOMES }).notNull(),
    httpStatus: integer(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("llm_calls_workspace_idx").on(t.workspaceId, t.createdAt, t.id),
    tenantIsolation("llm_calls_tenant_isolation", t.workspaceId),
  ],
).enableRLS();

/** Outbound connections Reef's egress proxy refused, counted per day, destination and reason. */
export const egressRefusals = pgTable(
  "egress_refusals",
  {
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    day: date({ mode: "string" }).notNull(),
    host: text().notNull(),
    port: integer().notNull(),
    /** Stable code, e.g. `private_address`, `denied_host`, `not_allowed_host`, `dns_failed`. */
    reason: text().notNull(),
    count: integer().notNull().default(0),
    lastAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.workspaceId, t.day, t.host, t.port, t.reason] }),
    index("egress_refusals_recent_idx").on(t.workspaceId, t.lastAt),
    tenantIsolation("egress_refusals_tenant_isolation", t.workspaceId),
  ],
).enableRLS();
