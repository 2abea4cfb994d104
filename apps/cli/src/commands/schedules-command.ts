import { type Db, isUuid, schema, withScope } from "@reef/db";
import { openConfiguredDatabase } from "@reef/server";
import { Command } from "commander";
import { and, desc, eq, lt, or } from "drizzle-orm";
import { configFor, fail, loggerFor } from "./shared.ts";

/** One schedule as the command prints it: its rule and state, never its prompt or secret. */
export interface ScheduleLine {
  id: string;
  name: string;
  kind: string;
  /** The cron expression and zone, the one-off time, or "on call" for a webhook. */
  rule: string;
  agent: string | null;
  enabled: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastRunStatus: string | null;
  consecutiveFailures: number;
  createdAt: string;
}

const { schedules, agents } = schema;

function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify({ createdAt: createdAt.toISOString(), id })).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    const createdAt = new Date(v.createdAt);
    if (!isUuid(v.id) || Number.isNaN(createdAt.getTime())) throw new Error();
    return { createdAt, id: v.id };
  } catch {
    throw new Error("--cursor is not valid: use the one the previous page printed");
  }
}

/** A page of a workspace's schedules, newest first, read inside the workspace's scope (RLS). */
export async function listSchedules(
  db: Db,
  workspaceId: string,
  opts: { limit: number; cursor?: string | undefined },
): Promise<{ items: ScheduleLine[]; nextCursor: string | null }> {
  if (!isUuid(workspaceId)) throw new Error("--workspace must be a workspace id (a UUID)");
  const after = opts.cursor ? decodeCursor(opts.cursor) : undefined;
  const rows = await withScope(db, { workspaceId }, (tx) =>
    tx
      .select({ s: schedules, agent: agents.name })
      .from(schedules)
      .leftJoin(agents, eq(agents.id, schedules.agentId))
      .where(
        and(
          eq(schedules.workspaceId, workspaceId),
          after
            ? or(
                lt(schedules.createdAt, after.createdAt),
                and(eq(schedules.createdAt, after.createdAt), lt(schedules.id, after.id)),
              )
            : undefined,
        ),
      )
      .orderBy(desc(schedules.createdAt), desc(schedules.id))
      .limit(opts.limit + 1),
  );
  const more = rows.length > opts.limit;
  const kept = rows.slice(0, opts.limit);
  const last = kept.at(-1);
  return {
    items: kept.map(({ s, agent }) => ({
      id: s.id,
      name: s.name,
      kind: s.kind,
      rule:
        s.kind === "cron"
          ? `${s.cron} (${s.timezone})`
          : s.kind === "once"
            ? (s.runAt?.toISOString() ?? "")
            : "on call",
      agent,
      enabled: s.enabled,
      nextRunAt: s.nextRunAt?.toISOString() ?? null,
      lastRunAt: s.lastRunAt?.toISOString() ?? null,
      lastRunStatus: s.lastRunStatus,
      consecutiveFailures: s.consecutiveFailures,
      createdAt: s.createdAt.toISOString(),
    })),
    nextCursor: more && last ? encodeCursor(last.s.createdAt, last.s.id) : null,
  };
}

/** A plain-text table (columns padded to their widest cell). */
export function scheduleTable(items: ScheduleLine[]): string {
  const header = ["ID", "NAME", "KIND", "RULE", "AGENT", "STATE", "NEXT RUN", "LAST RUN", "FAILURES"];
  const rows = items.map((s) => [
    s.id,
    s.name,
    s.kind,
    s.rule,
    s.agent ?? "(deleted)",
    s.enabled ? "enabled" : "paused",
    s.nextRunAt ?? "-",
    s.lastRunAt ? `${s.lastRunStatus ?? "?"} ${s.lastRunAt}` : "-",
    String(s.consecutiveFailures),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function schedulesCommand(): Command {
  const command = new Command("schedules").description("Inspect schedules and webhook triggers.");
  command
    .command("list")
    .description("List a workspace's schedules, newest first (never their prompts or secrets).")
    .requiredOption("--workspace <id>", "the workspace's id")
    .option("--limit <n>", "schedules per page (1-200)", "50")
    .option("--cursor <cursor>", "the next page, as printed after the previous one")
    .option("--json", "print machine-readable JSON ({items, nextCursor})")
    .action(async (opts: { workspace: string; limit: string; cursor?: string; json?: boolean }, cmd: Command) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 200) fail(new Error("--limit must be 1 to 200"));
      const config = await configFor(cmd);
      const logger = loggerFor(config, { level: "warn" });
      try {
        const database = await openConfiguredDatabase(config, logger, { migrate: false, attachToRunning: true });
        try {
          const page = await listSchedules(database.db, opts.workspace, { limit, cursor: opts.cursor });
          if (opts.json) {
            process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
          } else {
            const lines = page.items.length ? [scheduleTable(page.items)] : ["No schedules in this workspace."];
            if (page.nextCursor)
              lines.push("", `More: reef schedules list --workspace ${opts.workspace} --cursor ${page.nextCursor}`);
            process.stdout.write(`${lines.join("\n")}\n`);
          }
        } finally {
          await database.close();
        }
      } catch (err) {
        fail(err);
      }
    });
  return command;
}
