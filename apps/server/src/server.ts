import { createHmac } from "node:crypto";
import { join } from "node:path";
import type { Config } from "@reef/config";
import { type Database, openDatabase } from "@reef/db";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApp } from "./app.ts";

/** Password of the app's database login role: derived, so every replica agrees without storing it. */
export function appRolePassword(secretKey: Buffer): string {
  return createHmac("sha256", secretKey).update("reef/database/app-role/v1").digest("base64url");
}

/** The database as `reef start`, `reef migrate` and `reef status` open it. */
export function openConfiguredDatabase(
  config: Config,
  logger: Logger,
  opts: { migrate: boolean; attachToRunning?: boolean; keepOwnerPool?: boolean },
): Promise<Database> {
  return openDatabase({
    databaseUrl: config.databaseUrl,
    appDatabaseUrl: config.databaseAppUrl,
    embedded: { dir: join(config.dataDir, "postgres"), port: config.embeddedPostgresPort },
    appRolePassword: appRolePassword(config.secretKey),
    poolSize: config.databasePoolSize,
    migrate: opts.migrate,
    attachToRunning: opts.attachToRunning ?? false,
    keepOwnerPool: opts.keepOwnerPool ?? false,
    logger: {
      info: (msg) => logger.info(msg),
      warn: (msg) => logger.warn(msg),
      debug: (msg) => logger.debug(msg),
    },
  });
}

export interface RunningServer {
  app: FastifyInstance;
  database: Database;
  /** The address the server actually listens on. */
  url: string;
  /** Drains requests (bounded by the shutdown timeout), closes the pool, stops embedded Postgres. */
  close(): Promise<void>;
}

/** Boots Reef: database up and migrated, app built, listening. */
export async function startServer(
  config: Config,
  logger: Logger,
  opts: { webDistDir?: string } = {},
): Promise<RunningServer> {
  const started = performance.now();
  const database = await openConfiguredDatabase(config, logger, { migrate: true });
  let app: FastifyInstance;
  try {
    app = await buildApp({ config, database, logger, ...opts });
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await database.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, ms: Math.round(performance.now() - started) }, `Reef is running at ${url}`);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const timer = setTimeout(() => {
        logger.warn("requests did not drain in time; closing their connections");
        app.server.closeAllConnections();
      }, config.shutdownTimeoutMs);
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
        await database.close();
      }
    })();
    return closing;
  };
  return { app, database, url, close };
}
