export { ApiClient, signUp } from "./api-client.ts";
export { accessibilityViolations, CHROMIUM_PATH, launchChromium } from "./browser.ts";
export { type LlmStandIn, type LlmStandInOptions, type RecordedRequest, startLlmStandIn } from "./llm-stand-in.ts";
export { silentLogger } from "./logger.ts";
export { type ReceivedEvent, readEvents, textOf } from "./sse.ts";
export { buildTestApp, type TestApp, testAppConfig } from "./test-app.ts";
export { createTestDatabase, type TestDatabase, testPostgres } from "./test-postgres.ts";
