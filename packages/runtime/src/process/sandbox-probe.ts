import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readlinkSync } from "node:fs";
import { ETC_READ_ONLY, type HostLayout, ROOT_ENTRIES, type RootEntry, SANDBOX_BASE_ARGS } from "./sandbox.ts";

/** Whether gateways can run inside bubblewrap on this host, and what it needs. */
export type SandboxProbe =
  | { available: true; bwrap: string; socat: string; host: HostLayout }
  | { available: false; reason: string };

/** What an operator should do where the probe fails. */
export const SANDBOX_FIX =
  "install bubblewrap and socat (apt-get install bubblewrap socat) and allow unprivileged user namespaces, or run Reef as root";

function find(name: string): string | undefined {
  for (const dir of ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"]) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

function rootEntry(name: string): RootEntry {
  try {
    const st = lstatSync(`/${name}`);
    if (st.isSymbolicLink()) {
      const target = readlinkSync(`/${name}`).replace(/^\//, "");
      // Merged /usr: /bin -> usr/bin. Anything else is bound as the directory it resolves to.
      return target === `usr/${name}` ? "link" : "dir";
    }
    return st.isDirectory() ? "dir" : "absent";
  } catch {
    return "absent";
  }
}

/** The host's root layout and /etc entries, as the sandbox builder needs them. */
export function hostLayout(): HostLayout {
  const rootEntries: HostLayout["rootEntries"] = {};
  for (const name of ROOT_ENTRIES) rootEntries[name] = rootEntry(name);
  return { rootEntries, etc: ETC_READ_ONLY.filter((p) => existsSync(p)) };
}

let cached: SandboxProbe | undefined;

/**
 * Checks once per process that bubblewrap is installed and can create every
 * namespace a gateway's sandbox uses (a trivial `/bin/true` inside one), and
 * that socat, which bridges the sandbox's sockets, is there. Synchronous and
 * fast (a few milliseconds): Reef runs it while it starts.
 */
export function probeSandbox(opts: { fresh?: boolean } = {}): SandboxProbe {
  if (cached && !opts.fresh) return cached;
  cached = probe();
  return cached;
}

function probe(): SandboxProbe {
  if (process.platform !== "linux") return { available: false, reason: "bubblewrap sandboxes need Linux" };
  const bwrap = find("bwrap");
  if (!bwrap) return { available: false, reason: "bubblewrap (bwrap) is not installed" };
  const socat = find("socat");
  if (!socat) return { available: false, reason: "socat is not installed" };
  if (!socat.startsWith("/usr/")) {
    return { available: false, reason: `socat is at ${socat}, outside /usr, where a sandbox cannot run it` };
  }
  const host = hostLayout();
  const args = [
    ...SANDBOX_BASE_ARGS,
    ...ROOT_ENTRIES.flatMap((n) =>
      host.rootEntries[n] === "link"
        ? ["--symlink", `usr/${n}`, `/${n}`]
        : host.rootEntries[n] === "dir"
          ? ["--ro-bind", `/${n}`, `/${n}`]
          : [],
    ),
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--",
    "/bin/true",
  ];
  const r = spawnSync(bwrap, args, { encoding: "utf8", timeout: 10_000, env: { PATH: "/usr/bin:/bin" } });
  if (r.error) return { available: false, reason: `bubblewrap could not run: ${r.error.message}` };
  if (r.status !== 0) {
    const why = (r.stderr || "").trim().split("\n")[0] || `exit code ${r.status}`;
    return { available: false, reason: `bubblewrap cannot create the sandbox's namespaces here (${why})` };
  }
  return { available: true, bwrap, socat, host };
}

/** One line for the start-up log. */
export function describeSandbox(probe: SandboxProbe): string {
  return probe.available
    ? `gateways run sandboxed (bubblewrap ${probe.bwrap}: own mount, PID, IPC and network namespaces; traffic through Reef's sockets)`
    : `gateways cannot be sandboxed: ${probe.reason}. Agents with shell or file tools are refused until you ${SANDBOX_FIX}`;
}
