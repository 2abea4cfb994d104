import { sql } from "drizzle-orm";
import { bigint, boolean, index, pgPolicy, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { appRole, currentUserId, currentWorkspaceId, lookup, platformScope } from "./roles.ts";
import { users } from "./users.ts";

export const WORKSPACE_ROLES = ["owner", "admin", "member", "viewer"] as const;
export type WorkspaceRole = (typeof WORKSPACE_ROLES)[number];

/** A workspace is the tenant: every tenant row hangs off one. */
export const workspaces = pgTable(
  "workspaces",
  {
    id: uuid().primaryKey().defaultRandom(),
    name: text().notNull(),
    /** Created for one person at signup (still shareable by invite). */
    personal: boolean().notNull().default(false),
    /** Monthly LLM token budget (prompt + completion), enforced at the LLM proxy; null: the platform default. */
    monthlyTokenBudget: bigint({ mode: "number" }),
    /** Egress policy for web tools, set by operators: when the allow list is non-empty only its hosts are reachable; denied hosts never are. */
    egressAllowHosts: text().array(),
    egressDenyHosts: text().array(),
    /**
     * The agent people land on in chat. No foreign key (agents reference
     * workspaces, and the schema modules would import each other): the agent
     * service clears it in the transaction that deletes the agent.
     */
    defaultAgentId: uuid(),
    /** Members without a second factor (TOTP) cannot open this workspace until they enrol. */
    requireTwoFactor: boolean().notNull().default(false),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // Names are readable by members (for "my workspaces") and operators; rows
    // change only inside the workspace's own scope.
    pgPolicy("workspaces_tenant_isolation", {
      as: "permissive",
      for: "all",
      to: appRole,
      using: sql`${t.id} = ${currentWorkspaceId}`,
      withCheck: sql`${t.id} = ${currentWorkspaceId}`,
    }),
    pgPolicy("workspaces_visible_to_members", {
      for: "select",
      to: appRole,
      using: sql`${platformScope} or exists (
        select 1 from workspace_members m where m.workspace_id = ${t.id} and m.user_id = ${currentUserId})`,
    }),
  ],
).enableRLS();

export const workspaceMembers = pgTable(
  "workspace_members",
  {
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: text({ enum: WORKSPACE_ROLES }).notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.workspaceId, t.userId] }),
    index("workspace_members_user_idx").on(t.userId),
    pgPolicy("members_tenant_isolation", {
      for: "all",
      to: appRole,
      using: sql`${t.workspaceId} = ${currentWorkspaceId}`,
      withCheck: sql`${t.workspaceId} = ${currentWorkspaceId}`,
    }),
    pgPolicy("members_own_memberships", {
      for: "select",
      to: appRole,
      using: sql`${t.userId} = ${currentUserId} or ${platformScope}`,
    }),
  ],
).enableRLS();

export const invites = pgTable(
  "invites",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    email: text().notNull(),
    role: text({ enum: WORKSPACE_ROLES }).notNull(),
    tokenHash: text().notNull().unique(),
    invitedBy: uuid().references(() => users.id, { onDelete: "set null" }),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    acceptedAt: timestamp({ withTimezone: true }),
    acceptedBy: uuid().references(() => users.id, { onDelete: "set null" }),
    revokedAt: timestamp({ withTimezone: true }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("invites_workspace_idx").on(t.workspaceId, t.createdAt),
    pgPolicy("invites_tenant_isolation", {
      for: "all",
      to: appRole,
      using: sql`${t.workspaceId} = ${currentWorkspaceId} or ${t.tokenHash} = ${lookup("invite")}`,
      withCheck: sql`${t.workspaceId} = ${currentWorkspaceId}`,
    }),
  ],
).enableRLS();

export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid().primaryKey().defaultRandom(),
    workspaceId: uuid()
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    name: text().notNull(),
    role: text({ enum: WORKSPACE_ROLES }).notNull(),
    /** First characters of the key, shown in lists so people can tell keys apart. */
    prefix: text().notNull(),
    keyHash: text().notNull().unique(),
    createdBy: uuid().references(() => users.id, { onDelete: "set null" }),
    expiresAt: timestamp({ withTimezone: true }),
    lastUsedAt: timestamp({ withTimezone: true }),
    revokedAt: timestamp({ withTimezone: true }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("api_keys_workspace_idx").on(t.workspaceId, t.createdAt),
    pgPolicy("api_keys_tenant_isolation", {
      for: "all",
      to: appRole,
      using: sql`${t.workspaceId} = ${currentWorkspaceId} or ${t.keyHash} = ${lookup("api_key")}`,
      withCheck: sql`${t.workspaceId} = ${currentWorkspaceId}`,
    }),
  ],
).enableRLS();

/** Permissions are data: which role may do which action. Anything absent is denied. */
export const rolePermissions = pgTable(
  "role_permissions",
  {
    role: text({ enum: WORKSPACE_ROLES }).notNull(),
    action: text().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.role, t.action] }),
    pgPolicy("role_permissions_readable", { for: "select", to: appRole, using: sql`true` }),
  ],
).enableRLS();
