export { APP_LOGIN_ROLE, scramVerifier } from "./app-role.ts";
export { isDatabaseUnavailable } from "./connection-errors.ts";
export { createDb, type Database, type DbLogger, type OpenDatabaseOptions, openDatabase } from "./database.ts";
export { type PostgresBinaries, resolvePostgresBinaries } from "./embedded/binaries.ts";
export { EmbeddedPostgres, type EmbeddedPostgresConnection } from "./embedded/embedded-postgres.ts";
export { MIGRATIONS_FOLDER, MigrationError, type MigrationStatus, migrationStatus, runMigrations } from "./migrate.ts";
export { findFreePort } from "./net.ts";
export {
  AUTH_TOKEN_KINDS,
  type AuthTokenKind,
  type OidcProviderConfig,
  type SamlProviderConfig,
} from "./schema/auth.ts";
export { MESSAGE_STATUSES, type MessageStatus } from "./schema/chat.ts";
export * as schema from "./schema/index.ts";
export {
  AGENT_TOOLS,
  type AgentTool,
  EXEC_POLICIES,
  type ExecPolicy,
  PROVIDER_KINDS,
  type ProviderKind,
} from "./schema/providers.ts";
export { RUNTIME_STATES, type RuntimeState } from "./schema/runtimes.ts";
export {
  RUN_STATUSES,
  RUN_TRIGGERS,
  type RunStatus,
  type RunTrigger,
  SCHEDULE_KINDS,
  type ScheduleKind,
} from "./schema/schedules.ts";
export { WORKSPACE_ROLES, type WorkspaceRole } from "./schema/workspaces.ts";
export { type Db, extendScope, isUuid, type Scope, type Tx, withScope, withWorkspace } from "./with-workspace.ts";
