import { UnavailableError } from "@reef/contracts";
import nodemailer from "nodemailer";

/** One plain-text email. */
export interface Mail {
  to: string;
  subject: string;
  text: string;
}

/** Sends mail; absent when no SMTP server is configured. */
export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** An SMTP server given field by field (what the settings screen edits). */
export interface SmtpServer {
  host: string;
  port: number;
  /** `tls`: implicit TLS; `starttls`: plain then upgrade, refused if the server cannot; `none`: never encrypted. */
  security: "tls" | "starttls" | "none";
  username?: string | undefined;
  password?: string | undefined;
}

// A mail server that accepts the connection and then says nothing must not hold
// an invite request (or the settings screen's test) for nodemailer's 2-minute default.
const TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 };

function transportOptions(server: string | SmtpServer) {
  if (typeof server === "string") return server;
  return {
    host: server.host,
    port: server.port,
    secure: server.security === "tls",
    requireTLS: server.security === "starttls",
    ignoreTLS: server.security === "none",
    ...(server.username ? { auth: { user: server.username, pass: server.password ?? "" } } : {}),
    ...TIMEOUTS,
  };
}

/**
 * A mailer over SMTP, from a URL (`smtp://user:pass@host:port`, or `smtps://` for
 * implicit TLS) or from fields. Failures become a retryable 503 with the server's
 * reason, never the URL or the password.
 */
export function createSmtpMailer(opts: { server: string | SmtpServer; from: string }): Mailer {
  const transport = nodemailer.createTransport(transportOptions(opts.server));
  return {
    async send(mail) {
      try {
        await transport.sendMail({ from: opts.from, ...mail });
      } catch (err) {
        const reason =
          (err as { response?: string; code?: string }).response ?? (err as { code?: string }).code ?? "unknown error";
        throw new UnavailableError(`The email could not be sent (${reason}). Try again later.`, { cause: err });
      }
    },
  };
}
