/** Measuring helpers shared by the benchmarks: percentiles, process-group memory and CPU (Linux /proc). */
import { readdirSync, readFileSync } from "node:fs";

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * The median of paired differences `a[i] - b[i]` with a distribution-free 95%
 * interval (order statistics of the binomial sign test): turns measured side by
 * side in one iteration share the machine's state, so their difference is far
 * less noisy than a ratio of two separate medians.
 */
export function pairedMedian(a: number[], b: number[]): { median: number; low: number; high: number; n: number } {
  const d = a.map((x, i) => x - (b[i] ?? Number.NaN)).filter(Number.isFinite);
  d.sort((x, y) => x - y);
  const n = d.length;
  // The k-th smallest and k-th largest, k = ⌊(n − 1.96√n) / 2⌋ (1-based).
  const k = Math.max(1, Math.floor((n - 1.96 * Math.sqrt(n)) / 2));
  return { median: percentile(d, 50), low: d[k - 1] ?? Number.NaN, high: d[n - k] ?? Number.NaN, n };
}

export const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;

/** pid, parent and process group of every process, read from /proc (no `ps`: forking this process blocks its event loop, and Reef runs in it). */
function processTable(): [number, number, number][] {
  const rows: [number, number, number][] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      rows.push([pid, Number(f[1]), Number(f[2])]);
    } catch {} // exited meanwhile
  }
  return rows;
}

/**
 * The processes of a gateway started at `pid`: its process group and every
 * descendant (a sandboxed gateway runs in a session of its own, outside the
 * group of the process Reef spawned).
 */
export function groupPids(pid: number): number[] {
  const rows = processTable();
  const found = new Set<number>();
  for (const [p, , g] of rows) if (g === pid || p === pid) found.add(p);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, parent] of rows) {
      if (!found.has(p) && found.has(parent)) {
        found.add(p);
        grew = true;
      }
    }
  }
  return [...found];
}

/** Resident memory of a gateway's processes (see {@link groupPids}). */
export function groupRss(pid: number): number {
  return groupPids(pid).reduce((sum, p) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      return sum + Number(m?.[1] ?? 0) * 1024;
    } catch {
      return sum;
    }
  }, 0);
}

const TICK_MS = 10; // Linux USER_HZ is 100

/** CPU a process used so far, including its waited-for children (Linux /proc). */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return [11, 12, 13, 14].reduce((s, i) => s + Number(f[i] ?? 0), 0) * TICK_MS;
  } catch {
    return 0;
  }
}

/** Busy CPU of the whole machine so far (all cores). */
export function machineBusyMs(): number {
  const [, ...v] = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/);
  const n = v.map(Number);
  const total = n.slice(0, 8).reduce((s, x) => s + x, 0);
  return (total - (n[3] ?? 0) - (n[4] ?? 0)) * TICK_MS;
}

/** The parent of a process (Linux /proc). */
export function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** A process and its children, e.g. Postgres' postmaster and its backends. */
export function treeCpuMs(pid: number): number {
  const children = processTable().filter(([, parent]) => parent === pid);
  return processCpuMs(pid) + children.reduce((s, [c]) => s + processCpuMs(c), 0);
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}
