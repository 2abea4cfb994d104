import { sql } from "drizzle-orm";
import { bigint, index, integer, jsonb, pgPolicy, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { appRole, currentWorkspaceId, platformScope } from "./roles.ts";
import { workspaces } from "./workspaces.ts";

/** `queued`: waiting for room under the running-gateway caps (no gateway yet). */
export const RUNTIME_STATES = ["stopped", "queued", "starting", "running", "stopping", "failed"] as const;
export type RuntimeState = (typeof RUNTIME_STATES)[number];

/**
 * One row per workspace runtime: what the manager knows, persisted so that any
 * replica can find, poll or stop it after a restart. The row lock on it decides
 * which replica starts a runtime.
 */
export const runtimes = pgTable(
  "runtimes",
  {
    workspaceId: uuid()
      .primaryKey()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    driver: text().notNull(),
    state: text({ enum: RUNTIME_STATES }).notNull().default("stopped"),
    endpoint: text(),
    /** The driver's own state (pid and port, container id, pod name…). */
    handle: jsonb().$type<Record<string, unknown>>(),
    /** The gateway token, sealed with a key derived from the root key (AES-256-GCM, workspace id as AAD). */
    tokenSealed: text(),
    /** Hash of the settings the runtime was started with; a different hash means restart. */
    configHash: text(),
    /**
     * Bumped by triggers on every write to what the gateway's settings are made of (agents, providers, connectors,
     * agent connectors): while it is unchanged a replica may reuse the settings it last read for this workspace
     * instead of reading them again for every message (migration 0024).
     */
    settingsVersion: bigint({ mode: "number" }).notNull().default(0),
    /** Which Reef process claimed the start, and when (a stale claim may be taken over). */
    claimedBy: text(),
    claimedAt: timestamp({ withTimezone: true }),
    restarts: integer().notNull().default(0),
    failureReason: text(),
    startedAt: timestamp({ withTimezone: true }),
    /** How long the last successful start took, from asking to ready (for "usually about N s"). */
    lastStartMs: integer(),
    lastActivityAt: timestamp({ withTimezone: true }),
    /**
     * Set while a running gateway is paused (idle past the pause timeout: frozen by the driver, memory kept, resumed
     * on the next use). Means something only while `state` is `running`.
     */
    pausedAt: timestamp({ withTimezone: true }),
    /** Set once a paused gateway's memory was moved out to swap (the deeper idle tier); cleared on resume. */
    swappedOutAt: timestamp({ withTimezone: true }),
    stoppedAt: timestamp({ withTimezone: true }),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("runtimes_state_idx").on(t.state, t.lastActivityAt),
    pgPolicy("runtimes_tenant_isolation", {
      for: "all",
      to: appRole,
      using: sql`${t.workspaceId} = ${currentWorkspaceId}`,
      withCheck: sql`${t.workspaceId} = ${currentWorkspaceId}`,
    }),
    // Operators (and the manager's reaper) see and steer every runtime; runtimes hold no tenant content.
    pgPolicy("runtimes_platform", { for: "all", to: appRole, using: platformScope, withCheck: platformScope }),
  ],
).enableRLS();
