import { type Config, ConfigError, debugStacks, loadConfig, parseConfig, processConfigSource } from "@reef/config";
import { createLogger, openConfiguredDatabase } from "@reef/server";
import type { Command } from "commander";
import type pg from "pg";
import type { Logger } from "pino";

/** Exit status for a configuration error (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

/** Loads config from the environment (and `--config`), or exits naming the bad setting. */
const sourceFor = (command: Command) => processConfigSource(command.optsWithGlobals<{ config?: string }>().config);

export async function configFor(command: Command): Promise<Config> {
  try {
    return await loadConfig(sourceFor(command));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`reef: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

/**
 * The environment's (and `--config`'s) settings, parsed but with nothing created
 * (no secret key generated): for commands that inspect a setup. Throws ConfigError.
 */
export function parsedConfigFor(command: Command): ReturnType<typeof parseConfig> {
  return parseConfig(sourceFor(command));
}

export function loggerFor(config: Config, overrides: { level?: string } = {}): Logger {
  return createLogger({ level: overrides.level ?? config.logLevel, format: config.logFormat });
}

/** Prints an error without a stack (unless debugging) and exits non-zero. */
export function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`reef: ${message}\n`);
  if (debugStacks() && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}

/**
 * Runs `fn` with the database owner's pool (for commands that must read past
 * RLS), then closes everything, including an embedded server started for it.
 */
export async function withOwnerPool<T>(config: Config, logger: Logger, fn: (owner: pg.Pool) => Promise<T>): Promise<T> {
  const database = await openConfiguredDatabase(config, logger, {
    migrate: false,
    attachToRunning: true,
    keepOwnerPool: true,
  });
  try {
    if (!database.owner) throw new Error("no owner connection");
    return await fn(database.owner);
  } finally {
    await database.close();
  }
}
