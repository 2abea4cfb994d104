import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  date,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
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
    /** When its owner pinned it to the top of their list; null: not pinned. */
    pinnedAt: timestamp({ withTimezone: true }),
    /**
     * True after an edit-and-resend deleted the gateway's copy of this
     * conversation, until a turn completes: the kept earlier turns must be told
     * to the agent again with the next message.
     */
    gatewayRetellPending: boolean().notNull().default(false),
    /**
     * The schedule whose runs write here (no foreign key: the schedules table
     * refers to this one; a deleted schedule leaves its output readable).
     */
    scheduleId: uuid(),
    /**
     * For a conversation held through the OpenAI-compatible API: a hash of the
     * messages so far (the client resends them all), so the next request that
     * continues them continues this session.
     */
    openaiFingerprint: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastMessageAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    index("chat_sessions_owner_idx").on(t.workspaceId, t.userId, t.createdAt, t.id),
    // Empty once the upgrade has sealed old titles: new rows are always sealed.
    index("chat_sessions_openai_idx")
      .on(t.workspaceId, t.apiKeyId, t.openaiFingerprint)
      .where(sql`${t.openaiFingerprint} is not null`),
    index("chat_sessions_title_unsealed_idx").on(t.workspaceId).where(sql`not ${t.titleSealed}`),
    tenantIsolation("chat_sessions_tenant_isolation", t.workspaceId),
  ],
).enableRLS();

/**
 * `aborted`: a person pressed Stop. `interrupted`: the answer was cut off
 * without anyone asking (the Reef relaying it went away mid-answer).
 */
export const MESSAGE_STATUSES = ["streaming", "complete", "aborted", "interrupted", "error"] as const;
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
    /** The stable code of `error` (one of the chat error codes), so a reloaded page offers the right next step. */
    errorCode: text(),
    /**
     * Set by Stop on any replica; the replica relaying the answer sees it on its
     * next heartbeat and stops the run in the gateway.
     */
    abortRequestedAt: timestamp({ withTimezone: true }),
    promptTokens: integer(),
    completionTokens: integer(),
    /**
     * The answer's execution trace (tool calls, their arguments, status, timing
     * and truncated output) as JSON, sealed like `content`; null when no tool ran.
     */
    trace: text(),
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
    // The idle sweeps ask whether a workspace still has an answer streaming before pausing or stopping its gateway.
    index("chat_messages_streaming_idx").on(t.workspaceId).where(sql`${t.status} = 'streaming'`),
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

export const APPROVAL_STATUSES = ["pending", "approved", "denied", "expired"] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];
export const APPROVAL_DECISIONS = ["allow-once", "allow-always", "deny"] as const;
export type ApprovalDecision = (typeof APPROVAL_DECISIONS)[number];

/**
 * A gateway's request for a person's approval (an exec command, or a plugin's
 * action), relayed by Reef. The gateway owns the wait; this row is who may
 * decide, what was decided, by whom and when. First answer wins: a decision is
 * an update of a `pending` row.
 */
export const approvals = pgTable(
  "approvals",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    /** The gateway's own approval id (what `approval.resolve` takes). */
    gatewayApprovalId: text().notNull(),
    kind: text({ enum: ["exec", "plugin"] }).notNull(),
    agentId: uuid().references(() => agents.id, { onDelete: "set null" }),
    /** The chat session whose turn asked; null when the gateway did not say. */
    sessionId: uuid().references(() => chatSessions.id, { onDelete: "set null" }),
    /** The answer being written when it asked. */
    messageId: bigint({ mode: "number" }),
    /** Who the run was for: the person chatting, or the API key that started it. */
    requestedByUserId: uuid().references(() => users.id, { onDelete: "set null" }),
    requestedByApiKeyId: uuid().references(() => apiKeys.id, { onDelete: "set null" }),
    /** The command (or plugin action summary), sealed with the workspace's data key. */
    subject: text().notNull(),
    cwd: text(),
    status: text({ enum: APPROVAL_STATUSES }).notNull().default("pending"),
    decision: text({ enum: APPROVAL_DECISIONS }),
    decidedByUserId: uuid().references(() => users.id, { onDelete: "set null" }),
    /** `person`, or `timeout` when nobody answered in time. */
    decidedVia: text({ enum: ["person", "timeout", "gateway"] }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    decidedAt: timestamp({ withTimezone: true }),
    /** When the deciders were emailed about a long wait (once). */
    notifiedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex("approvals_gateway_id_idx").on(t.workspaceId, t.gatewayApprovalId),
    index("approvals_list_idx").on(t.workspaceId, t.createdAt, t.id),
    index("approvals_pending_idx").on(t.expiresAt).where(sql`${t.status} = 'pending'`),
    tenantIsolation("approvals_tenant_isolation", t.workspaceId),
  ],
).enableRLS();
