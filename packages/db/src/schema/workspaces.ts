import { sql } from "drizzle-orm";
import { pgPolicy, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { appRole, currentWorkspaceId } from "./roles.ts";

/** A workspace is the tenant: every tenant row hangs off one. */
export const workspaces = pgTable(
  "workspaces",
  {
    id: uuid().primaryKey().defaultRandom(),
    name: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  () => [
    pgPolicy("workspaces_tenant_isolation", {
      as: "permissive",
      for: "all",
      to: appRole,
      using: sql`id = ${currentWorkspaceId}`,
      withCheck: sql`id = ${currentWorkspaceId}`,
    }),
  ],
).enableRLS();
