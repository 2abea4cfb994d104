export { type ConfigInput, configSchema, ENV_NAMES, type ParsedConfig, secretKeySchema } from "./config-schema.ts";
export {
  type Config,
  ConfigError,
  describeConfig,
  ensureSecretKey,
  type LoadConfigOptions,
  loadConfig,
  parseConfig,
} from "./load-config.ts";
export { debugStacks, processConfigSource } from "./process-env.ts";
export { type TestHarnessSettings, testHarnessSettings } from "./test-harness-settings.ts";
