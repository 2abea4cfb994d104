import type {
  adminWorkspaceSchema,
  agentImpactSchema,
  agentSchema,
  apiKeySchema,
  approvalSchema,
  auditEntrySchema,
  authStateSchema,
  catalogEntryViewSchema,
  chatSessionSchema,
  connectorTestResultSchema,
  connectorViewSchema,
  connectorWorkflowSchema,
  identityProviderSchema,
  identitySchema,
  invitePreviewSchema,
  inviteSchema,
  memberSchema,
  meResponseSchema,
  messageSchema,
  platformSettingsSchema,
  providerSchema,
  providerTestResultSchema,
  runDetailSchema,
  runSchema,
  runtimeSchema,
  schedulePreviewSchema,
  scheduleSchema,
  sessionSchema,
  signInResultSchema,
  testEmailResultSchema,
  totpSetupSchema,
  traceStepSchema,
  twoFactorStatusSchema,
  usageSchema,
  workspaceImpactSchema,
  workspaceSchema,
} from "@reef/contracts";
import type { z } from "zod";

// The API's shapes, inferred from the same zod schemas the server validates with.
export type Me = z.infer<typeof meResponseSchema>;
export type Membership = Me["workspaces"][number];
export type Provider = z.infer<typeof providerSchema>;
export type ProviderTest = z.infer<typeof providerTestResultSchema>;
export type Agent = z.infer<typeof agentSchema>;
export type ChatSession = z.infer<typeof chatSessionSchema>;
export type Message = z.infer<typeof messageSchema>;
export type Usage = z.infer<typeof usageSchema>;
export type Runtime = z.infer<typeof runtimeSchema>;
export type Member = z.infer<typeof memberSchema>;
export type ApiKey = z.infer<typeof apiKeySchema>;
export type PlatformSettings = z.infer<typeof platformSettingsSchema>;
export type TestEmailResult = z.infer<typeof testEmailResultSchema>;
export type AuditEntry = z.infer<typeof auditEntrySchema>;
export type TraceStep = z.infer<typeof traceStepSchema>;
export type Approval = z.infer<typeof approvalSchema>;
export type ExecPolicy = Agent["execPolicy"];
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
export type Role = Membership["role"];
// --- team (H4) ---
export type Invite = z.infer<typeof inviteSchema>;
export type InvitePreview = z.infer<typeof invitePreviewSchema>;
export type WorkspaceView = z.infer<typeof workspaceSchema>;
export type WorkspaceImpact = z.infer<typeof workspaceImpactSchema>;
export type AgentImpact = z.infer<typeof agentImpactSchema>;
// --- schedules (H3) ---
export type Schedule = z.infer<typeof scheduleSchema>;
export type CreatedSchedule = Schedule & { secret: string | null };
export type ScheduleRun = z.infer<typeof runSchema>;
export type ScheduleRunDetail = z.infer<typeof runDetailSchema>;
export type SchedulePreview = z.infer<typeof schedulePreviewSchema>;
// --- connectors (issue 16) ---
export type Connector = z.infer<typeof connectorViewSchema>;
export type ConnectorKind = Connector["kind"];
export type ConnectorTest = z.infer<typeof connectorTestResultSchema>;
export type ConnectorWorkflow = z.infer<typeof connectorWorkflowSchema>;
export type CatalogEntry = z.infer<typeof catalogEntryViewSchema>;
// --- single sign-on and sign-in policy (issue 17) ---
export type IdentityProvider = z.infer<typeof identityProviderSchema>;
export type IdentityProviderKind = IdentityProvider["kind"];
export type AdminWorkspace = z.infer<typeof adminWorkspaceSchema>;
/** A platform setting the configuration may fix (`source: "config"`). */
export interface SourcedSetting<T> {
  value: T;
  source: PlatformSettings["connectorsEnabled"]["source"];
}
/** The sign-in policy in `GET /api/v1/admin/settings` (optional until every server has it). */
export interface SignInPolicySettings {
  requireSso?: SourcedSetting<boolean>;
  requireTwoFactor?: SourcedSetting<boolean>;
}
/** A workspace with its own two-factor rule (`PATCH /api/v1/workspaces/:wid {requireTwoFactor}`). */
export type WorkspaceWithPolicy = WorkspaceView & { requireTwoFactor?: boolean };
// --- sign-in and account (issue 17) ---
export type AuthState = z.infer<typeof authStateSchema>;
export type Session = z.infer<typeof sessionSchema>;
export type LinkedIdentity = z.infer<typeof identitySchema>;
export type TwoFactorStatus = z.infer<typeof twoFactorStatusSchema>;
export type TotpSetup = z.infer<typeof totpSetupSchema>;
/** A password or magic-link sign-in: signed in, or the second-factor step it still needs. */
export type SignInResult = z.infer<typeof signInResultSchema>;
