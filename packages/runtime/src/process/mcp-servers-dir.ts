import { accessSync, constants, lstatSync, readdirSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, join, normalize, resolve, sep } from "node:path";

/**
 * The operator's MCP servers directory (`REEF_MCP_SERVERS_DIR`): where the
 * stdio servers of the catalogue live (`node /opt/reef-mcp/<server>/index.js`).
 * The process driver mounts it read-only into every sandbox at the same path,
 * so it is shared by all workspaces: it must hold nothing secret and nothing a
 * gateway's user could change for another workspace's gateway.
 */

/** The PATH a gateway (and every stdio server it starts) gets: all of it under /usr inside a sandbox. */
export const GATEWAY_PATH = "/usr/local/bin:/usr/bin:/bin";

/**
 * Host directories the servers directory may not hold: mounted into every
 * sandbox, it would show them (passwords, other users' homes, sockets) to
 * every workspace's agents.
 */
const SYSTEM_DIRS = ["/etc", "/root", "/home", "/var", "/run", "/proc", "/sys", "/dev", "/boot", "/tmp"] as const;
/** Nor be inside these: the kernel's and services' live interfaces, not files an operator installs. */
const VIRTUAL_DIRS = ["/proc", "/sys", "/dev", "/run"] as const;

/** At most this many entries are checked (a server with its node_modules is a few thousand). */
const MAX_ENTRIES = 50_000;

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + sep);
}

export interface McpServersDirRules {
  /** Reef's own directories (data dir, service dir, runtimes): the servers directory may neither be in one nor hold one. */
  reefDirs: string[];
  /** Who may own what is in it: root and the user Reef runs as. */
  owners: number[];
}

/**
 * Checks the servers directory at start and returns its real path, or throws
 * a message naming the problem. Refused: a relative path, a directory that is
 * missing, the host's root or a system directory (or one holding one), one
 * inside Reef's data or runtime directories or holding them (the vault's key
 * file, other workspaces' runtimes), and any entry in it owned by another
 * user or writable by group or others: a runtime user could otherwise change
 * a server another workspace's gateway runs.
 */
export function checkMcpServersDir(dir: string, rules: McpServersDirRules): string {
  const fail = (why: string) => new Error(`REEF_MCP_SERVERS_DIR (${dir}): ${why}`);
  if (!isAbsolute(dir)) throw fail("must be an absolute path");
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (err) {
    throw fail(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!statSync(real).isDirectory()) throw fail("is not a directory");
  if (real === "/") throw fail("the host's root cannot be mounted into sandboxes");
  for (const system of SYSTEM_DIRS) {
    if (within(system, real)) throw fail(`holds ${system}, which sandboxes must not see`);
  }
  for (const v of VIRTUAL_DIRS) if (within(real, v)) throw fail(`is inside ${v}, which sandboxes must not see`);
  for (const reef of rules.reefDirs) {
    const r = normalize(resolve(reef));
    let realReef = r;
    try {
      realReef = realpathSync(r);
    } catch {}
    for (const d of new Set([r, realReef])) {
      if (within(real, d) || within(d, real)) {
        throw fail(
          `overlaps Reef's own directory ${d} (keys, databases, workspaces' runtimes): use a separate directory`,
        );
      }
    }
  }
  let seen = 0;
  const check = (path: string) => {
    if (++seen > MAX_ENTRIES) throw fail(`holds more than ${MAX_ENTRIES} entries`);
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return; // resolved inside the sandbox, where only what is mounted exists
    if (!rules.owners.includes(st.uid)) {
      throw fail(`${path} is owned by uid ${st.uid}: only root or Reef's own user may own what every sandbox runs`);
    }
    if (st.mode & 0o022) {
      throw fail(
        `${path} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}): chmod go-w it, or a runtime user could change what other workspaces run`,
      );
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) check(join(path, name));
  };
  check(real);
  return real;
}

/** What a catalogue command may be run from on the process driver: /usr (and what links into it), and the servers directory. */
export function sandboxCommandRoots(serversDir: string | undefined): string[] {
  return ["/usr", "/bin", "/sbin", "/etc/alternatives", ...(serversDir ? [serversDir] : [])];
}

/**
 * Why a catalogue command cannot run inside a process-driver sandbox, or
 * undefined when it can: an absolute path must be an executable file under
 * {@link sandboxCommandRoots} (after symlinks, since only those are mounted);
 * a bare name must resolve that way on the gateway's PATH.
 */
export function sandboxCommandProblem(command: string, serversDir: string | undefined): string | undefined {
  const roots = sandboxCommandRoots(serversDir);
  const runnable = (path: string): boolean => {
    try {
      const real = realpathSync(path);
      if (!statSync(real).isFile()) return false;
      accessSync(real, constants.X_OK);
      return roots.some((r) => within(real, r));
    } catch {
      return false;
    }
  };
  const where = `under /usr${serversDir ? ` or ${serversDir} (REEF_MCP_SERVERS_DIR)` : " (set REEF_MCP_SERVERS_DIR for servers of your own)"}`;
  if (isAbsolute(command)) {
    if (normalize(command) !== command) return `the command ${command} is not a plain absolute path`;
    return runnable(command)
      ? undefined
      : `the command ${command} is not an executable file ${where}, which is all a gateway's sandbox can run`;
  }
  if (!/^[A-Za-z0-9._+-]+$/.test(command) || command === "." || command === "..") {
    return `the command ${command} must be an absolute path or a bare program name`;
  }
  return GATEWAY_PATH.split(":").some((d) => runnable(join(d, command)))
    ? undefined
    : `the command ${command} is not on a gateway's PATH (${GATEWAY_PATH}) as an executable ${where}`;
}
