import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

// Pausing a process gateway: every process of its tree stopped with SIGSTOP (which it cannot catch or ignore), and
// continued with SIGCONT. A signal per process rather than the cgroup freezer: it works where Reef has no control
// groups (not root) and on cgroup v1 hosts without a freezer hierarchy, and the tree is known either way.

/** The scheduler state letter of `pid` (`R`, `S`, `T` stopped, `Z` zombie…), or undefined when it is gone. */
export async function runState(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  // The command name may hold spaces and parentheses: the state follows its last ")".
  const rest = stat.slice(stat.lastIndexOf(")") + 2);
  return rest ? rest[0] : undefined;
}

/** A state letter of a stopped process (by a signal, or under a tracer). */
export const isStopped = (state: string | undefined) => state === "T" || state === "t";

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig);
  } catch {}
};

/**
 * Stops every process `tree()` lists, again and again until one pass finds none still running: a process can fork
 * between the listing and its signal, and its child is caught on the next pass (a stopped process forks no more).
 * @throws when the tree keeps changing past `timeoutMs`, after continuing it again (never left half-frozen).
 */
export async function freezeTree(tree: () => Promise<Set<number>>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let moving = 0;
    for (const pid of await tree()) {
      const s = await runState(pid);
      if (s === undefined || isStopped(s) || s === "Z" || s === "X") continue;
      moving++;
      signal(pid, "SIGSTOP");
    }
    if (moving === 0) return;
    if (Date.now() > deadline) {
      await thawTree(tree);
      throw new Error("the gateway's processes kept changing while being paused");
    }
    await sleep(5);
  }
}

/** Continues every process of the tree (harmless for those not stopped). */
export async function thawTree(tree: () => Promise<Set<number>>): Promise<void> {
  for (const pid of await tree()) signal(pid, "SIGCONT");
}

/** Whether the tree's first process (the gateway or its sandbox) is stopped. */
export async function isFrozen(pid: number): Promise<boolean> {
  return isStopped(await runState(pid));
}
