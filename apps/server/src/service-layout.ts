import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { promisify } from "node:util";
import type { Config } from "@reef/config";
import { type PostgresBinaries, resolvePostgresBinaries } from "@reef/db";
import { openclawEntry } from "@reef/runtime";

const run = promisify(execFile);

/** Where a root-run Reef keeps what its unprivileged OS users must reach, by default. */
export const DEFAULT_SERVICE_ROOT = "/var/lib/reef";
/** The data dir file that records the service directory chosen at the first start. */
const POINTER_FILE = "service-dir";

/** Where the embedded database and the gateway runtimes live, and what they execute. */
export interface ServiceLayout {
  /** The embedded cluster's directory (`data/`, superuser password). */
  postgresDir: string;
  /** The process driver's root: one private directory per workspace. */
  runtimesDir: string;
  /** Set when these live outside the data dir, with the reason. */
  serviceDir?: string;
  serviceDirReason?: "configured" | "unreachable";
  /** Something the operator should know (logged as a warning at start). */
  warning?: string;
  /**
   * Set when Reef runs as root and the unprivileged users cannot enter the install:
   * the same executables, in a hardlinked mirror of `node_modules` they can reach.
   */
  mirror?: {
    dir: string;
    node: string;
    openclawEntry: string;
    postgres: PostgresBinaries | undefined;
  };
}

/** What to say about the layout at start-up (one INFO line), when there is anything to say. */
export function describeLayout(
  layout: ServiceLayout,
  dataDir: string,
  embeddedDatabase: boolean,
): { msg: string; fields: object } | undefined {
  if (!layout.serviceDir && !layout.mirror) return undefined;
  const parts: string[] = [];
  if (layout.serviceDir) {
    const why =
      layout.serviceDirReason === "configured"
        ? "as REEF_SERVICE_DIR says"
        : `outside the data dir ${dataDir}, which the unprivileged OS users of Postgres and the gateways cannot enter (REEF_SERVICE_DIR chooses another place)`;
    const what = embeddedDatabase
      ? `embedded database in ${layout.postgresDir} and gateway runtimes in ${layout.runtimesDir}`
      : `gateway runtimes in ${layout.runtimesDir}`;
    parts.push(`${what}, ${why}`);
  }
  if (layout.mirror) {
    parts.push(
      `${layout.serviceDir ? "those users cannot enter the install either" : "the unprivileged OS users of Postgres and the gateways cannot enter the install"}: they run Node, OpenClaw and Postgres from a hardlinked copy of node_modules in ${layout.mirror.dir}`,
    );
  }
  return {
    msg: parts.join("; "),
    fields: {
      dataDir,
      serviceDir: layout.serviceDir ?? dataDir,
      postgresDir: layout.postgresDir,
      runtimesDir: layout.runtimesDir,
      ...(layout.mirror ? { installMirror: layout.mirror.dir } : {}),
    },
  };
}

/** True when a user with no rights beyond "others" can pass through every directory down to `path`. */
export async function othersCanEnter(path: string): Promise<boolean> {
  for (let d = resolve(path); ; d = dirname(d)) {
    const info = await stat(d).catch(() => undefined);
    if (info && !(info.mode & 0o001)) return false;
    if (d === dirname(d)) return true;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** `/var/lib/reef/<clone>-<hash of the data dir>`: readable to an operator, distinct per data dir. */
function defaultServiceDir(dataDir: string): string {
  const slug =
    basename(dirname(dataDir))
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "")
      .slice(0, 40) || "reef";
  const hash = createHash("sha256").update(dataDir).digest("hex").slice(0, 8);
  return join(DEFAULT_SERVICE_ROOT, `${slug}-${hash}`);
}

/**
 * Where the embedded cluster and runtimes go when Reef is root. Postgres and the
 * gateways run as unprivileged users, which cannot enter a data dir under a
 * mode-0700 home (`/root`): rather than asking for a permission change there,
 * they move to a root-owned service directory. Once chosen it is recorded in the
 * data dir, so a later permission change never strands a cluster; and a cluster
 * already in the data dir stays where it is.
 */
async function chooseServiceDir(
  config: Pick<Config, "dataDir" | "serviceDir">,
  asRoot: boolean,
): Promise<{ dir: string; reason: "configured" | "unreachable"; earlier?: string } | undefined> {
  const plan = await planServiceDir(config, asRoot);
  if (plan?.unrecorded) await writeFile(join(config.dataDir, POINTER_FILE), `${plan.dir}\n`, { mode: 0o644 });
  return plan && { dir: plan.dir, reason: plan.reason, ...(plan.earlier ? { earlier: plan.earlier } : {}) };
}

/**
 * The service directory {@link resolveServiceLayout} uses, or would choose at the
 * next start (`unrecorded`), without creating or recording anything: for `reef doctor`.
 * Undefined: the data dir.
 */
export async function planServiceDir(
  config: Pick<Config, "dataDir" | "serviceDir">,
  asRoot: boolean,
): Promise<{ dir: string; reason: "configured" | "unreachable"; unrecorded?: true; earlier?: string } | undefined> {
  const dataDir = config.dataDir;
  if (config.serviceDir) return { dir: resolve(config.serviceDir), reason: "configured" };
  const recorded = (await readFile(join(dataDir, POINTER_FILE), "utf8").catch(() => "")).trim();
  if (recorded) return { dir: recorded, reason: "unreachable" };
  if (!asRoot) return undefined;
  if (await exists(join(dataDir, "postgres", "data", "PG_VERSION"))) return undefined;
  if (await othersCanEnter(dataDir)) return undefined;
  const dir = defaultServiceDir(dataDir);
  // A cluster already there belongs to an earlier data dir at this same path (a
  // clone deleted and made again, its pointer and usually its key gone with it):
  // never taken over silently, never deleted. A fresh data dir gets a fresh place.
  if (await exists(join(dir, "postgres", "data", "PG_VERSION"))) {
    return { dir: `${dir}-${randomBytes(4).toString("hex")}`, reason: "unreachable", unrecorded: true, earlier: dir };
  }
  return { dir, reason: "unreachable", unrecorded: true };
}

/** The top-most `node_modules` on the way up from `path`: the install's root. */
function nodeModulesOf(path: string): string | undefined {
  let found: string | undefined;
  for (let d = path; d !== dirname(d); d = dirname(d)) if (basename(d) === "node_modules") found = d;
  return found;
}

function inside(path: string, dir: string): boolean {
  return path.startsWith(dir + sep);
}

/** A stamp that changes whenever the install does (`npm ci` replaces node_modules and its lock). */
async function installStamp(nodeModules: string, node: string): Promise<string> {
  const hash = createHash("sha256").update(nodeModules);
  const dir = await stat(nodeModules);
  hash.update(String(dir.ino));
  hash.update(await readFile(join(nodeModules, ".package-lock.json")).catch(() => Buffer.alloc(0)));
  const bin = await stat(node);
  hash.update(`${node}:${bin.ino}:${bin.mtimeMs}`);
  return hash.digest("hex").slice(0, 16);
}

/** Hardlinks a tree (instant, no extra space); copies it where hardlinks cannot cross filesystems. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await run("cp", ["-a", "-l", from, to]);
  } catch {
    await rm(to, { recursive: true, force: true });
    await run("cp", ["-a", from, to]);
  }
}

/**
 * Makes `<base>/install/<stamp>/node_modules` a hardlinked copy of the install, once
 * per install: a later `npm ci` gives a new stamp and a new copy, and copies older
 * than the previous one are removed (the previous may still serve an adopted gateway).
 */
async function ensureMirror(base: string, nodeModules: string, node: string): Promise<{ dir: string; node: string }> {
  const installs = join(base, "install");
  const stamp = await installStamp(nodeModules, node);
  const dir = join(installs, stamp);
  const mirroredNode = inside(node, nodeModules)
    ? join(dir, "node_modules", relative(nodeModules, node))
    : join(dir, "bin", "node");
  if (await exists(join(dir, "node_modules"))) return { dir, node: mirroredNode };

  await mkdir(installs, { recursive: true, mode: 0o755 });
  await chmod(installs, 0o755);
  const tmp = join(installs, `.tmp-${randomBytes(6).toString("hex")}`);
  await mkdir(tmp, { mode: 0o755 });
  try {
    await linkOrCopy(nodeModules, join(tmp, "node_modules"));
    if (!inside(node, nodeModules)) {
      await mkdir(join(tmp, "bin"), { mode: 0o755 });
      await linkOrCopy(node, join(tmp, "bin", "node"));
    }
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another Reef command built the same copy meanwhile: use theirs.
      if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`could not copy the install to ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const current = join(installs, "current");
  const previous = (await readFile(current, "utf8").catch(() => "")).trim();
  await writeFile(current, `${stamp}\n`);
  for (const entry of await readdir(installs)) {
    if (entry === stamp || entry === previous || entry === "current") continue;
    // A copy under way in another Reef command is young; an old one was left by a crash.
    const age = Date.now() - ((await stat(join(installs, entry)).catch(() => undefined))?.mtimeMs ?? Date.now());
    if (entry.startsWith(".tmp-") && age < 3_600_000) continue;
    await rm(join(installs, entry), { recursive: true, force: true }).catch(() => {});
  }
  return { dir, node: mirroredNode };
}

/**
 * Decides where the embedded cluster and the process driver's runtimes live and
 * what their OS users execute, creating the service directory and install mirror
 * when needed. Not root (or not Linux): the data dir and the install, as always.
 */
export async function resolveServiceLayout(
  config: Pick<Config, "dataDir" | "serviceDir" | "databaseUrl" | "runtimeDriver">,
): Promise<ServiceLayout> {
  const asRoot = process.platform === "linux" && process.getuid?.() === 0;
  const chosen = await chooseServiceDir(config, asRoot);
  const base = chosen?.dir ?? config.dataDir;
  const layout: ServiceLayout = chosen
    ? {
        postgresDir: join(chosen.dir, "postgres"),
        runtimesDir: join(chosen.dir, "runtimes"),
        serviceDir: chosen.dir,
        serviceDirReason: chosen.reason,
      }
    : { postgresDir: join(config.dataDir, "postgres"), runtimesDir: join(config.dataDir, "runtimes") };
  if (chosen?.earlier) {
    layout.warning = `an embedded database from an earlier data dir at this path is in ${chosen.earlier}: not used, this data dir is new (to use it instead, stop Reef and set REEF_SERVICE_DIR=${chosen.earlier} and that data dir's secret key)`;
  }
  if (chosen) {
    await mkdir(chosen.dir, { recursive: true, mode: 0o755 });
    if (asRoot) await chmod(chosen.dir, 0o755);
    const stranded = join(config.dataDir, "postgres", "data", "PG_VERSION");
    const strandedHere = chosen.reason === "configured" && (await exists(stranded));
    if (strandedHere && !(await exists(join(layout.postgresDir, "data", "PG_VERSION")))) {
      layout.warning = `an embedded database exists in ${dirname(dirname(stranded))} but REEF_SERVICE_DIR points elsewhere: it is not used (move it to ${layout.postgresDir} or unset REEF_SERVICE_DIR)`;
    }
  }
  if (!asRoot) return layout;

  const needsPostgres = !config.databaseUrl;
  const needsGateways = config.runtimeDriver === "process";
  if (!needsPostgres && !needsGateways) return layout;
  const entry = await realpath(openclawEntry());
  const node = await realpath(process.execPath);
  const nodeModules = nodeModulesOf(entry);
  const postgres = needsPostgres ? await resolvePostgresBinaries() : undefined;
  const executables = [entry, node, ...(postgres ? [postgres.postgres, postgres.initdb] : [])];
  const reachable = await Promise.all(executables.map((f) => othersCanEnter(dirname(f))));
  if (!nodeModules || reachable.every(Boolean)) return layout;

  const mirror = await ensureMirror(base, nodeModules, node);
  const mirrored = (path: string) =>
    inside(path, nodeModules) ? join(mirror.dir, "node_modules", relative(nodeModules, path)) : path;
  const realBins = postgres && { postgres: await realpath(postgres.postgres), initdb: await realpath(postgres.initdb) };
  return {
    ...layout,
    mirror: {
      dir: mirror.dir,
      node: mirror.node,
      openclawEntry: mirrored(entry),
      postgres: realBins && { postgres: mirrored(realBins.postgres), initdb: mirrored(realBins.initdb) },
    },
  };
}
