import { type ChildProcess, spawn } from "node:child_process";
import { chmod, lchown, lstat, mkdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import {
  GatewayIntegrityError,
  type JsonObject,
  type RuntimeDriver,
  type RuntimeHandle,
  type RuntimeSpec,
  type RuntimeStatus,
} from "../driver.ts";
import { renderGatewayConfig, withoutHostTools } from "../openclaw-config.ts";
import { cgroupPids, createGatewayCgroup, killCgroup, procsFiles, removeCgroup, rssOf } from "./cgroups.ts";
import { freezeTree, isFrozen, isStopped, runState, thawTree } from "./freeze.ts";
import { gatewayCommand, gatewayEnv, systemTool } from "./gateway-launch.ts";
import { judgeListener, processTree, type SocketHolder, stillHeld } from "./listeners.ts";
import { capSwapAgain, reclaimFrozen } from "./memory-reclaim.ts";
import {
  claimSharedTmpRoot,
  completeOpenClawInstall,
  installedOpenclawVersion,
  installPaths,
  openclawEntry,
} from "./openclaw-install.ts";
import { PortAllocator } from "./ports.ts";
import {
  endpointOf,
  hijacked,
  OUTBOUND_PORT_OFFSET,
  type ProcessDriverOptions,
  type ProcessState,
} from "./process-state.ts";
import {
  alive,
  answers,
  commOf,
  ensurePrivateDir,
  groupAlive,
  isRuntimeProcess,
  listensInside,
} from "./runtime-process.ts";
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
import {
  runtimeSockets,
  SANDBOX_CONFIG_PATH,
  SANDBOX_GATEWAY_PORT,
  SANDBOX_OUTBOUND_PORT,
  socketPathProblem,
} from "./sandbox.ts";
import { probeSandbox, SANDBOX_FIX, type SandboxProbe } from "./sandbox-probe.ts";

export { installedOpenclawVersion, openclawEntry } from "./openclaw-install.ts";
export type { ProcessDriverOptions } from "./process-state.ts";

/**
 * The default driver: one OpenClaw gateway child process per workspace, with its
 * own HOME, TMPDIR, state dir and log file (mode 0700) and, when Reef runs as
 * root, its own OS user. Where the host allows, inside a bubblewrap sandbox:
 * own mount, PID, IPC and network namespaces, nothing writable but its runtime
 * directory, reached only over a Unix socket there, and sending out only
 * through Reef's outbound socket. Elsewhere on a loopback port, without shell
 * or file tools. The environment holds no secrets: the token is in the 0600
 * config file, and behind Reef's LLM proxy there is no vendor key at all.
 */
export class ProcessDriver implements RuntimeDriver {
  readonly kind = "process" as const;
  readonly #opts: Required<
    Omit<
      ProcessDriverOptions,
      "onLog" | "onWarning" | "openclawEntry" | "sandbox" | "unconfinedForTests" | "mcpServersDir"
    >
  > &
    Pick<ProcessDriverOptions, "onLog" | "onWarning" | "openclawEntry" | "mcpServersDir">;
  readonly #ports: PortAllocator;
  readonly #probe: SandboxProbe;
  readonly #unconfined: boolean;
  readonly #children = new Map<number, { child: ChildProcess; exit: Promise<number | null>; code?: number | null }>();
  /** The listening sockets proven to be each gateway's own, and where it holds them, by gateway pid. */
  readonly #verified = new Map<number, { inode: number; holder: SocketHolder }[]>();
  /** Reef's outbound listener for each gateway this process started, by gateway pid. */
  readonly #outbound = new Map<number, { close(): Promise<void> }>();
  /** Whether gateways run sandboxed. */
  readonly sandboxed: boolean;
  #warnedCgroups = false;

  #warnNoCgroups(): void {
    if (this.#warnedCgroups) return;
    this.#warnedCgroups = true;
    this.#opts.onWarning?.(
      "control groups cannot be created here: gateways run without CPU and hard memory limits (task count capped per OS user by rlimit; memory by the health check)",
    );
  }

  constructor(opts: ProcessDriverOptions) {
    const { sandbox, unconfinedForTests, ...rest } = opts;
    this.#opts = {
      nodePath: process.execPath,
      separateUsers: process.getuid?.() === 0,
      ports: { from: 20_000, to: 44_000 },
      readyTimeoutMs: 90_000,
      ...rest,
      rootDir: resolve(opts.rootDir),
    };
    this.#ports = new PortAllocator(this.#opts.ports.from, this.#opts.ports.to, 120);
    this.#unconfined = unconfinedForTests === true;
    this.#probe = sandbox === false || this.#unconfined ? { available: false, reason: "switched off" } : probeSandbox();
    if (sandbox === true && !this.#probe.available) {
      throw new Error(`gateways cannot be sandboxed here: ${this.#probe.reason}; ${SANDBOX_FIX}`);
    }
    this.sandboxed = this.#probe.available;
  }

  /** The operator's MCP servers directory every sandbox shows read-only, if any. */
  get mcpServersDir(): string | undefined {
    return this.#opts.mcpServersDir;
  }

  /** Why gateways run unsandboxed, when they do. */
  get sandboxUnavailableReason(): string | undefined {
    return this.#probe.available ? undefined : this.#probe.reason;
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
    const probe = this.#probe.available ? this.#probe : undefined;
    const entry = this.#opts.openclawEntry ?? openclawEntry();
    await completeOpenClawInstall(this.#opts.nodePath, entry);
    const dir = this.#dir(spec.workspaceId);
    const sockets = runtimeSockets(dir);
    const outbound = spec.outbound;
    for (const path of [...(probe ? [sockets.gateway] : []), ...(outbound ? [sockets.outbound] : [])]) {
      const problem = socketPathProblem(path);
      if (problem) throw new Error(problem);
    }
    const socat = probe?.socat ?? systemTool("socat");
    if (outbound && !socat.startsWith("/")) {
      throw new Error(
        "socat is not installed: it bridges the gateway to Reef's outbound socket (apt-get install socat)",
      );
    }
    const paths = {
      home: join(dir, "home"),
      tmp: join(dir, "tmp"),
      state: join(dir, "state"),
      agents: join(dir, "agents"),
      logs: join(dir, "logs"),
      sock: sockets.dir,
    };
    await mkdir(this.#opts.rootDir, { recursive: true, mode: 0o711 });
    await chmod(this.#opts.rootDir, 0o711);
    const user: RuntimeUser | undefined = this.#opts.separateUsers
      ? await ensureRuntimeUser(spec.workspaceId)
      : undefined;
    for (const d of [dir, ...Object.values(paths)]) await ensurePrivateDir(d, user);
    // A sandboxed gateway has a /tmp of its own; an unsandboxed one shares the host's.
    if (user && !probe) {
      await claimSharedTmpRoot();
      await prepareLockFolder(user.uid, user.gid);
    }

    let gateway = spec.gateway;
    if (!probe && !this.#unconfined) {
      const stripped = withoutHostTools(gateway);
      if (stripped.dropped.length) {
        this.#opts.onWarning?.(
          `workspace ${spec.workspaceId}: shell and file tools were dropped for ${stripped.dropped.join(", ")}: gateways cannot be sandboxed here (${this.sandboxUnavailableReason}); ${SANDBOX_FIX}`,
        );
      }
      gateway = stripped.settings;
    }

    const port = probe ? SANDBOX_GATEWAY_PORT : await this.#ports.allocate();
    const releasePort = () => {
      if (!probe) this.#ports.release(port);
    };
    const outboundPort = outbound ? (probe ? SANDBOX_OUTBOUND_PORT : port + OUTBOUND_PORT_OFFSET) : null;
    let listener: { close(): Promise<void> } | undefined;
    const closeListener = async () => {
      const l = listener;
      listener = undefined;
      await l?.close().catch((err: unknown) => this.#opts.onWarning?.(`closing an outbound listener: ${String(err)}`));
    };
    let cgroup: Awaited<ReturnType<typeof createGatewayCgroup>> | undefined;
    /** What a start that never got a gateway process leaves behind. */
    const undoStart = async () => {
      releasePort();
      await closeListener();
      if (cgroup) await removeCgroup(cgroup);
    };
    let child: ChildProcess;
    try {
      if (outbound) {
        await rm(sockets.outbound, { force: true, recursive: true });
        listener = await outbound.listen(sockets.outbound, user ? { uid: user.uid, gid: user.gid } : undefined);
      }
      const configPath = join(paths.state, "openclaw.json");
      const config = renderGatewayConfig({
        ...gateway,
        port,
        token: spec.token,
        paths: { logFile: join(paths.logs, "gateway.log"), agentsDir: paths.agents },
        openclawVersion: installedOpenclawVersion(),
        outbound:
          outbound && outboundPort
            ? {
                baseUrl: `http://127.0.0.1:${outboundPort}`,
                credentials: outbound.credentials,
                mcpCredential: outbound.mcpCredential,
              }
            : undefined,
      });
      // Written afresh, never through what a previous gateway may have left at that name.
      const configText = `${JSON.stringify(config, null, 2)}\n`;
      await rm(configPath, { force: true, recursive: true });
      await writeFile(configPath, configText, { mode: 0o600, flag: "wx" });
      // Sandboxed, the gateway reads a read-only copy (SANDBOX_CONFIG_PATH) and this one stays Reef's, for
      // operators to read: the gateway's user could rewrite a file it owns (and an agent with it).
      if (user && !probe) await lchown(configPath, user.uid, user.gid);

      cgroup = user ? await createGatewayCgroup(spec.workspaceId, spec.limits) : undefined;
      if (user && !cgroup) this.#warnNoCgroups();
      const { launch, files } = gatewayCommand({
        probe,
        install: probe ? installPaths(this.#opts.nodePath, entry) : undefined,
        node: this.#opts.nodePath,
        entry,
        socat,
        runtimeDir: dir,
        home: paths.home,
        sockets,
        port,
        outboundPort,
        user,
        limits: spec.limits,
        cgroupProcs: cgroup ? procsFiles(cgroup) : [],
        config: configText,
        mcpServersDir: this.#opts.mcpServersDir,
      });
      const proxy = outboundPort ? `http://127.0.0.1:${outboundPort}` : undefined;
      child = spawn(launch.file, launch.args, {
        cwd: paths.home,
        detached: true,
        stdio: ["ignore", "pipe", "pipe", ...files.map(() => "pipe" as const)],
        // Nothing inherited from Reef's environment: no database URL, no root key.
        env: gatewayEnv({
          home: paths.home,
          tmp: paths.tmp,
          state: paths.state,
          configPath: probe ? SANDBOX_CONFIG_PATH : configPath,
          proxy,
        }),
      });
      // bubblewrap reads each generated file from its descriptor before it builds the sandbox.
      files.forEach((f, i) => {
        const pipe = child.stdio[3 + i] as Writable | null;
        pipe?.on("error", () => {});
        pipe?.end(f.content);
      });
    } catch (err) {
      await undoStart();
      throw err;
    }
    const spawnError: { error?: Error } = {};
    child.once("error", (err) => {
      spawnError.error = err;
    });
    const pid = child.pid;
    if (pid === undefined) {
      await undoStart();
      throw new Error(
        `the gateway process could not be spawned${spawnError.error ? `: ${spawnError.error.message}` : ""}`,
      );
    }
    if (listener) this.#outbound.set(pid, listener);
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
          releasePort();
          void this.#closeOutbound(pid);
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
      socket: probe ? sockets.gateway : null,
      outboundPort: probe ? null : outboundPort,
    };
    const endpoint = endpointOf(state);

    const deadline = Date.now() + this.#opts.readyTimeoutMs;
    try {
      for (;;) {
        signal.throwIfAborted();
        if (record.code !== undefined) {
          throw new Error(
            `the gateway exited with code ${record.code} before it was ready: ${tail.slice(-5).join(" | ")}`,
          );
        }
        if (await this.#readyToAsk(state)) {
          if (await answers(endpoint, "/readyz")) break;
        }
        if (Date.now() > deadline) throw new Error(`the gateway was not ready within ${this.#opts.readyTimeoutMs} ms`);
        await sleep(200, undefined, { signal }).catch(() => {});
      }
    } catch (err) {
      await this.stop({ workspaceId: spec.workspaceId, state }, { graceful: false });
      throw err;
    }
    return { endpoint, state };
  }

  /**
   * Whether /readyz may be asked. Sandboxed: once the gateway listens inside (its
   * socket is in a directory only it and Reef can write). Unsandboxed: nothing is
   * sent to the port until the socket listening there (and on the outbound
   * bridge's port) is known to be the gateway's own, since another tenant could
   * bind it first.
   * @throws GatewayIntegrityError when another process holds one of those ports.
   */
  async #readyToAsk(state: ProcessState): Promise<boolean> {
    if (state.socket) return listensInside(await this.#tree(state), state.pid);
    const verdict = await this.#judge(state);
    if (verdict.kind === "foreign") throw hijacked(verdict.port, verdict);
    return verdict.kind === "ours";
  }

  async #closeOutbound(pid: number): Promise<void> {
    const listener = this.#outbound.get(pid);
    if (!listener) return;
    this.#outbound.delete(pid);
    await listener.close().catch((err: unknown) => {
      this.#opts.onWarning?.(`closing a gateway's outbound listener failed: ${String(err)}`);
    });
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

  /** Judges the gateway's port, and its outbound bridge's where it has one, against its own processes. */
  async #judge(state: ProcessState) {
    const tree = await this.#tree(state);
    const ports = [state.port, ...(state.outboundPort ? [state.outboundPort] : [])];
    const holders: { inode: number; holder: SocketHolder }[] = [];
    for (const port of ports) {
      const verdict = await judgeListener(port, tree, state.uid);
      if (verdict.kind === "foreign") return { ...verdict, port };
      if (verdict.kind === "none") return verdict;
      holders.push(...verdict.holders);
    }
    this.#verified.set(state.pid, holders);
    return { kind: "ours" as const, holders };
  }

  async poll(handle: RuntimeHandle): Promise<RuntimeStatus> {
    const state = handle.state as ProcessState;
    const known = this.#children.get(state.pid);
    if (known?.code !== undefined) return { status: "exited", code: known.code };
    // A zombie is dead, its exit not yet collected.
    if (!alive(state.pid)) return { status: "exited", code: null };
    const run = await runState(state.pid);
    if (run === "Z") return { status: "exited", code: null };
    // A paused gateway cannot answer /readyz; that it is still there and still its own is all a poll can say.
    if (isStopped(run)) {
      return known || (await isRuntimeProcess(state.pid, state))
        ? { status: "paused" }
        : { status: "exited", code: null };
    }
    if (state.socket) {
      if (!known && !(await isRuntimeProcess(state.pid, state))) return { status: "exited", code: null };
      return (await answers(endpointOf(state), "/readyz")) ? { status: "running" } : { status: "starting" };
    }
    // /readyz is only asked of a listener proven to be the gateway's; `verify` reports a stranger.
    if (!(await this.#stillProven(state)) && (await this.#judge(state)).kind !== "ours") return { status: "starting" };
    return (await answers(endpointOf(state), "/readyz")) ? { status: "running" } : { status: "starting" };
  }

  /**
   * Before every connection. Sandboxed: the socket is a socket (not a link to
   * something else) in the runtime's socket directory, owned by the runtime's
   * uid, and the sandbox still runs. Unsandboxed: the listening sockets proven
   * to be the gateway's own must still be open in the gateway (one readlink
   * each); otherwise its ports are judged afresh against its processes.
   */
  async verify(handle: RuntimeHandle): Promise<void> {
    const state = handle.state as ProcessState;
    if (state.socket) return this.#verifySocket(state, state.socket);
    if (await this.#stillProven(state)) return;
    const verdict = await this.#judge(state);
    if (verdict.kind === "ours") return;
    this.#verified.delete(state.pid);
    if (verdict.kind === "foreign") throw hijacked(verdict.port, verdict);
    throw new GatewayIntegrityError(`nothing listens on the gateway's port ${state.port}`, { port: state.port });
  }

  async #verifySocket(state: ProcessState, socket: string): Promise<void> {
    const fail = (why: string) => new GatewayIntegrityError(`the gateway's socket ${socket} ${why}`, { socket });
    if (!this.#children.has(state.pid) && !(await isRuntimeProcess(state.pid, state))) {
      throw fail("has no sandbox behind it any more");
    }
    if (!alive(state.pid)) throw fail("has no sandbox behind it any more");
    const dir = await lstat(runtimeSockets(state.dir).dir).catch(() => undefined);
    if (!dir?.isDirectory() || dir.uid !== state.uid) throw fail("is not in the runtime's own socket directory");
    const sock = await lstat(socket).catch(() => undefined);
    if (!sock) throw fail("is missing");
    if (!sock.isSocket() || sock.uid !== state.uid) {
      throw fail(
        `is not a socket of the runtime's user (uid ${sock.uid}, ${sock.isSymbolicLink() ? "a link" : "a file"})`,
      );
    }
  }

  async pause(handle: RuntimeHandle): Promise<void> {
    const state = handle.state as ProcessState;
    if (!this.#children.has(state.pid) && !(await isRuntimeProcess(state.pid, state))) {
      throw new Error("the gateway is gone");
    }
    await freezeTree(() => this.#tree(state));
  }

  /** The frozen tree's control group pushed down into swap (memory-reclaim.ts); a running one is left alone. */
  async reclaim(handle: RuntimeHandle): Promise<{ before: number; after: number } | undefined> {
    const state = handle.state as ProcessState;
    if (!state.cgroup || !(await isFrozen(state.pid))) return undefined;
    return reclaimFrozen(state.cgroup);
  }

  async resume(handle: RuntimeHandle): Promise<void> {
    const state = handle.state as ProcessState;
    if (!alive(state.pid)) throw new Error("the gateway exited while paused");
    await thawTree(() => this.#tree(state));
    if (state.cgroup) await capSwapAgain(state.cgroup);
  }

  startedHere(handle: RuntimeHandle): boolean {
    return this.#children.has((handle.state as ProcessState).pid);
  }

  async stop(handle: RuntimeHandle, opts: { graceful: boolean }): Promise<void> {
    const state = handle.state as ProcessState;
    const { pid } = state;
    const known = this.#children.get(pid);
    this.#verified.delete(pid);
    // A handle from persisted state may name a pid the OS has since reused:
    // only a process that is this runtime's (by its command line) is signalled.
    if (!known && !(await isRuntimeProcess(pid, state))) {
      // Its helpers may outlive it: the control group still holds them.
      if (state.cgroup) await killCgroup(state.cgroup);
      await this.#closeOutbound(pid);
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
      if (state.socket && opts.graceful) {
        // bubblewrap does not pass signals on: the gateway inside is asked to stop
        // itself; once it has, its sandbox ends with it.
        for (const p of await this.#tree(state)) {
          if (p === pid || (await commOf(p)) === "bwrap") continue;
          try {
            process.kill(p, "SIGTERM");
          } catch {}
        }
      } else {
        kill(opts.graceful ? "SIGTERM" : "SIGKILL");
      }
      // A paused tree would hold a SIGTERM pending until the deadline: continue it so the signal lands.
      await thawTree(() => this.#tree(state));
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
    await this.#closeOutbound(pid);
  }

  /** Resident memory of the gateway's whole process tree (the sandbox's own processes included). */
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
