import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, lstat, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

/** System tools live in sbin, which a service's PATH often lacks. */
function tool(name: string): string {
  for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return name;
}

export interface RuntimeUser {
  name: string;
  uid: number;
  gid: number;
}

/** The OS user a workspace's gateway runs as: `reef-` and the first 24 hex digits of its id. */
export function runtimeUserName(workspaceId: string): string {
  return `reef-${workspaceId.replace(/-/g, "").slice(0, 24)}`;
}

async function lookup(name: string): Promise<RuntimeUser | undefined> {
  try {
    const uid = Number((await run(tool("id"), ["-u", name])).stdout.trim());
    const gid = Number((await run(tool("id"), ["-g", name])).stdout.trim());
    return { name, uid, gid };
  } catch {
    return undefined;
  }
}

/**
 * Runtime users get uids from a range of their own, picked at random: the next
 * uid is not guessable (a tenant once squatted paths named after the uid the next
 * workspace would get) and never collides with people's or packages' accounts.
 */
export const RUNTIME_UID_RANGE = { from: 1_500_000_000, size: 1_000_000 } as const;

async function uidTaken(uid: number): Promise<boolean> {
  try {
    await run(tool("getent"), ["passwd", String(uid)]);
    return true;
  } catch {
    try {
      await run(tool("getent"), ["group", String(uid)]);
      return true;
    } catch {
      return false;
    }
  }
}

async function freeUid(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const uid = RUNTIME_UID_RANGE.from + Math.floor(Math.random() * RUNTIME_UID_RANGE.size);
    if (!(await uidTaken(uid))) return uid;
  }
  throw new Error("no free uid in the runtime range");
}

/** Creates (once) an unprivileged system user with its own group and no login shell. */
export async function ensureRuntimeUser(workspaceId: string): Promise<RuntimeUser> {
  const name = runtimeUserName(workspaceId);
  const found = await lookup(name);
  if (found) return found;
  try {
    const uid = String(await freeUid());
    await run(tool("groupadd"), ["--system", "--gid", uid, name]);
    await run(tool("useradd"), [
      "--system",
      "--uid",
      uid,
      "--gid",
      uid,
      "--no-log-init", // a sparse lastlog entry at a large uid would be huge
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      name,
    ]);
  } catch (err) {
    const again = await lookup(name);
    if (again) return again; // created concurrently
    throw new Error(`cannot create OS user ${name} for the workspace's gateway: ${(err as Error).message}`);
  }
  const created = await lookup(name);
  if (!created) throw new Error(`OS user ${name} was created but cannot be looked up`);
  return created;
}

export async function removeRuntimeUser(name: string): Promise<void> {
  await run(tool("userdel"), [name]).catch(() => {});
  await run(tool("groupdel"), [name]).catch(() => {});
}

/** OpenClaw keeps its state-lock files in this folder, hard-wired under /tmp (not TMPDIR). */
export function lockFolder(uid: number): string {
  return `/tmp/openclaw-state-locks-${uid}`;
}

/**
 * Makes OpenClaw's per-uid lock folder in /tmp the gateway user's own (0700)
 * before the gateway starts. Anyone can create a path in /tmp: a tenant who made
 * the folder of another workspace's uid first would otherwise own its locks and
 * stop that gateway from ever starting. Whatever is there and is not exactly
 * ours is removed (as root, a symlink is removed, not followed).
 */
export async function prepareLockFolder(uid: number, gid: number): Promise<void> {
  const path = lockFolder(uid);
  for (let attempt = 0; attempt < 5; attempt++) {
    const st = await lstat(path).catch(() => undefined);
    if (st?.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return;
    if (st) await rm(path, { recursive: true, force: true });
    try {
      await mkdir(path, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue; // someone raced us: look again
      throw err;
    }
    // Root-owned and 0700 until this chown: nobody else can touch it meanwhile.
    await chown(path, uid, gid);
    return;
  }
  throw new Error(`cannot claim ${path} for the gateway: another process keeps recreating it`);
}

/** The uid of an OS user, or undefined if there is none. */
export async function lookupUid(name: string): Promise<number | undefined> {
  return (await lookup(name))?.uid;
}

/** SIGKILLs every process whose real uid is `uid`, until none is left (bounded). */
export async function killUserProcesses(uid: number, timeoutMs = 5_000): Promise<void> {
  if (uid === 0 || uid === process.getuid?.()) throw new Error(`refusing to kill every process of uid ${uid}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids: number[] = [];
    for (const name of await readdir("/proc").catch(() => [] as string[])) {
      if (!/^\d+$/.test(name)) continue;
      const status = await readFile(`/proc/${name}/status`, "utf8").catch(() => "");
      const m = /^Uid:\s+(\d+)/m.exec(status);
      if (m && Number(m[1]) === uid && !/^State:\s+Z/m.test(status)) pids.push(Number(name));
    }
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await sleep(50);
  }
}
