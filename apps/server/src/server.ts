import { createHmac } from "node:crypto";
import type { Config } from "@reef/config";
import { checkRootKey, sealExistingTranscripts } from "@reef/core";
import { type Database, openDatabase } from "@reef/db";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApp, servicesOf } from "./app.ts";
import { describeLayout, resolveServiceLayout, type ServiceLayout } from "./service-layout.ts";

/** How often runtimes are health-checked and idle ones stopped. */
const RUNTIME_SWEEP_MS = 30_000;

/** Password of the app's database login role: derived, so every replica agrees without storing it. */
export function appRolePassword(secretKey: Buffer): string {
  return createHmac("sha256", secretKey).update("reef/database/app-role/v1").digest("base64url");
}

/** The database as `reef start`, `reef migrate` and `reef status` open it. */
export async function openConfiguredDatabase(
  config: Config,
  logger: Logger,
  opts: { migrate: boolean; attachToRunning?: boolean; keepOwnerPool?: boolean; layout?: ServiceLayout },
): Promise<Database> {
  const layout = opts.layout ?? (await resolveServiceLayout(config));
  return openDatabase({
    databaseUrl: config.databaseUrl,
    appDatabaseUrl: config.databaseAppUrl,
    embedded: {
      dir: layout.postgresDir,
      port: config.embeddedPostgresPort,
      binaries: layout.mirror?.postgres,
    },
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
  const layout = await resolveServiceLayout(config);
  const where = describeLayout(layout, config.dataDir, !config.databaseUrl);
  if (where) logger.info(where.fields, where.msg);
  if (layout.warning) logger.warn(layout.warning);
  const database = await openConfiguredDatabase(config, logger, { migrate: true, layout });
  let app: FastifyInstance;
  try {
    // A wrong root key stops Reef here, with the reason, not later with garbage.
    await checkRootKey(database.db, { current: config.secretKey, previous: config.secretKeyPrevious ?? [] });
    app = await buildApp({ config, database, logger, layout, ...opts });
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await database.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;

  // Transcripts stored in clear by an older Reef: sealed in the background (reads take either form meanwhile).
  const stopSealing = new AbortController();
  const sealing = sealExistingTranscripts({
    db: database.db,
    vault: servicesOf(app).vault,
    signal: stopSealing.signal,
  }).then(
    (sealed) => {
      if (sealed.messages || sealed.titles) logger.info(sealed, "sealed chat transcripts stored in clear");
    },
    (err: unknown) => logger.warn({ err }, "sealing stored chat transcripts failed; the next start tries again"),
  );

  // Runtimes: adopt what survived a restart, then watch health and idleness.
  const runtimes = servicesOf(app).runtimeManager;
  const reconciled = await runtimes.reconcile().catch((err: unknown) => {
    logger.warn({ err }, "reconciling runtimes failed");
    return { adopted: [], cleaned: [] };
  });
  if (reconciled.adopted.length || reconciled.cleaned.length) logger.info(reconciled, "reconciled runtimes");
  // Stop first: a gateway past both timeouts is stopped, not paused on the way.
  const idleTiers = async () => {
    await runtimes.reapIdle();
    await runtimes.pauseIdle();
    await runtimes.swapOutIdle();
  };
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    // Approvals whose relaying process is gone are denied at their deadline by whichever replica sweeps first.
    Promise.all([runtimes.checkHealth(), idleTiers(), servicesOf(app).approvals.sweep()])
      .catch((err: unknown) => logger.warn({ err }, "runtime sweep failed"))
      .finally(() => {
        sweeping = false;
      });
  }, RUNTIME_SWEEP_MS);
  sweep.unref();
  // Said last: whoever waits for this line (a supervisor, the CLI's signal handlers) finds Reef whole.
  logger.info({ url, ms: Math.round(performance.now() - started) }, `Reef is running at ${url}`);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const timer = setTimeout(() => {
        logger.warn("requests did not drain in time; closing their connections");
        app.server.closeAllConnections();
      }, config.shutdownTimeoutMs);
      try {
        clearInterval(sweep);
        stopSealing.abort();
        await app.close();
        // Process runtimes are children of this Reef: stop them rather than orphan them.
        // Containers and pods outlive a Reef restart (a rolling update of several
        // replicas must not stop every workspace); the next Reef adopts them.
        if (config.runtimeDriver === "process") {
          await runtimes
            .stopAll("reef shutting down")
            .catch((err: unknown) => logger.warn({ err }, "stopping runtimes failed"));
        }
      } finally {
        clearTimeout(timer);
        await sealing;
        await database.close();
      }
    })();
    return closing;
  };
  return { app, database, url, close };
}
