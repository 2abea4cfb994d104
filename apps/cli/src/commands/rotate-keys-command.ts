import { rotateRootKey } from "@reef/core";
import { createDb } from "@reef/db";
import { Command } from "commander";
import { configFor, fail, loggerFor, withOwnerPool } from "./shared.ts";

const HELP = `
Rotating the root key without downtime:
  1. Generate a new key:   node -e "console.log(require('crypto').randomBytes(32).toString('base64'))"
  2. Restart Reef with     REEF_SECRET_KEY=<new key>  REEF_SECRET_KEY_PREVIOUS=<old key>
     (it reads what either key wraps, and wraps anything new with the new key).
  3. Run                   reef rotate-keys
     (rewraps every workspace's data key under the new key; secrets themselves are
     not re-encrypted, so it takes moments even with many secrets).
  4. Remove REEF_SECRET_KEY_PREVIOUS and restart. Keep a backup of the new key:
     without it, nothing in the vault can be read.
If the key lives in DATA_DIR/secret.key instead of the environment, write the new
key there and pass the old one in REEF_SECRET_KEY_PREVIOUS.`;

export function rotateKeysCommand(): Command {
  return new Command("rotate-keys")
    .description("Rewrap every workspace data key under the current root key (REEF_SECRET_KEY).")
    .addHelpText("after", HELP)
    .action(async (_opts, command: Command) => {
      const config = await configFor(command);
      const logger = loggerFor(config, { level: "warn" });
      try {
        await withOwnerPool(config, logger, async (owner) => {
          const result = await rotateRootKey(createDb(owner), {
            current: config.secretKey,
            previous: config.secretKeyPrevious ?? [],
          });
          process.stdout.write(
            `rewrapped ${result.rewrapped} workspace key(s); ${result.alreadyCurrent} already under the current root key\n`,
          );
          if (config.secretKeyPrevious?.length) {
            process.stdout.write("now remove REEF_SECRET_KEY_PREVIOUS and restart Reef\n");
          }
        });
      } catch (err) {
        fail(err);
      }
    });
}
