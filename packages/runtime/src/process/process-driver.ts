import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { EMBEDDING_ENV, GATEWAY_NODE_ENV } from "../container-profile.ts";
import type { JsonObject, RuntimeDriver, RuntimeHandle, RuntimeSpec, RuntimeStatus } from "../driver.ts";
import { renderGatewayConfig } from "../openclaw-config.ts";
import { PortAllocator } from "./ports.ts";
import { ensureRuntimeUser, lookupUid, type RuntimeUser, removeRuntimeUser, runtimeUserName } from "./runtime-users.ts";

export interface ProcessDriverOptions {
  /** Where runtimes live: one private directory per workspace. */
  rootDir: string;
  /** The Node binary the gateway runs on (OpenClaw needs ≥ 24.16). */
  nodePath?: string;
  /** Run each workspace's gateway as its own unprivileged OS user. Only possible as root; default: when root. */
  separateUsers?: boolean;
  /** Loopback port range for gateways; each takes a block of 120. */
  ports?: { from: number; to: number };
  readyTimeoutMs?: number;
  /** Gateway output, line by line. */
  onLog?: (workspaceId: string, line: string) => void;
}

interface ProcessState extends JsonObject {
  pid: number;
  port: number;
  dir: string;
  user: string | null;
}

const run = promisify(execFile);

function openclawEntry(): string {
  // As OpenClaw's embedding guide does: the package entry is dist/index.js.
  const entry = fileURLToPath(import.meta.resolve("openclaw"));
  return join(dirname(entry), "..", "openclaw.mjs");
}

let installedVersion: string | undefined;
/** The version of the `openclaw` package Reef runs gateways from. */
export function installedOpenclawVersion(): string {
  installedVersion ??= (
    JSON.parse(readFileSync(join(dirname(openclawEntry()), "package.json"), "utf8")) as { version: string }
  ).version;
  return installedVersion;
}

let lifecycle: Promise<void> | undefined;

/**
 * OpenClaw ships with a pending post-install step that its first run completes by
 * writing into its own package directory. Reef installs with scripts disabled and
 * runs gateways as users who cannot write there, so Reef completes it once, as the
 * user that owns node_modules, before the first gateway starts.
 */
function completeOpenClawInstall(nodePath: string): Promise<void> {
  lifecycle ??= (async () => {
    const entry = openclawEntry();
    const pending = join(dirname(entry), ".openclaw-lifecycle-pending");
    if (!existsSync(pending)) return;
    // Another Reef process may be completing it at the same moment: what counts is
    // that the marker is gone afterwards.
    const failure = await run(nodePath, [entry, "--version"], {
      env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: tmpdir() },
      timeout: 120_000,
    }).then(
      () => undefined,
      (err: Error) => err,
    );
    if (existsSync(pending)) {
      throw new Error(
        `OpenClaw's installation is incomplete (${pending} remains${failure ? `: ${failure.message}` : ""}); reinstall dependencies as the user that runs Reef`,
      );
    }
  })().catch((err: unknown) => {
    lifecycle = undefined;
    throw err;
  });
  return lifecycle;
}

/**
 * OpenClaw prefers a shared `/tmp/openclaw` when it is safe (owned by the gateway's
 * own user, mode 0700). Owning it as root makes it unsafe for every gateway user,
 * so each falls back to its private TMPDIR and nothing is shared between workspaces.
 */
async function claimSharedTmpRoot(): Promise<void> {
  await mkdir("/tmp/openclaw", { mode: 0o700 }).catch(() => {});
  await chown("/tmp/openclaw", 0, 0).catch(() => {});
  await chmod("/tmp/openclaw", 0o700).catch(() => {});
}

/**
 * Whether `pid` is still an OpenClaw gateway (it retitles itself `openclaw-gateway`),
 * and its own user's where the runtime has one (Linux /proc; elsewhere: alive).
 */
async function isGateway(pid: number, user: string | null): Promise<boolean> {
  if (!alive(pid)) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    if (!cmdline.includes("openclaw")) return false;
    if (!user) return true;
    const owner = (await stat(`/proc/${pid}`)).uid;
    return owner === (await lookupUid(user));
  } catch {
    return process.platform !== "linux";
  }
}

/** True while any process of the group led by `pid` is left (the gateway has helper children). */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function answers(port: number, path: string): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * The default driver: one OpenClaw gateway child process per workspace, on a
 * loopback port, with its own HOME, TMPDIR, state dir and log file (mode 0700),
 * and, when Reef runs as root, its own OS user, so one gateway cannot read
 * another's files. The environment holds no secrets: the token and provider keys
 * are in the 0600 config file.
 */
export class ProcessDriver implements RuntimeDriver {
  readonly kind = "process" as const;
  readonly #opts: Required<Omit<ProcessDriverOptions, "onLog">> & Pick<ProcessDriverOptions, "onLog">;
  readonly #ports: PortAllocator;
  readonly #children = new Map<number, { child: ChildProcess; exit: Promise<number | null>; code?: number | null }>();

  constructor(opts: ProcessDriverOptions) {
    this.#opts = {
      nodePath: process.execPath,
      separateUsers: process.getuid?.() === 0,
      ports: { from: 20_000, to: 44_000 },
      readyTimeoutMs: 90_000,
      ...opts,
      rootDir: resolve(opts.rootDir),
    };
    this.#ports = new PortAllocator(this.#opts.ports.from, this.#opts.ports.to, 120);
  }

  #dir(workspaceId: string): string {
    if (!/^[0-9a-f-]{36}$/i.test(workspaceId)) throw new Error(`not a workspace id: ${workspaceId}`);
    return join(this.#opts.rootDir, workspaceId);
  }

  async start(spec: RuntimeSpec, signal: AbortSignal): Promise<{ endpoint: URL; state: JsonObject }> {
    // Another process on this host (a second Reef, a test run) may bind the port
    // block between our check and the gateway's bind: try another block.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#startOnce(spec, signal);
      } catch (err) {
        const lostPort = err instanceof Error && /EADDRINUSE|already listening/.test(err.message);
        if (!lostPort || attempt >= 3 || signal.aborted) throw err;
      }
    }
  }

  async #startOnce(spec: RuntimeSpec, signal: AbortSignal): Promise<{ endpoint: URL; state: JsonObject }> {
    signal.throwIfAborted();
    await completeOpenClawInstall(this.#opts.nodePath);
    const dir = this.#dir(spec.workspaceId);
    const paths = {
      home: join(dir, "home"),
      tmp: join(dir, "tmp"),
      state: join(dir, "state"),
      agents: join(dir, "agents"),
      logs: join(dir, "logs"),
    };
    await mkdir(this.#opts.rootDir, { recursive: true, mode: 0o711 });
    await chmod(this.#opts.rootDir, 0o711);
    for (const d of [dir, ...Object.values(paths)]) await mkdir(d, { recursive: true, mode: 0o700 });
    const user: RuntimeUser | undefined = this.#opts.separateUsers
      ? await ensureRuntimeUser(spec.workspaceId)
      : undefined;
    if (user) await claimSharedTmpRoot();

    const port = await this.#ports.allocate();
    const configPath = join(paths.state, "openclaw.json");
    const config = renderGatewayConfig({
      ...spec.gateway,
      port,
      token: spec.token,
      paths: { logFile: join(paths.logs, "gateway.log"), agentsDir: paths.agents },
      openclawVersion: installedOpenclawVersion(),
    });
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    await chmod(configPath, 0o600);
    if (user) {
      for (const d of [dir, ...Object.values(paths)]) await chown(d, user.uid, user.gid);
      await chown(configPath, user.uid, user.gid);
    }

    const child = spawn(
      this.#opts.nodePath,
      [openclawEntry(), "gateway", "run", "--port", String(port), "--bind", "loopback", "--auth", "token"],
      {
        cwd: paths.home,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
        // Nothing inherited from Reef's environment: no database URL, no root key.
        env: {
          PATH: "/usr/local/bin:/usr/bin:/bin",
          HOME: paths.home,
          TMPDIR: paths.tmp,
          XDG_CACHE_HOME: join(paths.home, ".cache"),
          // No NODE_COMPILE_CACHE: set, it makes openclaw.mjs relaunch itself (an
          // extra ~80 MB process); unset, OpenClaw enables one under TMPDIR itself.
          OPENCLAW_CONFIG_PATH: configPath,
          OPENCLAW_STATE_DIR: paths.state,
          ...EMBEDDING_ENV,
          ...GATEWAY_NODE_ENV,
        },
      },
    );
    const pid = child.pid;
    if (pid === undefined) {
      this.#ports.release(port);
      throw new Error("the gateway process could not be spawned");
    }
    const tail: string[] = [];
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 20) tail.shift();
        this.#opts.onLog?.(spec.workspaceId, line);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    const record: { child: ChildProcess; exit: Promise<number | null>; code?: number | null } = {
      child,
      exit: new Promise((res) =>
        child.once("exit", (code) => {
          record.code = code;
          this.#ports.release(port);
          res(code);
        }),
      ),
    };
    this.#children.set(pid, record);
    const state: ProcessState = { pid, port, dir, user: user?.name ?? null };

    const deadline = Date.now() + this.#opts.readyTimeoutMs;
    try {
      for (;;) {
        signal.throwIfAborted();
        if (record.code !== undefined) {
          throw new Error(
            `the gateway exited with code ${record.code} before it was ready: ${tail.slice(-5).join(" | ")}`,
          );
        }
        if (await answers(port, "/readyz")) break;
        if (Date.now() > deadline) throw new Error(`the gateway was not ready within ${this.#opts.readyTimeoutMs} ms`);
        await sleep(200, undefined, { signal }).catch(() => {});
      }
    } catch (err) {
      await this.stop({ workspaceId: spec.workspaceId, state }, { graceful: false });
      throw err;
    }
    return { endpoint: new URL(`http://127.0.0.1:${port}`), state };
  }

  async poll(handle: RuntimeHandle): Promise<RuntimeStatus> {
    const { pid, port } = handle.state as ProcessState;
    const known = this.#children.get(pid);
    if (known?.code !== undefined) return { status: "exited", code: known.code };
    if (!alive(pid)) return { status: "exited", code: null };
    return (await answers(port, "/readyz")) ? { status: "running" } : { status: "starting" };
  }

  async stop(handle: RuntimeHandle, opts: { graceful: boolean }): Promise<void> {
    const { pid, user } = handle.state as ProcessState;
    const known = this.#children.get(pid);
    // A handle from persisted state may name a pid the OS has since reused:
    // only a process that is this gateway (by its command line) is signalled.
    if (!known && !(await isGateway(pid, user))) return;
    const gone = () => known?.code !== undefined || !alive(pid);
    // Signal the whole process group: the gateway has helper children of its own.
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig);
      } catch {
        try {
          process.kill(pid, sig);
        } catch {}
      }
    };
    if (!gone()) {
      kill(opts.graceful ? "SIGTERM" : "SIGKILL");
      const deadline = Date.now() + (opts.graceful ? 15_000 : 5_000);
      while (!gone() && Date.now() < deadline) await sleep(50);
      if (!gone()) {
        kill("SIGKILL");
        while (!gone()) await sleep(50);
      }
    }
    // Stragglers in the group (helpers) go too, and are waited for: a process
    // still writing would make `destroy` race its files.
    kill("SIGKILL");
    const groupDeadline = Date.now() + 5_000;
    while (groupAlive(pid) && Date.now() < groupDeadline) await sleep(50);
    this.#children.delete(pid);
  }

  /** Resident memory of the gateway's whole process group. */
  async stats(handle: RuntimeHandle): Promise<{ rssBytes: number } | undefined> {
    const { pid } = handle.state as ProcessState;
    if (!groupAlive(pid)) return undefined;
    try {
      const { stdout } = await run("ps", ["-o", "rss=", "-g", String(pid)]);
      const kb = stdout.split("\n").reduce((sum, line) => sum + (Number(line.trim()) || 0), 0);
      return { rssBytes: kb * 1024 };
    } catch {
      return undefined;
    }
  }

  async destroy(handle: RuntimeHandle): Promise<void> {
    const state = handle.state as Partial<ProcessState>;
    if (state.pid) await this.stop(handle, { graceful: false });
    await rm(this.#dir(handle.workspaceId), { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    // A stopped runtime has no persisted state: its OS user is named after the workspace.
    const user = state.user ?? (this.#opts.separateUsers ? runtimeUserName(handle.workspaceId) : null);
    if (!user) return;
    const uid = await lookupUid(user);
    // OpenClaw keeps lock files in a per-uid folder of /tmp (not TMPDIR), outside the runtime's own dir.
    if (uid !== undefined) await rm(`/tmp/openclaw-state-locks-${uid}`, { recursive: true, force: true });
    await removeRuntimeUser(user);
  }
}
