export { type AdminService, createAdminService } from "./admin/admin-service.ts";
export { type AgentService, type AgentView, createAgentService } from "./agents/agent-service.ts";
export {
  assertGrantable,
  type BlockedTool,
  blockedTools,
  DEFAULT_GRANTABLE_TOOLS,
  type ToolPolicy,
  usableTools,
} from "./agents/tool-grants.ts";
export { type ApiKeyService, createApiKeyService } from "./api-keys/api-key-service.ts";
export type {
  ApprovalRelay,
  ApprovalTurn,
  ApprovalView,
  GatewayApprovalRequest,
} from "./approvals/approval-relay.ts";
export { type ApprovalService, createApprovalService } from "./approvals/approval-service.ts";
export { exactEntry, matchAllowlist } from "./approvals/exec-allowlist.ts";
export { type AuditQueryService, createAuditQueryService } from "./audit/audit-query-service.ts";
export { type AuditEntry, type AuditService, createAuditService, verifyAuditChains } from "./audit/audit-service.ts";
export { type Action, createPermissions, type Permissions } from "./authz/permissions.ts";
export { type AbortNotifier, CHAT_ABORT_CHANNEL, createAbortNotifier } from "./chat/abort-notifier.ts";
export {
  type ChatEvent,
  type ChatService,
  type ChatTurn,
  createChatService,
  type MessageView,
  type SessionView,
  type TurnSubscription,
} from "./chat/chat-service.ts";
export { SEAL_BATCH, type SealTranscriptsResult, sealExistingTranscripts } from "./chat/seal-transcripts-upgrade.ts";
export { createTranscriptSealer, type TranscriptSealer } from "./chat/transcript-sealing.ts";
export {
  connectorApiKeyRecordId,
  connectorHeadersRecordId,
  openConnectorApiKey,
  openConnectorHeaders,
} from "./connectors/connector-credentials.ts";
export { guardedMcpFetch, probeConnector } from "./connectors/connector-probe.ts";
export {
  type ConnectorAgentInput,
  type ConnectorPolicy,
  type ConnectorService,
  createConnectorService,
} from "./connectors/connector-service.ts";
export {
  EMPTY_MCP_CATALOG,
  loadMcpCatalog,
  type McpCatalog,
  type McpCatalogEntry,
  mcpCatalogOf,
} from "./connectors/mcp-catalog.ts";
export { createEgressPolicy, type EgressPolicy, type EgressResolver } from "./egress/egress-policy.ts";
export { createEgressProxy, type EgressProxy, REFUSED_HEADER } from "./egress/egress-proxy.ts";
export { createEgressRefusalRecorder, type EgressRefusalRecorder } from "./egress/egress-refusals.ts";
export { createEgressService, type EgressService } from "./egress/egress-service.ts";
export { type AccountService, createAccountService } from "./identity/account-service.ts";
export { type AuthState, type AuthStateService, createAuthState } from "./identity/auth-state.ts";
export {
  consumeAuthToken,
  issueAuthToken,
  linkInvalid,
  purgeExpiredAuthTokens,
} from "./identity/auth-tokens.ts";
export { createEmailLinkService, type EmailLinkService } from "./identity/email-link-service.ts";
export { createIdentityService, type IdentityService, ssoRequired } from "./identity/identity-service.ts";
export { safeNext } from "./identity/next-path.ts";
export {
  createSignIn,
  methodHasSecondFactor,
  type PublicUser,
  type SignIn,
  type SignInOutcome,
  type SignInPolicy,
} from "./identity/sign-in.ts";
export {
  createTwoFactorService,
  resealTotpSeedsIn,
  TwoFactorLockedError,
  type TwoFactorService,
} from "./identity/two-factor-service.ts";
export { createSmtpMailer, type Mail, type Mailer, type SmtpServer } from "./mail/mailer.ts";
export {
  type Completion,
  createOpenAiService,
  MAX_OPENAI_MODELS,
  type OpenAiModel,
  type OpenAiService,
} from "./openai/openai-service.ts";
export {
  createRuntimeOutbound,
  INTERNAL_PREFIX,
  REFUSE_ALL_EGRESS,
  type RuntimeOutboundDeps,
  type RuntimeOutboundService,
} from "./outbound/outbound-server.ts";
export { createProviderFailures, type ProviderFailure, type ProviderFailures } from "./outbound/provider-failures.ts";
export {
  createPlatformSealer,
  createPlatformSettings,
  type EmailSettingsInput,
  type PlatformDefaults,
  type PlatformSettingsPatch,
  type PlatformSettingsService,
  resealPlatformSecrets,
} from "./platform/platform-settings-service.ts";
export { maskKey, PROVIDER_KIND_INFO, probeProvider } from "./providers/provider-catalog.ts";
export { createProviderService, type ProviderService, type ProviderView } from "./providers/provider-service.ts";
export {
  createQuotaService,
  type LlmCallView,
  type QuotaLimits,
  type QuotaService,
  type UsageView,
} from "./quotas/quota-service.ts";
export {
  createRateLimits,
  type RateLimitClass,
  type RateLimitSettings,
  type RateLimits,
} from "./rate-limit/rate-limits.ts";
export { defaultMaxRuntimes, type RuntimeCaps } from "./runtime/runtime-capacity.ts";
export {
  createRuntimeManager,
  type RuntimeConnection,
  type RuntimeManager,
  type RuntimeManagerDeps,
  type RuntimeView,
} from "./runtime/runtime-manager.ts";
export { createRuntimeService, type RuntimeService, type RuntimeStatusView } from "./runtime/runtime-service.ts";
export { createRuntimeTokenSealer, resealRuntimeTokens, type TokenKeyring } from "./runtime/runtime-tokens.ts";
export { renderPrompt } from "./schedules/prompt-template.ts";
export {
  createScheduleService,
  type ScheduleService,
  type ScheduleWithSecret,
} from "./schedules/schedule-service.ts";
export { createScheduler, installJobQueue, SCHEDULER_QUEUES, type Scheduler } from "./schedules/scheduler.ts";
export { type CallFacts, createWebhookService, type WebhookService } from "./schedules/webhook-service.ts";
export { newWebhookSecret, signWebhook, verifyWebhook } from "./schedules/webhook-signature.ts";
export type { Actor, RequestContext, UserActor } from "./shared/context.ts";
export type { Page } from "./shared/pagination.ts";
export { createSealer, type Sealer } from "./shared/sealing.ts";
export {
  createIdentityProviderService,
  type IdentityProviderService,
  openProviderSecret,
  providerSecretAad,
} from "./sso/identity-provider-service.ts";
export { createOidcFlow, type OidcFlow } from "./sso/oidc-flow.ts";
export {
  buildSamlConfig,
  describeCerts,
  parseIdpMetadata,
  type SamlConfigInput,
  selfSignedKeyPair,
  spAcsUrl,
  spEntityId,
} from "./sso/saml-config.ts";
export { createSamlFlow, type SamlFlow } from "./sso/saml-flow.ts";
export { createSsoService, type SsoService } from "./sso/sso-service.ts";
export { createSystemService, type SystemService } from "./system/system-service.ts";
export {
  checkRootKey,
  createVault,
  type RootKeyring,
  rootKeyId,
  rotateRootKey,
  type Vault,
  VaultKeyError,
} from "./vault/vault-service.ts";
export { createInviteService, type InviteService } from "./workspace/invite-service.ts";
export { createWorkspaceGate, type WorkspaceGate } from "./workspace/workspace-access.ts";
export { createWorkspaceService, type WorkspaceService } from "./workspace/workspace-service.ts";
