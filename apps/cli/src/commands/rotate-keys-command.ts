import { resealPlatformSecrets, resealRuntimeTokens, rootKeyId, rotateRootKey } from "@reef/core";
import { openConfiguredDatabase } from "@reef/server";
import { Command } from "commander";
import { configFor, fail, loggerFor } from "./shared.ts";

const HELP = `
Rotating the root key without downtime:
  1. Generate a new key:   openssl rand -base64 32
     (or: node -e "console.log(require('crypto').randomBytes(32).toString('base64'))")
  2. Restart Reef with     REEF_SECRET_KEY=<new key>  REEF_SECRET_KEY_PREVIOUS=<old key>
     It reads what either key protects and wraps anything new with the new key.
     With several replicas, restart every one of them before step 3.
  3. Run                   reef rotate-keys
     with the same two variables, while Reef runs. It rewraps every workspace's
     data key under the new key and reseals running gateways' tokens, and prints
     the counts. Secrets and sealed chat transcripts are not re-encrypted, so it
     takes moments even with many of them. Running it again is harmless.
  4. Remove REEF_SECRET_KEY_PREVIOUS and restart. Reef refuses to start if anything
     is still under the old key (run step 3 again, with the old key back in).
Keep a backup of the new key: without it, nothing in the vault can be read,
chat transcripts included.
If the key lives in DATA_DIR/secret.key instead of the environment, write the new
key there in step 2 and pass the old one in REEF_SECRET_KEY_PREVIOUS.
See docs/vault.md, also for several replicas sharing one DATABASE_URL.`;

export function rotateKeysCommand(): Command {
  return new Command("rotate-keys")
    .description(
      "Rewrap every workspace data key under the current root key (REEF_SECRET_KEY), reading old ones with REEF_SECRET_KEY_PREVIOUS.",
    )
    .addHelpText("after", HELP)
    .action(async (_opts, command: Command) => {
      const config = await configFor(command);
      const logger = loggerFor(config, { level: "warn" });
      const keyring = { current: config.secretKey, previous: config.secretKeyPrevious ?? [] };
      try {
        // The app's own role, in platform scope: the vault's rows are readable that way on any server,
        // also where the DATABASE_URL owner is not a superuser (row-level security is forced).
        const database = await openConfiguredDatabase(config, logger, { migrate: false, attachToRunning: true });
        try {
          const keys = await rotateRootKey(database.db, keyring);
          const tokens = await resealRuntimeTokens(database.db, keyring);
          const platformSecrets = await resealPlatformSecrets(database.db, keyring);
          const lines = [
            `rewrapped ${keys.rewrapped} workspace data key(s); ${keys.alreadyCurrent} already under the current root key (key id ${rootKeyId(keyring.current)})`,
            `resealed ${tokens.resealed} gateway token(s) and ${platformSecrets} platform secret(s)`,
          ];
          if (tokens.unreadable) {
            lines.push(
              `${tokens.unreadable} gateway token(s) open with no configured key; those gateways restart on their next use`,
            );
          }
          if (keyring.previous.length) lines.push("now remove REEF_SECRET_KEY_PREVIOUS and restart Reef");
          process.stdout.write(`${lines.join("\n")}\n`);
        } finally {
          await database.close();
        }
      } catch (err) {
        fail(err);
      }
    });
}
