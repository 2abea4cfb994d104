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

/** Columns every audit entry has, in both trails. */
function entryColumns() {
  return {
    id: bigserial({ mode: "number" }).primaryKey(),
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
  };
}

/**
 * A workspace's append-only audit trail. Its entries form a hash chain: each
 * `hash` covers the entry and the previous entry's hash, so an edited or deleted
 * row breaks verification. The app role has no UPDATE or DELETE grant. The policy
 * is a single equality on purpose: it lets the planner walk the
 * (workspace_id, action, id) index backwards for a page.
 */
export const auditLog = pgTable(
  "audit_log",
  {
    ...entryColumns(),
    workspaceId: uuid().notNull(),
  },
  (t) => [
    index("audit_workspace_idx").on(t.workspaceId, t.id),
    index("audit_workspace_action_idx").on(t.workspaceId, t.action, t.id),
    pgPolicy("audit_read", { for: "select", to: appRole, using: sql`${t.workspaceId} = ${currentWorkspaceId}` }),
    pgPolicy("audit_append", { for: "insert", to: appRole, withCheck: sql`${t.workspaceId} = ${currentWorkspaceId}` }),
  ],
).enableRLS();

/**
 * The platform's audit trail (sign-ins, signups, lockouts, operator actions):
 * one hash chain, written from any scope, read only in platform scope.
 */
export const platformAuditLog = pgTable("platform_audit_log", entryColumns(), (t) => [
  index("platform_audit_action_idx").on(t.action, t.id),
  pgPolicy("platform_audit_read", { for: "select", to: appRole, using: platformScope }),
  pgPolicy("platform_audit_append", { for: "insert", to: appRole, withCheck: sql`true` }),
]).enableRLS();

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
