import { dirname, isAbsolute, join, normalize, sep } from "node:path";

/**
 * The sandbox a process-driver gateway runs in: a pure description of the
 * bubblewrap command line (unit-tested, like the Docker and Kubernetes spec
 * builders), and the socket layout Reef and the sandbox agree on.
 */

/** The port the gateway listens on inside its own network namespace (nothing else can be there). */
export const SANDBOX_GATEWAY_PORT = 18_789;
/** The port, inside the namespace, where a bridge forwards to Reef's outbound server (HTTPS_PROXY and the LLM proxy). */
export const SANDBOX_OUTBOUND_PORT = 3_128;
/**
 * Where a sandboxed gateway reads its config: a read-only copy bubblewrap makes
 * from a descriptor, outside the runtime directory. The gateway's user (so any
 * shell command an agent runs) can write everything in its runtime directory:
 * a config there could be edited, or swapped for another, and OpenClaw reloads
 * its config when the file changes, so an agent could widen its own tools or
 * exec policy. This copy it can neither change, move nor replace.
 */
export const SANDBOX_CONFIG_PATH = "/run/reef/openclaw.json";

/** `sun_path` holds 108 bytes with the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** The Unix sockets of one runtime, in a directory of its own inside the runtime's directory. */
export function runtimeSockets(runtimeDir: string): { dir: string; gateway: string; outbound: string } {
  const dir = join(runtimeDir, "sock");
  return { dir, gateway: join(dir, "gateway.sock"), outbound: join(dir, "outbound.sock") };
}

/**
 * Why a socket path cannot be used, or undefined when it can. Socket paths are
 * silently truncated by some APIs and refused by others past 107 bytes; and
 * socat's address syntax gives `:` and `,` meanings of their own.
 */
export function socketPathProblem(path: string): string | undefined {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    return `the runtime socket path ${path} is ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES} a Unix socket allows: set REEF_DATA_DIR (or REEF_SERVICE_DIR when Reef runs as root) to a shorter directory`;
  }
  if (!/^[A-Za-z0-9._/+@=-]+$/.test(path)) {
    return `the runtime socket path ${path} holds characters a socket bridge cannot take (only letters, digits and ._/+@=- are allowed): set REEF_DATA_DIR (or REEF_SERVICE_DIR when Reef runs as root) to a plainer directory`;
  }
  return undefined;
}

/** How the host lays out `/bin`, `/lib`…: a link into `/usr` (merged /usr), a directory of its own, or nothing. */
export type RootEntry = "link" | "dir" | "absent";

/** What of the host the sandbox builder needs to know (probed once; see sandbox-probe.ts). */
export interface HostLayout {
  /** `bin`, `sbin`, `lib`, `lib64`, `lib32`, `libx32` at the root. */
  rootEntries: Partial<Record<(typeof ROOT_ENTRIES)[number], RootEntry>>;
  /** Which of the read-only files and directories under /etc the sandbox offers exist on this host. */
  etc: string[];
}

export const ROOT_ENTRIES = ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] as const;

/**
 * What of /etc a gateway sees: CA certificates (TLS through the proxy still
 * verifies the vendor), `alternatives` (so `awk`, `editor`… resolve) and the
 * linker cache. Never the host's passwd, hosts or resolv.conf: those are
 * generated (see {@link sandboxFiles}).
 */
export const ETC_READ_ONLY = ["/etc/ssl", "/etc/ca-certificates", "/etc/alternatives", "/etc/ld.so.cache"] as const;

export interface SandboxInput {
  /** The runtime's own directory: the only writable path (besides a private /tmp). */
  runtimeDir: string;
  /** Working directory inside. */
  home: string;
  /** Read-only: the OpenClaw install's node_modules and the Node binary's directory. */
  readOnly: string[];
  host: HostLayout;
  /**
   * Generated files, read by bubblewrap from inherited descriptors: `fd` is the
   * descriptor number; `mode` (octal, e.g. "0444") when not bubblewrap's 0600 root-only.
   */
  files: { path: string; fd: number; mode?: string | undefined }[];
}

function checkPath(p: string): string {
  if (!isAbsolute(p)) throw new Error(`sandbox paths must be absolute: ${p}`);
  const n = normalize(p).replace(/\/+$/, "");
  if (n === "" || n === "/") throw new Error("the host's root cannot be bound into a sandbox");
  return n;
}

/** `/a/b/c` → `["/a", "/a/b"]`. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let d = dirname(path); d !== "/" && d !== "."; d = dirname(d)) out.unshift(d);
  return out;
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + sep);
}

/**
 * What every sandbox starts with (the start-up probe runs the same): its own
 * namespaces, gone with its parent, no controlling terminal to push input into
 * (TIOCSTI), a private /tmp first (a later tmpfs would hide binds under /tmp),
 * and /usr read-only.
 */
export const SANDBOX_BASE_ARGS: readonly string[] = [
  "--die-with-parent",
  "--new-session",
  "--unshare-pid",
  "--unshare-ipc",
  "--unshare-net",
  "--unshare-uts",
  "--unshare-cgroup-try",
  "--perms",
  "1777",
  "--tmpfs",
  "/tmp",
  "--ro-bind",
  "/usr",
  "/usr",
];

/**
 * The bubblewrap arguments (everything before the command) for one gateway:
 * new PID, IPC, network, UTS and cgroup namespaces (loopback only), a private
 * /tmp, /usr and a few /etc entries read-only, the OpenClaw install and Node
 * read-only, the runtime's own directory read-write, nothing else of the host.
 *
 * Order matters: the /tmp tmpfs comes first (a later one would hide binds under
 * /tmp), and every ancestor of a bind target is created with mode 0755 before
 * it (bubblewrap would create it 0700 root, which the gateway's unprivileged
 * user could not traverse).
 */
export function sandboxArgs(input: SandboxInput): string[] {
  const runtimeDir = checkPath(input.runtimeDir);
  const args = [...SANDBOX_BASE_ARGS];
  for (const name of ROOT_ENTRIES) {
    const kind = input.host.rootEntries[name];
    if (kind === "link") args.push("--symlink", `usr/${name}`, `/${name}`);
    else if (kind === "dir") args.push("--ro-bind", `/${name}`, `/${name}`);
  }
  const made = new Set<string>(["/tmp", "/usr"]);
  const bound: string[] = ["/usr"];
  const makeAncestors = (target: string) => {
    for (const a of ancestorsOf(target)) {
      if (made.has(a) || bound.some((b) => within(a, b))) continue;
      made.add(a);
      args.push("--perms", "0755", "--dir", a);
    }
  };
  const bind = (flag: "--ro-bind" | "--bind", path: string) => {
    makeAncestors(path);
    args.push(flag, path, path);
    bound.push(path);
  };
  for (const p of input.host.etc) bind("--ro-bind", checkPath(p));
  for (const f of input.files) {
    makeAncestors(checkPath(f.path));
    if (f.mode) args.push("--perms", f.mode);
    args.push("--ro-bind-data", String(f.fd), f.path);
  }
  const readOnly = [...new Set(input.readOnly.map(checkPath))].sort((a, b) => a.length - b.length);
  for (const p of readOnly) {
    // Already visible (Node under /usr, or inside the install): one mount is enough.
    if (bound.some((b) => within(p, b))) continue;
    if (within(runtimeDir, p) || within(p, runtimeDir)) {
      throw new Error(`the runtime directory ${runtimeDir} and the read-only install ${p} overlap`);
    }
    bind("--ro-bind", p);
  }
  bind("--bind", runtimeDir);
  args.push("--proc", "/proc", "--dev", "/dev", "--chdir", checkPath(input.home));
  return args;
}

/** A file the sandbox shows that Reef generates (bubblewrap reads it from a descriptor). */
export interface SandboxFile {
  path: string;
  content: string;
  /** Octal mode; default bubblewrap's (0600, root's: unreadable to the gateway's user). */
  mode?: string;
}

/**
 * Generated files the sandbox gets instead of the host's: a passwd and group
 * naming only the gateway's own user (tools that look the user up work, and no
 * other workspace's OS user is listed), hosts for localhost, and nsswitch.
 */
export function sandboxFiles(user: { uid: number; gid: number }, home: string): SandboxFile[] {
  return [
    {
      path: "/etc/passwd",
      content: `root:x:0:0:root:/root:/usr/sbin/nologin\nreef:x:${user.uid}:${user.gid}:Reef gateway:${home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    },
    { path: "/etc/group", content: `root:x:0:\nreef:x:${user.gid}:\nnogroup:x:65534:\n` },
    { path: "/etc/hosts", content: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" },
    { path: "/etc/nsswitch.conf", content: "passwd: files\ngroup: files\nhosts: files dns\n" },
  ];
}

/** A socat bridge: traffic accepted on `listen` is forwarded to `connect` (socat address syntax). */
export interface Bridge {
  listen: string;
  connect: string;
}

/**
 * Accepts Reef's connections on the gateway's socket and forwards them to the
 * gateway's port inside. socat listens with a backlog of 5 by default: 20
 * people sending at the same moment overflowed it and were refused.
 */
export function gatewayBridge(socketPath: string, port = SANDBOX_GATEWAY_PORT): Bridge {
  return {
    listen: `UNIX-LISTEN:${socketPath},fork,mode=600,unlink-early,backlog=512`,
    connect: `TCP:127.0.0.1:${port}`,
  };
}

/** Accepts the gateway's outbound connections on a loopback port and forwards them to Reef's outbound socket. */
export function outboundBridge(socketPath: string, port: number): Bridge {
  return {
    listen: `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=512`,
    connect: `UNIX-CONNECT:${socketPath}`,
  };
}

/**
 * The command that starts the bridges in the background, then execs `argv` (so
 * the gateway keeps the shell's pid and the bridges are its children). The
 * addresses travel as positional parameters: nothing is parsed by the shell.
 */
export function withBridges(argv: string[], bridges: Bridge[], socat: string): string[] {
  if (bridges.length === 0) return argv;
  const starts = bridges.map((_, i) => `"$0" "\${${2 * i + 1}}" "\${${2 * i + 2}}" &`).join(" ");
  return [
    "/bin/sh",
    "-c",
    `${starts} shift ${2 * bridges.length}; exec "$@"`,
    socat,
    ...bridges.flatMap((b) => [b.listen, b.connect]),
    ...argv,
  ];
}
