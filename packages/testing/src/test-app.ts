import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "@reef/config";
import { type AppConfig, buildApp, servicesOf } from "@reef/server";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { silentLogger } from "./logger.ts";
import { createTestDatabase, type TestDatabase } from "./test-postgres.ts";

const GENEROUS = { points: 100_000, durationSec: 60 };

/**
 * The app's settings at their shipped defaults, with `overrides` applied. Rate
 * limits are generous (every test signs up from 127.0.0.1); tests of the limits
 * set their own. Providers may live on 127.0.0.1, where the LLM stand-in runs,
 * as an operator allows a local Ollama; tests of the address policy pass
 * `providerAllowedHosts: []`, Reef's default.
 */
export function testAppConfig(overrides: Partial<AppConfig> = {}): AppConfig {
  const defaults = configSchema.parse({});
  return {
    ...defaults,
    publicUrl: "http://127.0.0.1:7420",
    secretKey: randomBytes(32),
    dataDir: join(tmpdir(), `reef-test-app-${process.pid}`),
    rateLimitSignupIp: GENEROUS,
    rateLimitLoginIp: GENEROUS,
    rateLimitLoginAccount: GENEROUS,
    rateLimitInviteAccept: GENEROUS,
    rateLimitAuthEmail: GENEROUS,
    rateLimitApiRead: GENEROUS,
    rateLimitApiWrite: GENEROUS,
    providerAllowedHosts: ["127.0.0.1"],
    // Most tests grant shell and files; tests of the operator's tool policy set their own list.
    grantableTools: ["web", "files", "shell"],
    ...overrides,
  };
}

export interface TestApp {
  app: FastifyInstance;
  db: TestDatabase;
  close(): Promise<void>;
}

/** The real app on a fresh database, driven with `app.inject()`. */
export async function buildTestApp(opts: { config?: Partial<AppConfig>; webDistDir?: string } = {}): Promise<TestApp> {
  const db = await createTestDatabase();
  const app = await buildApp({
    config: testAppConfig(opts.config),
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

/** A real app on a port, for a browser or `fetch`: see {@link listenTestApp}. */
export interface ListeningTestApp {
  app: FastifyInstance;
  db: TestDatabase;
  /** `http://127.0.0.1:<port>` */
  base: string;
}

/**
 * The real app on a fresh database, listening on 127.0.0.1 (a free port); the web
 * app served from `webDistDir` when given. Stop it with {@link stopTestApp}.
 */
export async function listenTestApp(
  opts: { config?: Partial<AppConfig>; webDistDir?: string; logger?: Logger } = {},
): Promise<ListeningTestApp> {
  const db = await createTestDatabase();
  const app = await buildApp({
    config: testAppConfig(opts.config),
    database: db.database,
    logger: opts.logger ?? silentLogger,
    ...(opts.webDistDir ? { webDistDir: opts.webDistDir } : {}),
  });
  return { app, db, base: await listenLocal(app) };
}

/** Has `app` listen on 127.0.0.1 on a free port. @returns its base URL, `http://127.0.0.1:<port>`. */
export async function listenLocal(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  return `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
}

/**
 * Stops every gateway `app` started, closes it and drops its test database. Either may be
 * missing (a setup that failed early): then what there is is closed.
 */
export async function stopTestApp(app: FastifyInstance | undefined, db: { drop(): Promise<void> } | undefined) {
  if (app) await servicesOf(app).runtimeManager.stopAll("test over");
  await app?.close();
  await db?.drop();
}
