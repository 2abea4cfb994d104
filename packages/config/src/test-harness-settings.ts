import { z } from "zod";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const harnessSchema = z.object({
  /** The level the test kit's app logger writes at (`REEF_TEST_LOG`); default silent. */
  REEF_TEST_LOG: z.enum(LOG_LEVELS).default("silent"),
});

/** Settings of the test harness (not of Reef itself). */
export interface TestHarnessSettings {
  logLevel: (typeof LOG_LEVELS)[number];
}

let cached: TestHarnessSettings | undefined;

/**
 * The test harness's settings, read once from the environment the tests or
 * benchmarks run in. A bad value fails loudly rather than hiding logs.
 */
export function testHarnessSettings(env: NodeJS.ProcessEnv = process.env): TestHarnessSettings {
  if (!cached) {
    const parsed = harnessSchema.safeParse(env);
    if (!parsed.success) {
      throw new Error(`REEF_TEST_LOG must be one of ${LOG_LEVELS.join(", ")}`);
    }
    cached = { logLevel: parsed.data.REEF_TEST_LOG };
  }
  return cached;
}
