export { silentLogger } from "./logger.ts";
export { buildTestApp, type TestApp } from "./test-app.ts";
export { createTestDatabase, type TestDatabase, testPostgres } from "./test-postgres.ts";
