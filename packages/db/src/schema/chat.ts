import { sql } from "drizzle-orm";
import { bigint, boolean, date, index, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { agents } from "./providers.ts";
import { tenantIsolation } from "./roles.ts";
import { users } from "./users.ts";
import { apiKeys, workspaces } from "./workspaces.ts";

/**
 * A conversation of one member (or one API key) with one agent. Only its owner
 * sees it; its gateway session key encodes workspace, owner and session.
 */
export const chatSessions = pgTable(
  "chat_sessions",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    agentId: uuid()
      .notNull()
      .references(() => agents.id, { onDelete: "cascade" }),
    userId: uuid().references(() => users.id, { onDelete: "cascade" }),
    apiKeyId: uuid().references(() => apiKeys.id, { onDelete: "cascade" }),
    title: text().notNull().default(""),
    /** True when `title` holds a value sealed with the workspace's data key. */
    titleSealed: boolean().notNull().default(false),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastMessageAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    index("chat_sessions_owner_idx").on(t.workspaceId, t.userId, t.createdAt, t.id),
    // Empty once the upgrade has sealed old titles: new rows are always sealed.
    index("chat_sessions_title_unsealed_idx").on(t.workspaceId).where(sql`not ${t.titleSealed}`),
    tenantIsolation("chat_sessions_tenant_isolation", t.workspaceId),
  ],
).enableRLS();

export const MESSAGE_STATUSES = ["streaming", "complete", "aborted", "error"] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** One message of a session. An answer cut short keeps what was said, with its status. */
export const chatMessages = pgTable(
  "chat_messages",
  {
    id: bigint({ mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    sessionId: uuid()
      .notNull()
      .references(() => chatSessions.id, { onDelete: "cascade" }),
    role: text({ enum: ["user", "assistant"] }).notNull(),
    content: text().notNull(),
    /** True when `content` holds a value sealed with the workspace's data key (see the chat service). */
    sealed: boolean().notNull().default(false),
    status: text({ enum: MESSAGE_STATUSES }).notNull().default("complete"),
    error: text(),
    promptTokens: integer(),
    completionTokens: integer(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    completedAt: timestamp({ withTimezone: true }),
    /**
     * While an answer streams, the Reef relaying it touches this every few seconds
     * (also while the runtime wakes): a `streaming` answer whose heartbeat stopped
     * was cut off by a Reef that died, wherever it ran.
     */
    heartbeatAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("chat_messages_session_idx").on(t.sessionId, t.id),
    index("chat_messages_unsealed_idx").on(t.workspaceId, t.id).where(sql`not ${t.sealed}`),
    tenantIsolation("chat_messages_tenant_isolation", t.workspaceId),
  ],
).enableRLS();

/** Monthly usage per workspace: what quotas check and metering bills. */
export const usageMonthly = pgTable(
  "usage_monthly",
  {
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    /** First day of the month (UTC). */
    month: date({ mode: "string" }).notNull(),
    messages: integer().notNull().default(0),
    promptTokens: bigint({ mode: "number" }).notNull().default(0),
    completionTokens: bigint({ mode: "number" }).notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.workspaceId, t.month] }),
    tenantIsolation("usage_monthly_tenant_isolation", t.workspaceId),
  ],
).enableRLS();
