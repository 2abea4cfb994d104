import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { z } from "zod";
import { configSchema, ENV_NAMES, type ParsedConfig, secretKeySchema } from "./config-schema.ts";

/** Configuration as the rest of Reef sees it: validated, paths absolute, secret resolved. */
export interface Config extends Omit<ParsedConfig, "secretKey"> {
  secretKey: Buffer;
  publicUrl: string;
  /** Where the secret key came from, for the start-up log. */
  secretKeySource: "env" | "file" | "generated";
  /** Settings given explicitly (env or config file), as opposed to defaults. */
  explicitKeys?: readonly string[];
}

/** A setting was missing or wrong; the message names it and says why. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** A JSON file of camelCase settings; `REEF_CONFIG` in the env names one too. Env wins over file. */
  file?: string;
}

function describeIssues(error: z.ZodError, from: (key: string) => string): string {
  return error.issues
    .map((issue) => {
      const key = String(issue.path[0] ?? "");
      return `  ${from(key)}: ${issue.message}`;
    })
    .join("\n");
}

/**
 * Reads settings from the environment (and an optional JSON file), validates
 * them against {@link configSchema}, and resolves the root secret key. Does not
 * create anything; see {@link ensureSecretKey}.
 */
export async function parseConfig(
  opts: LoadConfigOptions = {},
): Promise<ParsedConfig & { configFile?: string; explicitKeys: string[] }> {
  const env = opts.env ?? {};
  const file = opts.file ?? env.REEF_CONFIG;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    try {
      fromFile = JSON.parse(await readFile(file, "utf8"));
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    const unknownKeys = Object.keys(fromFile).filter((k) => !(k in ENV_NAMES));
    if (unknownKeys.length) throw new ConfigError(`unknown setting(s) in ${file}: ${unknownKeys.join(", ")}`);
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== "") merged[key] = value;
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const source = (key: string) => {
      const name = ENV_NAMES[key as keyof ParsedConfig];
      return name && env[name] !== undefined ? name : file ? `${key} (in ${file})` : (name ?? key);
    };
    throw new ConfigError(`invalid configuration:\n${describeIssues(parsed.error, source)}`);
  }
  return { ...parsed.data, explicitKeys: Object.keys(merged), ...(file ? { configFile: file } : {}) };
}

/**
 * Returns the root secret key: the configured one, else the one kept in
 * `<dataDir>/secret.key`, else a new one written there with mode 0600.
 */
export async function ensureSecretKey(
  parsed: ParsedConfig,
): Promise<{ key: Buffer; source: Config["secretKeySource"] }> {
  if (parsed.secretKey) return { key: parsed.secretKey, source: "env" };
  const path = join(parsed.dataDir, "secret.key");
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`);
    }
  }
  if (text !== undefined) {
    const key = secretKeySchema.safeParse(text);
    if (!key.success) throw new ConfigError(`${path}: ${key.error.issues[0]?.message ?? "invalid key"}`);
    return { key: key.data, source: "file" };
  }
  const key = randomBytes(32);
  await mkdir(parsed.dataDir, { recursive: true, mode: 0o755 });
  await writeFile(path, `${key.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  await chmod(path, 0o600);
  return { key, source: "generated" };
}

/** Parses the config and resolves the secret key: what `reef start` runs at boot. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<Config> {
  const parsed = await parseConfig(opts);
  const dataDir = resolve(parsed.dataDir);
  const { key, source } = await ensureSecretKey({ ...parsed, dataDir });
  const publicUrl =
    parsed.publicUrl ?? `http://${parsed.host.includes(":") ? `[${parsed.host}]` : parsed.host}:${parsed.port}`;
  return { ...parsed, dataDir, secretKey: key, secretKeySource: source, publicUrl };
}

/** The config with secrets masked, for `reef status` and logs. */
export function describeConfig(config: Config): Record<string, unknown> {
  const mask = (url?: string) => {
    if (!url) return undefined;
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  };
  const { secretKey: _secret, secretKeyPrevious, metricsToken, ...rest } = config;
  return {
    ...rest,
    ...(metricsToken ? { metricsToken: "set, masked" } : {}),
    ...(secretKeyPrevious ? { secretKeyPrevious: `${secretKeyPrevious.length} key(s), masked` } : {}),
    databaseUrl: mask(config.databaseUrl),
    databaseAppUrl: mask(config.databaseAppUrl),
    smtpUrl: mask(config.smtpUrl),
  };
}
