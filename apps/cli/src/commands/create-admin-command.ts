import { randomBytes } from "node:crypto";
import { createAuditService, createIdentityService, createRateLimits, createSignIn } from "@reef/core";
import { openConfiguredDatabase } from "@reef/server";
import { Command } from "commander";
import { configFor, fail, loggerFor } from "./shared.ts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

export function createAdminCommand(): Command {
  return new Command("create-admin")
    .description(
      "Breakglass: create a platform super_admin, or promote, reactivate and reset the password of an existing account. Works while the server is down.",
    )
    .requiredOption("--email <email>", "the admin's email")
    .option("--name <name>", "display name for a new account", "Administrator")
    .option("--password-stdin", "read the password from standard input (otherwise one is generated and printed once)")
    .action(async (opts: { email: string; name: string; passwordStdin?: boolean }, command: Command) => {
      const config = await configFor(command);
      const logger = loggerFor(config, { level: "warn" });
      const generated = opts.passwordStdin ? undefined : randomBytes(18).toString("base64url");
      const password = generated ?? (await readStdin());
      let database: Awaited<ReturnType<typeof openConfiguredDatabase>> | undefined;
      let failure: unknown;
      try {
        database = await openConfiguredDatabase(config, logger, { migrate: true, attachToRunning: true });
        const audit = createAuditService({ db: database.db });
        const unlimited = { points: 1_000_000, durationSec: 1 };
        const rateLimits = createRateLimits({
          pool: database.pool,
          audit,
          settings: {
            signup_ip: unlimited,
            login_ip: unlimited,
            login_account: unlimited,
            invite_accept: unlimited,
            api_read: unlimited,
            api_write: unlimited,
          },
        });
        // Breakglass works whatever the sign-in policy: it is the way back in.
        const signIn = createSignIn({
          db: database.db,
          sessionTtlMs: 60_000,
          policy: { requireSso: async () => false, requireTwoFactor: async () => false },
        });
        const identity = createIdentityService({ db: database.db, audit, rateLimits, signIn });
        const { user, created } = await identity.ensureAdmin(
          { actor: { kind: "system", name: "reef create-admin" } },
          { email: opts.email, name: opts.name, password },
        );
        process.stdout.write(`${created ? "created" : "updated"} super_admin ${user.email} (${user.id})\n`);
        if (generated) process.stdout.write(`password (shown once): ${generated}\n`);
      } catch (err) {
        failure = err;
      } finally {
        await database?.close();
      }
      if (failure) fail(failure);
    });
}
