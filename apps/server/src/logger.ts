import pino, { type Logger, type LoggerOptions } from "pino";

/**
 * Paths whose values never reach a log line. Covers headers that carry
 * credentials and any body or object field that looks like a secret.
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  "*.password",
  "*.newPassword",
  "*.apiKey",
  "*.token",
  "*.secret",
  "*.secretKey",
  "*.key",
  "*.databaseUrl",
  "*.databaseAppUrl",
];

const SECRET_QUERY = /^(token|key|api[_-]?key|secret|password|code|signature|sig)$/i;

/** The request URL with secret-looking query values masked. */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const name of [...params.keys()]) if (SECRET_QUERY.test(name)) params.set(name, "[Redacted]");
  return `${url.slice(0, q)}?${params.toString()}`;
}

export interface LoggerSettings {
  level: string;
  format: "auto" | "json" | "pretty";
}

export function loggerOptions(settings: LoggerSettings): LoggerOptions {
  const pretty = settings.format === "pretty" || (settings.format === "auto" && process.stdout.isTTY === true);
  return {
    level: settings.level,
    redact: { paths: REDACT_PATHS, censor: "[Redacted]" },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        method: req.method,
        url: redactUrl(req.url),
        ip: req.ip,
      }),
    },
    ...(pretty
      ? { transport: { target: "pino-pretty", options: { translateTime: "SYS:HH:MM:ss", ignore: "pid,hostname" } } }
      : {}),
  };
}

export function createLogger(settings: LoggerSettings): Logger {
  return pino(loggerOptions(settings));
}
