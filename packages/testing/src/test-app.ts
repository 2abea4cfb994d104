import { buildApp } from "@reef/server";
import type { FastifyInstance } from "fastify";
import { silentLogger } from "./logger.ts";
import { createTestDatabase, type TestDatabase } from "./test-postgres.ts";

export interface TestApp {
  app: FastifyInstance;
  db: TestDatabase;
  close(): Promise<void>;
}

/** The real app on a fresh database, driven with `app.inject()`. */
export async function buildTestApp(
  opts: { bodyLimitBytes?: number; webDistDir?: string; publicUrl?: string } = {},
): Promise<TestApp> {
  const db = await createTestDatabase();
  const app = await buildApp({
    config: {
      bodyLimitBytes: opts.bodyLimitBytes ?? 1024 * 1024,
      trustProxy: false,
      publicUrl: opts.publicUrl ?? "http://127.0.0.1:7420",
    },
    database: db.database,
    logger: silentLogger,
    ...(opts.webDistDir ? { webDistDir: opts.webDistDir } : {}),
  });
  await app.ready();
  return {
    app,
    db,
    async close() {
      await app.close();
      await db.drop();
    },
  };
}
