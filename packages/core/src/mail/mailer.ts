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

/**
 * A mailer over SMTP (`smtp://user:pass@host:port`, or `smtps://` for implicit
 * TLS). Failures become a retryable 503 with the server's reason, never the URL.
 */
export function createSmtpMailer(opts: { url: string; from: string }): Mailer {
  const transport = nodemailer.createTransport(opts.url);
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
