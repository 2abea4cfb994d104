import { readdir, readFile, readlink } from "node:fs/promises";

/** A listening TCP socket as the kernel lists it in `/proc/net/tcp{,6}`. */
export interface Listener {
  /** Printable address: `127.0.0.1`, `0.0.0.0`, `::`, `::ffff:127.0.0.1`, … */
  address: string;
  port: number;
  uid: number;
  inode: number;
}

const LISTEN = "0A";

/** `0100007F` (little-endian u32) → `127.0.0.1`. */
function ipv4(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join(".");
}

/** 32 hex digits, four little-endian u32 words → a compact IPv6 string (`::`, `::1`, `::ffff:127.0.0.1`). */
function ipv6(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let b = 3; b >= 0; b--) bytes.push(Number.parseInt(word.slice(b * 2, b * 2 + 2), 16));
  }
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return `::ffff:${bytes.slice(12).join(".")}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // The URL parser prints IPv6 in its canonical compressed form.
  return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
}

/**
 * Parses `/proc/net/tcp` or `/proc/net/tcp6` text and returns its listening
 * sockets. Pure, so it is unit-tested against captured kernel output.
 */
export function parseListeners(text: string, family: 4 | 6): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN) continue;
    const [addr, port] = (f[1] ?? "").split(":");
    if (!addr || !port) continue;
    out.push({
      address: family === 4 ? ipv4(addr) : ipv6(addr),
      port: Number.parseInt(port, 16),
      uid: Number(f[7]),
      inode: Number(f[9]),
    });
  }
  return out;
}

/** Every listening TCP socket of this network namespace. */
export async function listListeners(): Promise<Listener[]> {
  const [v4, v6] = await Promise.all([
    readFile("/proc/net/tcp", "utf8").catch(() => ""),
    readFile("/proc/net/tcp6", "utf8").catch(() => ""),
  ]);
  return [...parseListeners(v4, 4), ...parseListeners(v6, 6)];
}

/** Addresses whose listener would receive a connection Reef makes to `127.0.0.1:port`. */
const REACHES_LOOPBACK_V4 = new Set(["127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:0.0.0.0"]);

/** The listeners that would accept Reef's connection to `127.0.0.1:port`. */
export function loopbackListeners(all: Listener[], port: number): Listener[] {
  return all.filter((l) => l.port === port && REACHES_LOOPBACK_V4.has(l.address));
}

/** Where a socket is held open: a process and its descriptor number. */
export interface SocketHolder {
  pid: number;
  fd: number;
}

/** Socket inodes held open by the given processes (`/proc/<pid>/fd/* -> socket:[inode]`), with a holder of each. */
export async function socketInodesOf(pids: Iterable<number>): Promise<Map<number, SocketHolder>> {
  const inodes = new Map<number, SocketHolder>();
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && !inodes.has(Number(m[1]))) inodes.set(Number(m[1]), { pid, fd: Number(fd) });
    }
  }
  return inodes;
}

/**
 * Whether the holder still has that very socket open: one readlink. While the
 * gateway holds its listening socket, no other user can bind an address that
 * would take its connections (the kernel refuses a bind that overlaps a
 * listener), and a socket's inode is never reused while it lives.
 */
export async function stillHeld(holder: SocketHolder, inode: number): Promise<boolean> {
  const target = await readlink(`/proc/${holder.pid}/fd/${holder.fd}`).catch(() => "");
  return target === `socket:[${inode}]`;
}

/** `pid (comm) state ppid …` → ppid; comm may hold spaces and parentheses. */
export function parentOf(stat: string): number | undefined {
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ppid = Number(rest[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/** `pid` and all its descendants, found by walking parent links in `/proc`. */
export async function processTree(pid: number): Promise<Set<number>> {
  const children = new Map<number, number[]>();
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    const ppid = stat ? parentOf(stat) : undefined;
    if (ppid === undefined) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const tree = new Set<number>();
  const queue = [pid];
  while (queue.length) {
    const p = queue.pop() as number;
    if (tree.has(p)) continue;
    tree.add(p);
    queue.push(...(children.get(p) ?? []));
  }
  return tree;
}

/** What is listening on a gateway's port, judged against the gateway's own processes. */
export type ListenerVerdict =
  | { kind: "none" }
  | { kind: "ours"; holders: { inode: number; holder: SocketHolder }[] }
  | { kind: "foreign"; address: string; uid: number; inode: number };

/**
 * Whether every socket that would receive Reef's connection to `127.0.0.1:port`
 * is held by one of `pids` (and, when given, belongs to `uid`). A listener of
 * anyone else on that port means another process could receive the gateway's
 * traffic and bearer token: the caller must not connect.
 */
export async function judgeListener(
  port: number,
  pids: Iterable<number>,
  uid?: number,
  listeners?: Listener[],
): Promise<ListenerVerdict> {
  const candidates = loopbackListeners(listeners ?? (await listListeners()), port);
  if (candidates.length === 0) return { kind: "none" };
  const held = await socketInodesOf(pids);
  const stranger = candidates.find((l) => !held.has(l.inode) || (uid !== undefined && l.uid !== uid));
  if (stranger) return { kind: "foreign", address: stranger.address, uid: stranger.uid, inode: stranger.inode };
  return {
    kind: "ours",
    holders: candidates.map((l) => ({ inode: l.inode, holder: held.get(l.inode) as SocketHolder })),
  };
}
