import { existsSync } from "node:fs";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const ROOT = "/sys/fs/cgroup";
const GROUP = "reef-runtimes";

/** Limits one gateway's process tree may not exceed. */
export interface TreeLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
}

/**
 * The control groups one gateway runs in: cgroup v1 has one directory per
 * controller, v2 a single one. Persisted in the runtime's state so any Reef
 * process can kill the tree and clean up after a restart.
 */
export type GatewayCgroup = {
  version: 1 | 2;
  /** Absolute directories; the first one's `cgroup.procs` lists every process of the tree. */
  dirs: string[];
};

/** `/proc/self/cgroup` → controller name → this process's path in that hierarchy. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const c of (m[1] ?? "").split(",")) out.set(c, m[2] ?? "/");
  }
  return out;
}

/** The control-file writes that impose `limits` (pure: unit-tested). */
export function limitWrites(version: 1 | 2, limits: TreeLimits): { controller: string; file: string; value: string }[] {
  const quota = Math.max(1_000, Math.round(limits.cpus * 100_000));
  const bytes = String(limits.memoryMb * 1024 * 1024);
  if (version === 2) {
    return [
      { controller: "", file: "pids.max", value: String(limits.pids) },
      { controller: "", file: "cpu.max", value: `${quota} 100000` },
      { controller: "", file: "memory.max", value: bytes },
      { controller: "", file: "memory.swap.max", value: "0" },
    ];
  }
  return [
    { controller: "pids", file: "pids.max", value: String(limits.pids) },
    { controller: "cpu", file: "cpu.cfs_period_us", value: "100000" },
    { controller: "cpu", file: "cpu.cfs_quota_us", value: String(quota) },
    { controller: "memory", file: "memory.limit_in_bytes", value: bytes },
  ];
}

const V1_CONTROLLERS = ["pids", "cpu", "memory"] as const;

async function writeControl(path: string, value: string): Promise<void> {
  await writeFile(path, value);
}

/**
 * Creates the control groups for one workspace's gateway and sets its limits.
 * Returns undefined where Reef may not create control groups (not root, a
 * read-only cgroupfs): the caller then falls back to rlimits and says so.
 */
export async function createGatewayCgroup(workspaceId: string, limits: TreeLimits): Promise<GatewayCgroup | undefined> {
  try {
    const own = parseProcCgroup(await readFile("/proc/self/cgroup", "utf8"));
    if (existsSync(join(ROOT, "cgroup.controllers"))) {
      // cgroup v2: a sibling tree at the root (Reef's own group holds processes,
      // and v2 forbids controllers on a group with processes of its own).
      const parent = join(ROOT, GROUP);
      await mkdir(parent, { recursive: true });
      await writeControl(join(parent, "cgroup.subtree_control"), "+pids +cpu +memory");
      const dir = join(parent, workspaceId);
      await mkdir(dir, { recursive: true });
      for (const w of limitWrites(2, limits)) {
        await writeControl(join(dir, w.file), w.value).catch((err: NodeJS.ErrnoException) => {
          if (w.file !== "memory.swap.max") throw err; // no swap accounting: nothing to cap
        });
      }
      return { version: 2, dirs: [dir] };
    }
    const dirs = new Map<string, string>();
    for (const c of V1_CONTROLLERS) {
      const mount = join(ROOT, c);
      if (!existsSync(join(mount, "cgroup.procs"))) return undefined;
      // Nested under Reef's own group, so an operator's limits on Reef cover its gateways too.
      const dir = join(mount, own.get(c) ?? "/", GROUP, workspaceId);
      await mkdir(dir, { recursive: true });
      dirs.set(c, dir);
    }
    for (const w of limitWrites(1, limits)) await writeControl(join(dirs.get(w.controller) as string, w.file), w.value);
    return { version: 1, dirs: V1_CONTROLLERS.map((c) => dirs.get(c) as string) };
  } catch {
    return undefined;
  }
}

/** The `cgroup.procs` files a new process must join (written by the launcher before it execs the gateway). */
export function procsFiles(cg: GatewayCgroup): string[] {
  return cg.dirs.map((d) => join(d, "cgroup.procs"));
}

/** Every process in the gateway's control group. */
export async function cgroupPids(cg: GatewayCgroup): Promise<number[]> {
  const first = cg.dirs[0];
  if (!first) return [];
  const text = await readFile(join(first, "cgroup.procs"), "utf8").catch(() => "");
  return text
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/**
 * SIGKILLs every process of the tree, however it forked or re-grouped itself,
 * until the group is empty, then removes the groups.
 */
export async function killCgroup(cg: GatewayCgroup, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await cgroupPids(cg);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  await removeCgroup(cg);
}

/** Removes the (empty) groups; a group still holding processes stays, and is retried at the next stop. */
export async function removeCgroup(cg: GatewayCgroup): Promise<void> {
  for (const dir of cg.dirs) await rmdir(dir).catch(() => {});
}

/** Resident memory of the given processes, in bytes. */
export async function rssOf(pids: Iterable<number>): Promise<number> {
  let kb = 0;
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (m) kb += Number(m[1]);
  }
  return kb * 1024;
}
