import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { loggerOptions, redactUrl, serializeError } from "./logger.ts";

describe("log redaction", () => {
  it("masks Reef tokens in paths and secret query parameters, and keeps the rest", () => {
    expect(redactUrl("/api/v1/invites/ri_abcdefghijklmnop/accept")).toBe("/api/v1/invites/ri_[Redacted]/accept");
    expect(redactUrl("/x?token=abc&limit=5&api_key=k")).toBe("/x?token=%5BRedacted%5D&limit=5&api_key=%5BRedacted%5D");
    // Sign-in flows: the OIDC callback's code and state, and the emailed links' single-use tokens.
    expect(redactUrl("/api/v1/auth/sso/acme/callback?code=c0de&state=rss_abcdefghijkl&iss=x")).toBe(
      "/api/v1/auth/sso/acme/callback?code=%5BRedacted%5D&state=%5BRedacted%5D&iss=x",
    );
    expect(redactUrl("/signin/link/rsl_abcdefghijklmnop")).toBe("/signin/link/rsl_[Redacted]");
    expect(redactUrl("/magic?token=rml_abcdefghijklmnop&next=%2Faccount")).toBe(
      "/magic?token=%5BRedacted%5D&next=%2Faccount",
    );
    expect(redactUrl("/api/v1/workspaces/123/audit?action=workspace.rename")).toBe(
      "/api/v1/workspaces/123/audit?action=workspace.rename",
    );
  });

  it("drops bound parameters from failed-query errors", () => {
    const err = new Error('Failed query: insert into "users" values ($1)\nparams: $argon2id$v=19$secret-hash');
    const out = serializeError(err);
    expect(JSON.stringify(out)).not.toContain("argon2id");
    expect(out.message).toContain("params: [Redacted]");
  });

  it("never writes credentials from headers or bodies", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino(loggerOptions({ level: "info", format: "json" }), sink);
    log.info(
      {
        req: {
          method: "POST",
          url: "/api/v1/invites/ri_0123456789abcdef/accept",
          headers: { authorization: "Bearer reef_supersecret", cookie: "reef_session=rs_x" },
        },
        body: { password: "hunter2hunter2", apiKey: "sk-canary" },
      },
      "request",
    );
    expect(lines.join("")).toContain("ri_[Redacted]");
    const text = lines.join("");
    for (const secret of ["reef_supersecret", "rs_x", "hunter2hunter2", "sk-canary", "ri_0123456789abcdef"])
      expect(text).not.toContain(secret);
  });

  it("never writes root keys, current or previous, from a logged config", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino(loggerOptions({ level: "info", format: "json" }), sink);
    const [current, previous] = [Buffer.alloc(32, 0xa1), Buffer.alloc(32, 0xb2)];
    log.info({ config: { port: 7420, secretKey: current, secretKeyPrevious: [previous] } }, "config");
    const text = lines.join("");
    expect(text).toContain("7420");
    // A Buffer would be written as its bytes (161 and 178 here), or as base64.
    for (const secret of ["161,161", "178,178", current.toString("base64"), previous.toString("base64")])
      expect(text).not.toContain(secret);
  });
});
