import pino from "pino";

/** A logger that drops everything; tests assert on responses, not log lines. */
export const silentLogger = pino({ level: "silent" });
