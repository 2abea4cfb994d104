import { openConfiguredDatabase } from "@reef/server";
import { Command } from "commander";
import { configFor, fail, loggerFor } from "./shared.ts";

export function migrateCommand(): Command {
  return new Command("migrate")
    .description("Apply pending database migrations and exit (Reef also does this at start).")
    .action(async (_opts, command: Command) => {
      const config = await configFor(command);
      const logger = loggerFor(config);
      try {
        const database = await openConfiguredDatabase(config, logger, { migrate: true, attachToRunning: true });
        try {
          const status = await database.migrationStatus();
          process.stdout.write(`migrations: ${status.total} known, all applied\n`);
        } finally {
          await database.close();
        }
      } catch (err) {
        fail(err);
      }
    });
}
