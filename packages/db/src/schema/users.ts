import { sql } from "drizzle-orm";
import {
  boolean,
  index,
  inet,
  integer,
  pgPolicy,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { appRole, currentUserId, currentWorkspaceId, lookup, platformScope } from "./roles.ts";

/** People who can sign in. Not tenant data: a user may belong to many workspaces. */
export const users = pgTable(
  "users",
  {
    id: uuid().primaryKey(),
    email: text().notNull(),
    name: text().notNull(),
    passwordHash: text(),
    platformRole: text({ enum: ["super_admin", "user"] })
      .notNull()
      .default("user"),
    deactivatedAt: timestamp({ withTimezone: true }),
    /**
     * Made or re-keyed by `reef create-admin`: may still sign in with a password
     * when the operator requires single sign-on (the way back in if the IdP breaks).
     */
    breakglass: boolean().notNull().default(false),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("users_email_key").on(sql`lower(${t.email})`),
    // Yourself, the members of the workspace in scope, or everyone for operators.
    pgPolicy("users_visible", {
      for: "select",
      to: appRole,
      using: sql`${t.id} = ${currentUserId} or ${platformScope} or lower(${t.email}) = ${lookup("email")} or exists (
        select 1 from workspace_members m where m.user_id = ${t.id} and m.workspace_id = ${currentWorkspaceId})`,
    }),
    pgPolicy("users_insert_self", { for: "insert", to: appRole, withCheck: sql`${t.id} = ${currentUserId}` }),
    pgPolicy("users_update", {
      for: "update",
      to: appRole,
      using: sql`${t.id} = ${currentUserId} or ${platformScope}`,
      withCheck: sql`${t.id} = ${currentUserId} or ${platformScope}`,
    }),
  ],
).enableRLS();

/** Server-side sessions; the cookie holds the token, the table only its SHA-256. */
export const sessions = pgTable(
  "sessions",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    tokenHash: text().notNull().unique(),
    ip: inet(),
    userAgent: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    revokedAt: timestamp({ withTimezone: true }),
    /** How the session was signed in: `password`, `magic_link`, `signup`, `invite`, `oidc:<slug>`, `saml:<slug>`; with `+totp` after a second factor. */
    method: text(),
  },
  (t) => [
    index("sessions_user_idx").on(t.userId, t.createdAt),
    pgPolicy("sessions_own", {
      for: "all",
      to: appRole,
      using: sql`${t.userId} = ${currentUserId} or ${platformScope} or ${t.tokenHash} = ${lookup("session")}`,
      withCheck: sql`${t.userId} = ${currentUserId} or ${platformScope}`,
    }),
  ],
).enableRLS();

/**
 * One row: which user was the first ever (the platform's super_admin). Claimed
 * atomically at signup, so two simultaneous first signups cannot both win.
 */
export const platformState = pgTable(
  "platform_state",
  {
    id: integer().primaryKey().default(1),
    firstUserId: uuid().references(() => users.id, { onDelete: "set null" }),
  },
  () => [pgPolicy("platform_state_all", { for: "all", to: appRole, using: sql`true`, withCheck: sql`true` })],
).enableRLS();
