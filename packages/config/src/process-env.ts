import type { LoadConfigOptions } from "./load-config.ts";

// The one place Reef reads its own process environment: entry points (the CLI) take their configuration source
// from here and pass it on; nothing else reads `process.env`.

/** This process's environment (and a `--config` file, when given) as the source of Reef's configuration. */
export function processConfigSource(file?: string): LoadConfigOptions {
  return { env: process.env, ...(file ? { file } : {}) };
}

/**
 * `REEF_DEBUG`: print stack traces with errors. Read apart from the schema, since it must work when parsing the
 * configuration is what failed.
 */
export function debugStacks(): boolean {
  return Boolean(process.env.REEF_DEBUG);
}
