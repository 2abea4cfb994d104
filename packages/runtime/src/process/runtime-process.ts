import { lchown, lstat, mkdir, readFile, rm, stat } from "node:fs/promises";
import { gatewayFetch } from "../gateway-endpoint.ts";
import { parseListeners } from "./listeners.ts";
import { lookupUid } from "./runtime-users.ts";
import { SANDBOX_GATEWAY_PORT } from "./sandbox.ts";

// What the process driver asks of a runtime's processes, directories and endpoint.

/**
 * Makes `path` a real directory (what a previous gateway left there as a
 * symlink or file is removed, never followed) owned by `owner`. Nothing of the
 * runtime runs while this happens.
 */
export async function ensurePrivateDir(path: string, owner?: { uid: number; gid: number }): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st && !st.isDirectory()) await rm(path, { recursive: true, force: true });
  await mkdir(path, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  if (owner) await lchown(path, owner.uid, owner.gid);
}

/**
 * Whether `pid` is still this runtime's process: an OpenClaw gateway (it
 * retitles itself `openclaw-gateway`) of the runtime's own user, or for a
 * sandboxed runtime, Reef's bubblewrap for this runtime's directory (Linux
 * /proc; elsewhere: alive).
 */
export async function isRuntimeProcess(
  pid: number,
  state: { dir: string; user: string | null; socket?: string | null | undefined },
): Promise<boolean> {
  if (!alive(pid)) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    if (!cmdline.includes("openclaw")) return false;
    if (state.socket) return cmdline.includes(state.dir) && (await stat(`/proc/${pid}`)).uid === process.getuid?.();
    if (!state.user) return true;
    const owner = (await stat(`/proc/${pid}`)).uid;
    return owner === (await lookupUid(state.user));
  } catch {
    return process.platform !== "linux";
  }
}

/** True while any process of the group led by `pid` is left (the gateway has helper children). */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function answers(endpoint: URL, path: string): Promise<boolean> {
  try {
    const res = await gatewayFetch(endpoint, path, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Whether the sandboxed gateway listens on its port yet, read from its network
 * namespace's own table through a process inside it (any but bubblewrap's
 * outer one, which stays in the host's). Until it does, nothing is sent.
 */
export async function listensInside(tree: Set<number>, outerPid: number): Promise<boolean> {
  for (const pid of tree) {
    if (pid === outerPid) continue;
    const table = await readFile(`/proc/${pid}/net/tcp`, "utf8").catch(() => "");
    if (table) return parseListeners(table, 4).some((l) => l.port === SANDBOX_GATEWAY_PORT);
  }
  return false;
}

export async function commOf(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
}
