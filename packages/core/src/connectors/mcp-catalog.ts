import { readFileSync } from "node:fs";
import { z } from "zod";

/**
 * An entry of the operator's stdio catalogue: a command the workspace's runtime
 * may run as an MCP server. Only the operator writes it; workspace admins pick
 * it by id and never see the command.
 */
export interface McpCatalogEntry {
  id: string;
  name: string;
  description: string;
  command: string;
  args: string[];
}

/** The operator's catalogue, loaded once at start. */
export interface McpCatalog {
  entries: readonly McpCatalogEntry[];
  get(id: string): McpCatalogEntry | undefined;
}

const entrySchema = z.object({
  id: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[a-z0-9][a-z0-9._-]*$/, "ids are lowercase letters, digits, dots, dashes and underscores"),
  name: z.string().trim().min(1).max(100),
  description: z.string().max(1000).default(""),
  // An absolute path or a bare program name: never relative to wherever the gateway happens to run.
  command: z
    .string()
    .min(1)
    .max(1000)
    .refine(
      (c) => c.startsWith("/") || /^[A-Za-z0-9._+-]+$/.test(c),
      "must be an absolute path or a bare program name",
    ),
  args: z.array(z.string().max(4000)).max(100).default([]),
});
const fileSchema = z.array(entrySchema).max(500);

/** A catalogue from entries already read (tests, embedding). */
export function mcpCatalogOf(entries: readonly McpCatalogEntry[]): McpCatalog {
  const byId = new Map(entries.map((e) => [e.id, e]));
  return { entries, get: (id) => byId.get(id) };
}

/** No file configured: workspaces can add HTTP connectors only. */
export const EMPTY_MCP_CATALOG: McpCatalog = mcpCatalogOf([]);

/**
 * Reads and checks the operator's catalogue (`REEF_MCP_CATALOG_FILE`). A file
 * that is missing, not JSON, not the expected shape or with a duplicate id
 * stops Reef at start with a message naming the file and the problem, rather
 * than offering workspaces a half-read list. `commandProblem`, where the
 * runtime driver can tell (the process driver's sandbox), says why an entry's
 * command could not run there: such an entry stops Reef too.
 */
export function loadMcpCatalog(
  file: string | undefined,
  commandProblem?: (command: string) => string | undefined,
): McpCatalog {
  if (!file) return EMPTY_MCP_CATALOG;
  const fail = (why: string) =>
    new Error(
      `REEF_MCP_CATALOG_FILE (${file}): ${why}. Expected a JSON array of { id, name, description, command, args }.`,
    );
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw fail(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail(`is not valid JSON (${(err as Error).message})`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fail(`entry ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  const seen = new Set<string>();
  for (const entry of parsed.data) {
    if (seen.has(entry.id)) throw fail(`the id "${entry.id}" appears twice`);
    seen.add(entry.id);
    const problem = commandProblem?.(entry.command);
    if (problem) throw fail(`entry "${entry.id}": ${problem}`);
  }
  return mcpCatalogOf(parsed.data);
}
