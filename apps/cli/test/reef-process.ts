import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

/** A real `reef` process, as a user would run it. */
export interface ReefProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "reef-cli-"));
  // The embedded server runs as an unprivileged user when tests run as root.
  await chmod(dir, 0o755);
  return dir;
}

/** Where to run from: another checkout's `main.ts` and `node`, and its directory. */
export interface ReefLaunch {
  node?: string;
  main?: string;
  cwd?: string;
  /** A command that runs node in turn, e.g. `["setpriv", "--reuid=65534", …]`: node's path and args follow it. */
  wrapper?: string[];
}

export function runReef(args: string[], env: Record<string, string>, launch: ReefLaunch = {}): ReefProcess {
  const [command, ...argv] = [...(launch.wrapper ?? []), launch.node ?? process.execPath, launch.main ?? MAIN, ...args];
  const child = spawn(command as string, argv, {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", REEF_LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(launch.cwd ? { cwd: launch.cwd } : {}),
  });
  let out = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Runs a one-off command to completion. */
export async function reefCommand(args: string[], env: Record<string, string>) {
  const p = runReef(args, env);
  const code = await p.exited;
  return { code, output: p.output() };
}

/** Starts `reef start` and waits for its "running at" line. */
export async function startReef(env: Record<string, string>, timeoutMs = 30_000, launch: ReefLaunch = {}) {
  const started = performance.now();
  const p = runReef(["start"], { REEF_PORT: "0", ...env }, launch);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`reef did not start in ${timeoutMs} ms:\n${p.output()}`)),
      timeoutMs,
    );
    const check = () => {
      const m = p.output().match(/Reef is running at (http:\/\/[^\s"]+)/);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    p.child.stdout?.on("data", check);
    p.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`reef exited with ${code} before starting:\n${p.output()}`));
    });
  });
  return { ...p, url, startMs: performance.now() - started };
}

export async function postmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    return Number((await readFile(join(dataDir, "postgres", "data", "postmaster.pid"), "utf8")).split("\n")[0]);
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(fn: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
