import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { GatewayCgroup } from "./cgroups.ts";

// A paused gateway keeps its memory: SIGSTOP frees nothing. Where the host has swap (compressed zram is the usual
// choice), the frozen gateway's memory control group is pushed down so the kernel moves its pages out, and the next
// use faults back what a turn touches: far less memory for a slower resume (wake-bench.ts measures both), which is
// why it is a deeper tier reached after a longer idle, not part of every pause.

/**
 * What is kept resident of a paused gateway's memory, as a fraction of what it used when paused. A tenth, not more:
 * a turn after a resume faults back only what it touches, so keeping more did not make the first answer faster
 * (measured with zram: 0.25 kept 0.33× of the tree's resident memory and answered in 1.6–2.5 s; 0.1 keeps 0.23×
 * and answered in 1.1 s).
 */
export const PAUSED_RESIDENT_FRACTION = 0.1;

/** Whether the kernel has anywhere to put anonymous memory (an enabled swap device or file). */
export async function swapEnabled(): Promise<boolean> {
  const text = await readFile("/proc/swaps", "utf8").catch(() => "");
  return text.trim().split("\n").length > 1;
}

const v1Memory = (cg: GatewayCgroup) => cg.dirs.find((d) => /\/memory(\/|$)/.test(d));
const readNumber = async (path: string) => Number((await readFile(path, "utf8")).trim());

/**
 * Moves a frozen gateway's memory out to swap down to about `fraction` of its use: cgroup v1 lowers the group's
 * limit for a moment (the kernel reclaims to reach it, or refuses with EBUSY and changes nothing) and puts it back;
 * cgroup v2 lets the group swap and asks `memory.reclaim` for the difference. Only for a frozen tree: a running
 * gateway under a lowered limit would thrash. @returns bytes in use before and after, or undefined where it cannot
 * (no memory group, no swap, a kernel without `memory.reclaim`).
 */
export async function reclaimFrozen(
  cg: GatewayCgroup,
  fraction = PAUSED_RESIDENT_FRACTION,
): Promise<{ before: number; after: number } | undefined> {
  if (!(await swapEnabled())) return undefined;
  try {
    if (cg.version === 1) {
      const dir = v1Memory(cg);
      if (!dir) return undefined;
      const before = await readNumber(join(dir, "memory.usage_in_bytes"));
      const limit = await readFile(join(dir, "memory.limit_in_bytes"), "utf8");
      try {
        await writeFile(join(dir, "memory.limit_in_bytes"), String(Math.floor(before * fraction)));
      } catch {
        // EBUSY: it could not get that low; whatever it moved out stays out.
      } finally {
        await writeFile(join(dir, "memory.limit_in_bytes"), limit.trim());
      }
      return { before, after: await readNumber(join(dir, "memory.usage_in_bytes")) };
    }
    const [dir] = cg.dirs;
    if (!dir) return undefined;
    const before = await readNumber(join(dir, "memory.current"));
    await writeFile(join(dir, "memory.swap.max"), "max");
    await writeFile(join(dir, "memory.reclaim"), String(Math.floor(before * (1 - fraction)))).catch(() => {});
    return { before, after: await readNumber(join(dir, "memory.current")) };
  } catch {
    return undefined;
  }
}

/** After a thaw: a v2 group goes back to no swap for new pages (its limit means memory, not memory plus swap). */
export async function capSwapAgain(cg: GatewayCgroup): Promise<void> {
  if (cg.version !== 2 || !cg.dirs[0]) return;
  await writeFile(join(cg.dirs[0], "memory.swap.max"), "0").catch(() => {});
}
