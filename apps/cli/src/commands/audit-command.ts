import { once } from "node:events";
import { createWriteStream } from "node:fs";
import type { Writable } from "node:stream";
import { verifyAuditChains } from "@reef/core";
import { createDb } from "@reef/db";
import { Command } from "commander";
import { configFor, fail, loggerFor, withOwnerPool } from "./shared.ts";

const COLUMNS = [
  "id",
  "workspace_id",
  "occurred_at",
  "actor_type",
  "actor_id",
  "action",
  "target_type",
  "target_id",
  "outcome",
  "ip",
  "user_agent",
  "request_id",
  "details",
  "prev_hash",
  "hash",
] as const;

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text =
    value instanceof Date ? value.toISOString() : typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, "drain");
}

export function auditCommand(): Command {
  const audit = new Command("audit").description(
    "Check and export the audit trail (needs the database owner's access).",
  );

  audit
    .command("verify")
    .description(
      "Recompute every hash chain; exit 1 and list the breaks if any entry was edited, removed or reordered.",
    )
    .action(async (_opts, command: Command) => {
      const config = await configFor(command);
      const logger = loggerFor(config, { level: "warn" });
      try {
        await withOwnerPool(config, logger, async (owner) => {
          const result = await verifyAuditChains(createDb(owner));
          for (const b of result.breaks)
            process.stdout.write(`BROKEN chain ${b.chain} at entry ${b.entryId}: ${b.reason}\n`);
          process.stdout.write(
            `${result.entries} entries in ${result.chains} chains: ${result.breaks.length === 0 ? "intact" : `${result.breaks.length} break(s)`}\n`,
          );
          process.exitCode = result.breaks.length === 0 ? 0 : 1;
        });
      } catch (err) {
        fail(err);
      }
    });

  audit
    .command("export")
    .description("Write audit entries, oldest first, as JSON lines or CSV.")
    .option("--format <format>", "jsonl or csv", "jsonl")
    .option("--workspace <id>", "only this workspace's entries")
    .option("--platform", "only platform entries (sign-ins, admin actions)")
    .option("--output <file>", "write to a file instead of standard output")
    .action(
      async (opts: { format: string; workspace?: string; platform?: boolean; output?: string }, command: Command) => {
        if (opts.format !== "jsonl" && opts.format !== "csv")
          fail(new Error(`--format must be jsonl or csv, not ${opts.format}`));
        const config = await configFor(command);
        const logger = loggerFor(config, { level: "warn" });
        const out: Writable = opts.output ? createWriteStream(opts.output, { mode: 0o600 }) : process.stdout;
        try {
          await withOwnerPool(config, logger, async (owner) => {
            if (opts.format === "csv") await write(out, `${COLUMNS.join(",")}\n`);
            // Workspace trails first, then the platform's; each oldest first.
            const sources = [
              ...(opts.platform
                ? []
                : [
                    {
                      table: "audit_log",
                      workspaceColumn: "workspace_id",
                      filter: opts.workspace ? "and workspace_id = $3" : "",
                    },
                  ]),
              ...(opts.workspace
                ? []
                : [{ table: "platform_audit_log", workspaceColumn: "null::uuid as workspace_id", filter: "" }]),
            ];
            for (const source of sources) {
              const columns = COLUMNS.map((c) => (c === "workspace_id" ? source.workspaceColumn : c)).join(", ");
              let after = 0;
              for (;;) {
                const params: unknown[] = [after, 2000, ...(source.filter ? [opts.workspace] : [])];
                const { rows } = await owner.query(
                  `select ${columns} from ${source.table} where id > $1 ${source.filter} order by id limit $2`,
                  params,
                );
                if (rows.length === 0) break;
                for (const row of rows) {
                  row.id = Number(row.id);
                  if (opts.format === "csv") await write(out, `${COLUMNS.map((c) => csvCell(row[c])).join(",")}\n`);
                  else await write(out, `${JSON.stringify(row)}\n`);
                }
                after = Number(rows.at(-1)?.id);
              }
            }
          });
          if (opts.output) {
            out.end();
            await once(out, "finish");
          }
        } catch (err) {
          fail(err);
        }
      },
    );
  return audit;
}
