import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgPolicy,
  pgTable,
  text,
  timestamp,
  uuid,
  varchar,
} from "drizzle-orm/pg-core";
import { appRole, currentWorkspaceId, platformScope } from "./roles.ts";

/**
 * Append-only audit trail. Entries of one workspace (or of the platform, when
 * `workspace_id` is NULL) form a hash chain: each `hash` covers the entry and the
 * previous entry's hash, so an edited or deleted row breaks verification. The app
 * role has no UPDATE or DELETE grant on this table.
 */
export const auditLog = pgTable(
  "audit_log",
  {
    id: bigserial({ mode: "number" }).primaryKey(),
    workspaceId: uuid(),
    occurredAt: timestamp({ withTimezone: true, precision: 3 }).notNull(),
    actorType: text({ enum: ["user", "api_key", "system", "anonymous"] }).notNull(),
    actorId: text(),
    action: text().notNull(),
    targetType: text(),
    targetId: text(),
    outcome: text({ enum: ["success", "failure", "denied"] }).notNull(),
    // Text, not inet: the hash covers the address exactly as it was recorded.
    ip: text(),
    userAgent: text(),
    requestId: text(),
    details: jsonb().$type<Record<string, unknown>>(),
    prevHash: text(),
    hash: text().notNull(),
  },
  (t) => [
    index("audit_workspace_idx").on(t.workspaceId, t.id),
    index("audit_workspace_action_idx").on(t.workspaceId, t.action, t.id),
    pgPolicy("audit_read", {
      for: "select",
      to: appRole,
      using: sql`${t.workspaceId} = ${currentWorkspaceId} or (${t.workspaceId} is null and ${platformScope})`,
    }),
    // Platform events (sign-ins, admin actions) are written from any scope.
    pgPolicy("audit_append", {
      for: "insert",
      to: appRole,
      withCheck: sql`${t.workspaceId} = ${currentWorkspaceId} or ${t.workspaceId} is null`,
    }),
  ],
).enableRLS();

/** The store of rate-limiter-flexible (shared by every replica). Holds no tenant data. */
export const rateLimits = pgTable(
  "rate_limits",
  {
    key: varchar({ length: 255 }).primaryKey(),
    points: integer().notNull().default(0),
    expire: bigint({ mode: "number" }),
  },
  () => [pgPolicy("rate_limits_all", { for: "all", to: appRole, using: sql`true`, withCheck: sql`true` })],
).enableRLS();

/**
 * The newest hash of each audit chain (a workspace id, or "platform"). Appending
 * locks the chain's row, which serialises writers of one chain across replicas
 * while other chains proceed in parallel.
 */
export const auditChainHeads = pgTable(
  "audit_chain_heads",
  {
    chain: text().primaryKey(),
    lastHash: text(),
  },
  () => [pgPolicy("audit_chain_heads_all", { for: "all", to: appRole, using: sql`true`, withCheck: sql`true` })],
).enableRLS();
