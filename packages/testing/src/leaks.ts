import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";

/** Every file below `dir` (files over 50 MiB passed over) whose bytes contain `needle`. */
export function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (statSync(path).size > 50 * 1024 * 1024) continue;
    if (readFileSync(path).includes(needle)) found.push(path);
  }
  return found;
}

/**
 * The `/proc/<pid>/environ` and `/proc/<pid>/cmdline` files holding `needle`, for every process in the process group
 * of `pid` (a gateway and what it started; the group must not be empty).
 */
export function processGroupHolding(pid: number, needle: string): string[] {
  const tree = spawnSync("pgrep", ["-g", String(pid)])
    .stdout.toString()
    .trim()
    .split("\n")
    .filter(Boolean);
  expect(tree.length).toBeGreaterThan(0);
  const found: string[] = [];
  for (const p of tree) {
    for (const f of ["environ", "cmdline"]) {
      let text = "";
      try {
        text = readFileSync(`/proc/${p}/${f}`, "latin1");
      } catch {}
      if (text.includes(needle)) found.push(`/proc/${p}/${f}`);
    }
  }
  return found;
}
