import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { EMBEDDING_ENV, GATEWAY_NODE_ENV } from "../container-profile.ts";
import {
  GatewayIntegrityError,
  type JsonObject,
  type RuntimeDriver,
  type RuntimeHandle,
  type RuntimeSpec,
  type RuntimeStatus,
} from "../driver.ts";
import { renderGatewayConfig } from "../openclaw-config.ts";
import { cgroupPids, createGatewayCgroup, killCgroup, procsFiles, removeCgroup, rssOf } from "./cgroups.ts";
import { judgeListener, processTree, type SocketHolder, stillHeld } from "./listeners.ts";
import { PortAllocator } from "./ports.ts";
import {
  ensureRuntimeUser,
  killUserProcesses,
  lockFolder,
  lookupUid,
  prepareLockFolder,
  type RuntimeUser,
  removeRuntimeUser,
  runtimeUserName,
} from "./runtime-users.ts";

export interface ProcessDriverOptions {
  /** Where runtimes live: one private directory per workspace. */
  rootDir: string;
  /** The Node binary the gateway runs on (OpenClaw needs ≥ 24.16). */
  nodePath?: string;
  /**
   * OpenClaw's launcher (`openclaw.mjs`); default: the installed package's. Given
   * when gateways' OS users cannot enter the install (a mirror of it elsewhere).
   */
  openclawEntry?: string;
  /** Run each workspace's gateway as its own unprivileged OS user. Only possible as root; default: when root. */
  separateUsers?: boolean;
  /** Loopback port range for gateways; each takes a block of 120. */
  ports?: { from: number; to: number };
  readyTimeoutMs?: number;
  /** Gateway output, line by line. */
  onLog?: (workspaceId: string, line: string) => void;
  /** Something operators should know about the host (e.g. limits that cannot be enforced). */
  onWarning?: (message: string) => void;
}

interface ProcessState extends JsonObject {
  pid: number;
  port: number;
  dir: string;
  user: string | null;
  /** The uid the gateway runs as (its own, or Reef's): its listener must belong to it. */
  uid: number;
  /** Control groups holding the whole process tree, where Reef could create them. */
  cgroup: { version: 1 | 2; dirs: string[] } | null;
}

/**
 * Joins the given `cgroup.procs` files, then execs the rest of argv. Runs as root
 * so the tree is inside its groups before the gateway (or anything it forks) runs.
 */
const JOIN_CGROUPS =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 126; shift; n=$((n-1)); done; exec "$@"';

function systemTool(name: string): string {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"])
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  return name;
}

/**
 * The command that starts `argv` as the gateway's own user: inside its control
 * groups, with no supplementary groups, no capabilities (bounding set emptied),
 * no_new_privs (so a setuid binary an agent runs cannot regain root), and
 * rlimits: no core dumps (they would hold keys), and a task cap per uid where
 * no pids cgroup bounds the tree.
 */
export function gatewayLaunch(
  argv: string[],
  user: { uid: number; gid: number },
  limits: { pids: number },
  cgroupProcs: string[],
): { file: string; args: string[] } {
  const rlimits = [systemTool("prlimit"), "--core=0", "--nofile=8192"];
  if (cgroupProcs.length === 0) rlimits.push(`--nproc=${limits.pids}`);
  const drop = [
    systemTool("setpriv"),
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--clear-groups",
    "--no-new-privs",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--",
  ];
  return {
    file: "/bin/sh",
    args: [
      "-c",
      JOIN_CGROUPS,
      "reef-gateway",
      String(cgroupProcs.length),
      ...cgroupProcs,
      ...rlimits,
      "--",
      ...drop,
      ...argv,
    ],
  };
}

const run = promisify(execFile);

/** The launcher of the `openclaw` package Reef is installed with. */
export function openclawEntry(): string {
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

const lifecycle = new Map<string, Promise<void>>();

/**
 * OpenClaw ships with a pending post-install step that its first run completes by
 * writing into its own package directory. Reef installs with scripts disabled and
 * runs gateways as users who cannot write there, so Reef completes it once, as the
 * user that owns node_modules, before the first gateway starts.
 */
function completeOpenClawInstall(nodePath: string, entry: string): Promise<void> {
  const pendingRun = lifecycle.get(entry);
  if (pendingRun) return pendingRun;
  const completion = (async () => {
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
    lifecycle.delete(entry);
    throw err;
  });
  lifecycle.set(entry, completion);
  return completion;
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

function hijacked(state: ProcessState, v: { address: string; uid: number; inode: number }): GatewayIntegrityError {
  return new GatewayIntegrityError(
    `another process (uid ${v.uid}) listens on the gateway's port ${state.port}: nothing was sent to it`,
    { port: state.port, address: v.address, uid: v.uid },
  );
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
  readonly #opts: Required<Omit<ProcessDriverOptions, "onLog" | "onWarning" | "openclawEntry">> &
    Pick<ProcessDriverOptions, "onLog" | "onWarning" | "openclawEntry">;
  readonly #ports: PortAllocator;
  readonly #children = new Map<number, { child: ChildProcess; exit: Promise<number | null>; code?: number | null }>();
  /** The listening sockets proven to be each gateway's own, and where it holds them, by gateway pid. */
  readonly #verified = new Map<number, { inode: number; holder: SocketHolder }[]>();
  #warnedCgroups = false;

  #warnNoCgroups(): void {
    if (this.#warnedCgroups) return;
    this.#warnedCgroups = true;
    this.#opts.onWarning?.(
      "control groups cannot be created here: gateways run without CPU and hard memory limits (task count capped per OS user by rlimit; memory by the health check)",
    );
  }

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
    const entry = this.#opts.openclawEntry ?? openclawEntry();
    await completeOpenClawInstall(this.#opts.nodePath, entry);
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
    if (user) {
      await claimSharedTmpRoot();
      await prepareLockFolder(user.uid, user.gid);
    }

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

    const cgroup = user ? await createGatewayCgroup(spec.workspaceId, spec.limits) : undefined;
    if (user && !cgroup) this.#warnNoCgroups();
    const argv = [
      this.#opts.nodePath,
      entry,
      "gateway",
      "run",
      "--port",
      String(port),
      "--bind",
      "loopback",
      "--auth",
      "token",
    ];
    const launch = user
      ? gatewayLaunch(argv, user, spec.limits, cgroup ? procsFiles(cgroup) : [])
      : { file: argv[0] as string, args: argv.slice(1) };
    const child = spawn(launch.file, launch.args, {
      cwd: paths.home,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
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
    });
    const pid = child.pid;
    if (pid === undefined) {
      this.#ports.release(port);
      if (cgroup) await removeCgroup(cgroup);
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
    const state: ProcessState = {
      pid,
      port,
      dir,
      user: user?.name ?? null,
      uid: user?.uid ?? process.getuid?.() ?? 0,
      cgroup: cgroup ?? null,
    };

    const deadline = Date.now() + this.#opts.readyTimeoutMs;
    try {
      for (;;) {
        signal.throwIfAborted();
        if (record.code !== undefined) {
          throw new Error(
            `the gateway exited with code ${record.code} before it was ready: ${tail.slice(-5).join(" | ")}`,
          );
        }
        // Nothing is sent to the port, not even /readyz, until the socket listening
        // there is known to be the gateway's own: another tenant could bind it first.
        const verdict = await this.#judge(state);
        if (verdict.kind === "foreign") throw hijacked(state, verdict);
        if (verdict.kind === "ours" && (await answers(port, "/readyz"))) break;
        if (Date.now() > deadline) throw new Error(`the gateway was not ready within ${this.#opts.readyTimeoutMs} ms`);
        await sleep(200, undefined, { signal }).catch(() => {});
      }
    } catch (err) {
      await this.stop({ workspaceId: spec.workspaceId, state }, { graceful: false });
      throw err;
    }
    return { endpoint: new URL(`http://127.0.0.1:${port}`), state };
  }

  /** The gateway's processes: its control group, or its descendants where there is none. */
  async #tree(state: ProcessState): Promise<Set<number>> {
    if (state.cgroup) {
      const pids = new Set(await cgroupPids(state.cgroup));
      if (pids.size) return pids;
    }
    return processTree(state.pid);
  }

  /** The gateway still holds every listening socket it was proven to own. */
  async #stillProven(state: ProcessState): Promise<boolean> {
    const known = this.#verified.get(state.pid);
    return !!known?.length && (await Promise.all(known.map((k) => stillHeld(k.holder, k.inode)))).every(Boolean);
  }

  async #judge(state: ProcessState) {
    const verdict = await judgeListener(state.port, await this.#tree(state), state.uid);
    if (verdict.kind === "ours") this.#verified.set(state.pid, verdict.holders);
    return verdict;
  }

  async poll(handle: RuntimeHandle): Promise<RuntimeStatus> {
    const state = handle.state as ProcessState;
    const known = this.#children.get(state.pid);
    if (known?.code !== undefined) return { status: "exited", code: known.code };
    if (!alive(state.pid)) return { status: "exited", code: null };
    // /readyz is only asked of a listener proven to be the gateway's; `verify` reports a stranger.
    if (!(await this.#stillProven(state)) && (await this.#judge(state)).kind !== "ours") return { status: "starting" };
    return (await answers(state.port, "/readyz")) ? { status: "running" } : { status: "starting" };
  }

  /**
   * Before every connection: the listening sockets proven to be the gateway's
   * own must still be open in the gateway (one readlink each); otherwise the
   * port is judged afresh against the gateway's processes.
   */
  async verify(handle: RuntimeHandle): Promise<void> {
    const state = handle.state as ProcessState;
    if (await this.#stillProven(state)) return;
    const verdict = await this.#judge(state);
    if (verdict.kind === "ours") return;
    this.#verified.delete(state.pid);
    if (verdict.kind === "foreign") throw hijacked(state, verdict);
    throw new GatewayIntegrityError(`nothing listens on the gateway's port ${state.port}`, { port: state.port });
  }

  async stop(handle: RuntimeHandle, opts: { graceful: boolean }): Promise<void> {
    const state = handle.state as ProcessState;
    const { pid, user } = state;
    const known = this.#children.get(pid);
    this.#verified.delete(pid);
    // A handle from persisted state may name a pid the OS has since reused:
    // only a process that is this gateway (by its command line) is signalled.
    if (!known && !(await isGateway(pid, user))) {
      // Its helpers may outlive it: the control group still holds them.
      if (state.cgroup) await killCgroup(state.cgroup);
      return;
    }
    const gone = () => known?.code !== undefined || !alive(pid);
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
    }
    // Everything left of the tree goes, however it re-grouped or re-parented
    // itself (the spawn broker runs in a process group of its own), and is waited
    // for: a process still writing would make `destroy` race its files.
    if (state.cgroup) {
      await killCgroup(state.cgroup);
    } else {
      const tree = await processTree(pid);
      kill("SIGKILL");
      for (const p of tree) {
        try {
          process.kill(p, "SIGKILL");
        } catch {}
      }
      const deadline = Date.now() + 5_000;
      while ((groupAlive(pid) || [...tree].some(alive)) && Date.now() < deadline) await sleep(50);
    }
    while (!gone()) await sleep(50);
    this.#children.delete(pid);
  }

  /** Resident memory of the gateway's whole process tree. */
  async stats(handle: RuntimeHandle): Promise<{ rssBytes: number } | undefined> {
    const state = handle.state as ProcessState;
    if (!alive(state.pid)) return undefined;
    return { rssBytes: await rssOf(await this.#tree(state)) };
  }

  async destroy(handle: RuntimeHandle): Promise<void> {
    const state = handle.state as Partial<ProcessState>;
    if (state.pid) await this.stop(handle, { graceful: false });
    await rm(this.#dir(handle.workspaceId), { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    // A stopped runtime has no persisted state: its OS user is named after the workspace.
    const user = state.user ?? (this.#opts.separateUsers ? runtimeUserName(handle.workspaceId) : null);
    if (!user) return;
    const uid = await lookupUid(user);
    if (uid !== undefined) {
      // Whatever still runs as the workspace's own user is the workspace's: it goes
      // before the user does, so no orphan outlives it under a recycled uid.
      await killUserProcesses(uid);
      // OpenClaw keeps lock files in a per-uid folder of /tmp (not TMPDIR), outside the runtime's own dir.
      await rm(lockFolder(uid), { recursive: true, force: true });
    }
    await removeRuntimeUser(user);
  }
}
