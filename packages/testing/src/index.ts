export { ApiClient, signUp } from "./api-client.ts";
export { silentLogger } from "./logger.ts";
export { buildTestApp, type TestApp, testAppConfig } from "./test-app.ts";
export { createTestDatabase, type TestDatabase, testPostgres } from "./test-postgres.ts";
