import { describeConfig } from "@reef/config";
import { schema, withScope } from "@reef/db";
import { openConfiguredDatabase } from "@reef/server";
import { Command } from "commander";
import { count } from "drizzle-orm";
import { configFor, loggerFor } from "./shared.ts";

interface Status {
  config: Record<string, unknown>;
  database: { reachable: boolean; error?: string };
  migrations?: { total: number; pending: string[] };
  /** Workspace runtimes by state. */
  runtimes?: Record<string, number>;
}

export function statusCommand(): Command {
  return new Command("status")
    .description("Show the configuration (secrets masked), whether the database is reachable and migrations applied.")
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { json?: boolean }, command: Command) => {
      const config = await configFor(command);
      const logger = loggerFor(config, { level: "warn" });
      const status: Status = { config: describeConfig(config), database: { reachable: false } };
      try {
        const database = await openConfiguredDatabase(config, logger, { migrate: false, attachToRunning: true });
        try {
          await database.ping();
          status.database.reachable = true;
          status.migrations = await database.migrationStatus();
          if (status.migrations.pending.length === 0) {
            const rows = await withScope(database.db, { platform: true }, (tx) =>
              tx
                .select({ state: schema.runtimes.state, n: count() })
                .from(schema.runtimes)
                .groupBy(schema.runtimes.state),
            );
            status.runtimes = Object.fromEntries(rows.map((r) => [r.state, r.n]));
          }
        } finally {
          await database.close();
        }
      } catch (err) {
        status.database.error = err instanceof Error ? err.message : String(err);
      }
      const healthy = status.database.reachable && status.migrations?.pending.length === 0;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      } else {
        const lines = ["Reef status", ""];
        for (const [key, value] of Object.entries(status.config)) {
          if (value !== undefined) lines.push(`  ${key.padEnd(22)} ${String(value)}`);
        }
        lines.push("");
        lines.push(
          `  database               ${status.database.reachable ? "reachable" : `unreachable: ${status.database.error}`}`,
        );
        if (status.migrations) {
          const { total, pending } = status.migrations;
          lines.push(
            `  migrations             ${pending.length === 0 ? `${total} applied` : `${pending.length} pending: ${pending.join(", ")}`}`,
          );
        }
        if (status.runtimes) {
          const parts = Object.entries(status.runtimes).map(([state, n]) => `${n} ${state}`);
          lines.push(`  runtimes               ${parts.length ? parts.join(", ") : "none yet"}`);
        }
        process.stdout.write(`${lines.join("\n")}\n`);
      }
      process.exitCode = healthy ? 0 : 1;
    });
}
