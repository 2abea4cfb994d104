import pino from "pino";

/** Drops everything unless REEF_TEST_LOG names a level: tests assert on responses, not log lines. */
export const silentLogger = pino({ level: process.env.REEF_TEST_LOG ?? "silent" });
