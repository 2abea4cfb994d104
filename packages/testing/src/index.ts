export { ApiClient, signUp } from "./api-client.ts";
export { accessibilityViolations, CHROMIUM_PATH, launchChromium, signedInContext } from "./browser.ts";
export {
  type BrowserWatch,
  type BrowserWatchOptions,
  createBrowserWatch,
  SCREENSHOTS_DIR,
  shotIfFailed,
} from "./browser-watch.ts";
export {
  addConnector,
  allowConnectorHosts,
  hostOf,
  optIn,
  startToolCallingStandIn,
  toolOf,
} from "./connector-setup.ts";
export { type DumpableDatabase, dumpableDatabase } from "./dumpable-database.ts";
export { type HttpClient, httpClient } from "./http-client.ts";
export { filesContaining, processGroupHolding } from "./leaks.ts";
export {
  callNamedTool,
  echoReply,
  execAfterRun,
  type LlmStandIn,
  type LlmStandInOptions,
  type RecordedRequest,
  type StandInToolCall,
  startLlmStandIn,
  toolResultsOf,
} from "./llm-stand-in.ts";
export { recordingLogger, silentLogger } from "./logger.ts";
export { type McpRequestRecord, type McpStandIn, type McpStandInOptions, startMcpStandIn } from "./mcp-stand-in.ts";
export { type OidcStandIn, type OidcStandInOptions, type OidcTestUser, startOidcStandIn } from "./oidc-stand-in.ts";
export { freePort } from "./ports.ts";
export {
  type ParsedAuthnRequest,
  type SamlKeyName,
  type SamlPost,
  type SamlStandIn,
  type SamlUser,
  type SamlVariant,
  startSamlStandIn,
} from "./saml-stand-in.ts";
export {
  linkToken,
  mailText,
  type ReceivedMail,
  type SmtpStandIn,
  type SmtpStandInOptions,
  startSmtpStandIn,
  tokenIn,
} from "./smtp-stand-in.ts";
export { type ReceivedEvent, readEvents, textOf } from "./sse.ts";
export {
  type Api,
  addAgent,
  addStandInProvider,
  chatOnce,
  expectStatus,
  joinWorkspace,
  ownerWithAgents,
} from "./stand-in-setup.ts";
export {
  buildTestApp,
  type ListeningTestApp,
  listenLocal,
  listenTestApp,
  stopTestApp,
  type TestApp,
  testAppConfig,
} from "./test-app.ts";
export { createTestDatabase, type TestDatabase, testPostgres } from "./test-postgres.ts";
