import { join } from "node:path";
import { startServer } from "@reef/server";
import { Command } from "commander";
import { configFor, fail, loggerFor } from "./shared.ts";

export function startCommand(): Command {
  return new Command("start")
    .description("Start Reef: the embedded database (unless DATABASE_URL is set), migrations, the API and the web app.")
    .action(async (_opts, command: Command) => {
      const config = await configFor(command);
      const logger = loggerFor(config);
      if (config.secretKeySource === "generated") {
        logger.warn(
          { path: join(config.dataDir, "secret.key") },
          "generated a new root secret key (mode 0600). Back it up: without it, encrypted secrets cannot be read",
        );
      }
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer(config, logger);
      } catch (err) {
        logger.flush();
        fail(err);
      }
      let signals = 0;
      const shutdown = async (signal: NodeJS.Signals) => {
        signals += 1;
        if (signals > 1) {
          logger.warn({ signal }, "second signal: not waiting for requests any longer");
          server.app.server.closeAllConnections();
          return;
        }
        logger.info({ signal }, "shutting down: draining requests");
        try {
          await server.close();
          logger.info("stopped");
          logger.flush();
          process.exitCode = 0;
        } catch (err) {
          logger.error({ err }, "shutdown failed");
          process.exitCode = 1;
        }
      };
      process.on("SIGINT", shutdown);
      process.on("SIGTERM", shutdown);
    });
}
