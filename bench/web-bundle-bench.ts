/**
 * The web app's first-screen JavaScript, gzipped: for each screen, the entry
 * chunk, the screen's lazy route chunk and everything they import statically
 * (what the browser must fetch before the screen can render). Lazy renderers
 * (code highlighting) are reported on their own. Budget: 250 KB per screen.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const DIST = fileURLToPath(new URL("../apps/web/dist/", import.meta.url));
const BUDGET_KB = 250;
const SCREENS = [
  "chat-page",
  "auth-pages",
  "agents-page",
  "members-page",
  "audit-page",
  "admin-page",
  "schedules-page",
];

const kb = (bytes: number) => bytes / 1024;

function gz(file: string): number {
  return gzipSync(readFileSync(join(DIST, "assets", file)), { level: 9 }).length;
}

/** The chunk and what it imports statically, transitively (dynamic `import()` is left out: it loads later). */
function closure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const source = readFileSync(join(DIST, "assets", file), "utf8");
  for (const m of source.matchAll(/(?:\bimport|\bfrom)\s*"\.\/([^"]+\.js)"/g)) if (m[1]) closure(m[1], seen);
  return seen;
}

export function webBundleBench(): void {
  const assets = readdirSync(join(DIST, "assets"));
  const html = readFileSync(join(DIST, "index.html"), "utf8");
  const entries = [...html.matchAll(/src="\/assets\/([^"]+\.js)"/g)].map((m) => m[1] as string);
  const shell = new Set<string>();
  for (const e of entries) closure(e, shell);
  const shellBytes = [...shell].reduce((n, f) => n + gz(f), 0);
  console.log(`\n## Web app: first-screen JavaScript (gzip -9; budget ${BUDGET_KB} KB per screen)`);
  console.log(`entry and its static imports: ${kb(shellBytes).toFixed(1)} KB`);
  for (const screen of SCREENS) {
    const chunk = assets.find((f) => f.startsWith(`${screen}-`) && f.endsWith(".js"));
    if (!chunk) {
      console.log(`${screen}: no chunk of its own (in the entry)`);
      continue;
    }
    const files = closure(chunk, new Set(shell));
    const total = [...files].reduce((n, f) => n + gz(f), 0);
    const verdict = kb(total) <= BUDGET_KB ? "within budget" : "OVER BUDGET";
    console.log(`${screen}: ${kb(total).toFixed(1)} KB (${(kb(total) / BUDGET_KB).toFixed(2)} of budget, ${verdict})`);
  }
  for (const lazy of assets.filter((f) => f.startsWith("highlighted-markdown-") && f.endsWith(".js")))
    console.log(`code highlighting (lazy, loaded with the first code block): ${kb(gz(lazy)).toFixed(1)} KB`);
}
