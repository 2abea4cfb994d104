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
  "*.currentPassword",
  "*.clientSecret",
  "*.challenge",
  "*.recoveryCode",
  "*.recoveryCodes",
  "*.apiKey",
  "*.token",
  "*.secret",
  "*.secretKey",
  "*.secretKeyPrevious",
  "*.key",
  "*.databaseUrl",
  "*.databaseAppUrl",
  "*.smtpUrl",
];

// `state` and `RelayState` carry single-use sign-in tokens, `SAMLResponse` a signed assertion.
const SECRET_QUERY = /^(token|key|api[_-]?key|secret|password|code|signature|sig|state|relaystate|samlresponse)$/i;
// Reef's own secrets have recognisable prefixes: invite (ri_), session (rs_), API key (reef_) and the sign-in
// flows' single-use tokens (magic link, reset, email change, second factor, SSO state and link).
const SECRET_IN_PATH = /\b(ri_|rs_|reef_|rml_|rpr_|rec_|r2f_|rss_|rsl_)[A-Za-z0-9_-]{8,}/g;

/** The request URL with secret-looking query values and Reef tokens in the path masked. */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  const path = (q < 0 ? url : url.slice(0, q)).replace(SECRET_IN_PATH, "$1[Redacted]");
  if (q < 0) return path;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const name of [...params.keys()]) if (SECRET_QUERY.test(name)) params.set(name, "[Redacted]");
  return `${path}?${params.toString()}`;
}

/**
 * Errors as pino logs them, minus the bound parameters Drizzle puts in a failed
 * query's message (they can hold password hashes or tokens).
 */
export function serializeError(err: Error): Record<string, unknown> {
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  const scrub = (text: unknown) =>
    typeof text === "string" ? text.replace(/\nparams: .*$/gm, "\nparams: [Redacted]") : text;
  out.message = scrub(out.message);
  out.stack = scrub(out.stack);
  return out;
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
      err: serializeError,
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
