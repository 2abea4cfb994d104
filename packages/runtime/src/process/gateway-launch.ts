import { existsSync } from "node:fs";
import { join } from "node:path";
import { EMBEDDING_ENV, GATEWAY_NODE_ENV } from "../container-profile.ts";
import { GATEWAY_PATH } from "./mcp-servers-dir.ts";
import {
  type Bridge,
  gatewayBridge,
  outboundBridge,
  SANDBOX_CONFIG_PATH,
  type SandboxFile,
  sandboxArgs,
  sandboxFiles,
  withBridges,
} from "./sandbox.ts";
import type { SandboxProbe } from "./sandbox-probe.ts";

/**
 * Joins the given `cgroup.procs` files, then execs the rest of argv. Runs as root
 * so the tree is inside its groups before the gateway (or anything it forks) runs.
 */
const JOIN_CGROUPS =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 126; shift; n=$((n-1)); done; exec "$@"';

export function systemTool(name: string): string {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"])
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  return name;
}

export interface LaunchOptions {
  /** The gateway's own OS user (Reef is root): everything past the sandbox's set-up runs as it. */
  user?: { uid: number; gid: number } | undefined;
  limits: { pids: number };
  /** `cgroup.procs` files the tree joins first (root only). */
  cgroupProcs?: string[];
  /** The sandbox's command up to its `--` (bubblewrap and its arguments); absent: no sandbox. */
  sandbox?: string[] | undefined;
}

/**
 * The command that starts `argv` as the gateway. As root: inside its control
 * groups, with rlimits (no core dumps, which would hold keys; a task cap per uid
 * where no pids cgroup bounds the tree), then the sandbox (bubblewrap runs as
 * root to create the namespaces), then inside it the drop to the gateway's own
 * user with no supplementary groups, no capabilities (bounding set emptied) and
 * no_new_privs (a setuid binary an agent runs cannot regain root). Not root:
 * the sandbox alone (unprivileged user namespaces), or `argv` as it is.
 */
export function gatewayLaunch(argv: string[], opts: LaunchOptions): { file: string; args: string[] } {
  const { user, sandbox } = opts;
  if (!user) {
    const all = sandbox ? [...sandbox, ...argv] : argv;
    return { file: all[0] as string, args: all.slice(1) };
  }
  const cgroupProcs = opts.cgroupProcs ?? [];
  const rlimits = [systemTool("prlimit"), "--core=0", "--nofile=8192"];
  if (cgroupProcs.length === 0) rlimits.push(`--nproc=${opts.limits.pids}`);
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
      ...(sandbox ?? []),
      ...drop,
      ...argv,
    ],
  };
}

/**
 * The gateway's whole environment: nothing inherited from Reef's (no database
 * URL, no root key), no secret (the token is in the 0600 config file), and,
 * where its traffic goes through Reef, the proxy for everything but loopback.
 */
export function gatewayEnv(p: {
  home: string;
  tmp: string;
  state: string;
  configPath: string;
  /** Reef's outbound bridge (`http://127.0.0.1:<port>`), when the gateway has one. */
  proxy?: string | undefined;
}): Record<string, string> {
  return {
    PATH: GATEWAY_PATH,
    HOME: p.home,
    TMPDIR: p.tmp,
    XDG_CACHE_HOME: join(p.home, ".cache"),
    // No NODE_COMPILE_CACHE: set, it makes openclaw.mjs relaunch itself (an
    // extra ~80 MB process); unset, OpenClaw enables one under TMPDIR itself.
    OPENCLAW_CONFIG_PATH: p.configPath,
    OPENCLAW_STATE_DIR: p.state,
    ...EMBEDDING_ENV,
    ...GATEWAY_NODE_ENV,
    // Everything else the gateway sends goes through Reef's forward proxy (its egress policy).
    ...(p.proxy
      ? {
          HTTPS_PROXY: p.proxy,
          HTTP_PROXY: p.proxy,
          https_proxy: p.proxy,
          http_proxy: p.proxy,
          NO_PROXY: "127.0.0.1,localhost,::1",
          no_proxy: "127.0.0.1,localhost,::1",
        }
      : {}),
  };
}

/** What {@link gatewayCommand} assembles a gateway's launch from. */
export interface GatewayCommandInput {
  /** The sandbox probe's verdict where gateways are sandboxed; undefined: unsandboxed. */
  probe: Extract<SandboxProbe, { available: true }> | undefined;
  /** The install as the sandbox binds it (read-only dirs, node and entry inside). */
  install: { node: string; entry: string; readOnly: string[] } | undefined;
  node: string;
  entry: string;
  socat: string;
  runtimeDir: string;
  home: string;
  sockets: { gateway: string; outbound: string };
  port: number;
  /** Where the gateway reaches Reef's outbound bridge; null: no outbound. */
  outboundPort: number | null;
  user: { uid: number; gid: number } | undefined;
  limits: { pids: number };
  cgroupProcs: string[];
  /** The rendered `openclaw.json`: a sandboxed gateway reads it read-only at {@link SANDBOX_CONFIG_PATH}. */
  config: string;
  /** The operator's MCP servers directory (checked at start): read-only in the sandbox, at the same path. */
  mcpServersDir?: string | undefined;
}

/**
 * The whole command that starts one gateway: `node openclaw.mjs gateway run`,
 * its socket bridges, the bubblewrap sandbox around them where there is one,
 * and the privilege drop. Pure; `files` are the generated files bubblewrap
 * reads from descriptors 3, 4… of the spawned process.
 */
export function gatewayCommand(input: GatewayCommandInput): {
  launch: { file: string; args: string[] };
  files: SandboxFile[];
} {
  const { probe, install, sockets, port, outboundPort, user } = input;
  const gatewayArgv = [
    install?.node ?? input.node,
    install?.entry ?? input.entry,
    "gateway",
    "run",
    "--port",
    String(port),
    "--bind",
    "loopback",
    "--auth",
    "token",
  ];
  const bridges: Bridge[] = [];
  if (probe) bridges.push(gatewayBridge(sockets.gateway, port));
  if (outboundPort) bridges.push(outboundBridge(sockets.outbound, outboundPort));
  const files = probe
    ? [
        ...sandboxFiles(
          { uid: user?.uid ?? process.getuid?.() ?? 0, gid: user?.gid ?? process.getgid?.() ?? 0 },
          input.home,
        ),
        // Root's and read-only: the gateway's user reads it (the token in it is that gateway's own anyway).
        { path: SANDBOX_CONFIG_PATH, content: input.config, mode: "0444" },
      ]
    : [];
  const sandbox =
    probe && install
      ? [
          probe.bwrap,
          ...sandboxArgs({
            runtimeDir: input.runtimeDir,
            home: input.home,
            readOnly: input.mcpServersDir ? [...install.readOnly, input.mcpServersDir] : install.readOnly,
            host: probe.host,
            files: files.map((f, i) => ({ path: f.path, fd: 3 + i, mode: f.mode })),
          }),
          "--",
        ]
      : undefined;
  const launch = gatewayLaunch(withBridges(gatewayArgv, bridges, input.socat), {
    user,
    limits: input.limits,
    cgroupProcs: input.cgroupProcs,
    sandbox,
  });
  return { launch, files };
}
