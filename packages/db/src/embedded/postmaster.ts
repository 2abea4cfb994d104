import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The first lines of `postmaster.pid`, which a running server keeps in its data dir. */
export interface PostmasterPid {
  pid: number;
  port: number;
}

export async function readPostmasterPid(dataDir: string): Promise<PostmasterPid | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, "postmaster.pid"), "utf8");
  } catch {
    return undefined;
  }
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, port };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function isPostgres(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes("postgres");
  } catch {
    // No procfs (macOS): a live pid recorded in postmaster.pid is most likely ours.
    return process.platform !== "linux";
  }
}

/**
 * Clears what a killed Reef left behind: a postmaster that outlived its parent
 * is shut down (fast), and a pid file naming an unrelated live process (pid reuse
 * after a reboot) is removed so the new server can start.
 */
export async function stopStalePostmaster(dataDir: string, timeoutMs: number): Promise<void> {
  const recorded = await readPostmasterPid(dataDir);
  if (!recorded || !isAlive(recorded.pid)) return;
  if (!(await isPostgres(recorded.pid))) {
    await rm(join(dataDir, "postmaster.pid"), { force: true });
    return;
  }
  process.kill(recorded.pid, "SIGINT");
  const deadline = Date.now() + timeoutMs;
  while (isAlive(recorded.pid)) {
    if (Date.now() > deadline) {
      process.kill(recorded.pid, "SIGQUIT");
      await sleep(500);
      break;
    }
    await sleep(50);
  }
}
