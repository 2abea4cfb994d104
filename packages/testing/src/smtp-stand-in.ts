import { SMTPServer } from "smtp-server";

/** A message the stand-in accepted, for assertions. */
export interface ReceivedMail {
  /** Envelope recipients. */
  to: string[];
  /** The raw message as sent (headers and body, possibly quoted-printable). */
  raw: string;
  /** The user the sender authenticated as, when the stand-in asks for credentials. */
  user: string | undefined;
}

export interface SmtpStandInOptions {
  /**
   * Recipients refused at RCPT TO with a 550, as a relay does for an unknown
   * mailbox. Read on each message, so a test may add to it after start.
   */
  refuse?: Set<string>;
  /** Credentials the relay requires, as most real relays do; without them it takes mail from anyone. */
  auth?: { username: string; password: string };
}

export interface SmtpStandIn {
  port: number;
  /** `smtp://127.0.0.1:<port>`, for the `smtpUrl` setting. */
  url: string;
  /** Every message accepted, in order. */
  received: ReceivedMail[];
  /** The decoded text of every message to `to` so far, oldest first. */
  mailsTo(to: string): string[];
  /**
   * Waits for the `n`th message (1-based) to `to` whose text matches `pattern`
   * (Reef sends some mail in the background) and returns its decoded text.
   */
  waitForMail(to: string, pattern: RegExp, n?: number): Promise<string>;
  close(): Promise<void>;
}

/** A message's text with quoted-printable soft breaks and escapes undone. */
export function mailText(raw: string): string {
  return raw.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** The token of a mailed `/<page>?token=…` link in `text`; throws when there is none. */
export function tokenIn(text: string, page: string): string {
  const token = linkToken(text, page);
  if (!token) throw new Error(`no /${page} link in ${text}`);
  return token;
}

/** The token of a mailed `/<page>?token=…` link in `text`, or undefined. */
export function linkToken(text: string, page: string): string | undefined {
  return new RegExp(`/${page}\\?token=([A-Za-z0-9_-]+)`).exec(text)?.[1];
}

/** Starts a local SMTP server (no TLS) on a free port, standing in for the organisation's mail relay. */
export async function startSmtpStandIn(opts: SmtpStandInOptions = {}): Promise<SmtpStandIn> {
  const { refuse, auth } = opts;
  const received: ReceivedMail[] = [];
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS"],
    ...(auth
      ? {
          allowInsecureAuth: true,
          onAuth(credentials, _session, callback) {
            if (credentials.username === auth.username && credentials.password === auth.password) {
              return callback(null, { user: credentials.username });
            }
            callback(new Error("535 authentication failed"));
          },
        }
      : { authOptional: true }),
    onRcptTo(address, _session, callback) {
      if (refuse?.has(address.address)) return callback(new Error("550 mailbox unavailable"));
      callback();
    },
    onData(stream, session, callback) {
      let raw = "";
      stream.on("data", (c: Buffer) => {
        raw += c.toString();
      });
      stream.on("end", () => {
        received.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          user: session.user as string | undefined,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const mailsTo = (to: string) => received.filter((m) => m.to.includes(to)).map((m) => mailText(m.raw));
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    mailsTo,
    async waitForMail(to, pattern, n = 1) {
      for (let i = 0; i < 100; i++) {
        const matching = mailsTo(to).filter((b) => pattern.test(b));
        if (matching.length >= n) return matching[n - 1] as string;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no mail to ${to} matching ${pattern}`);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
