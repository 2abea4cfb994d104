import { constants } from "node:fs";
import { access, lstat, readFile, stat, statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import { secretKeySchema } from "@reef/config";
import { othersCanEnter, planServiceDir } from "@reef/server";
import { bad, type CheckResult, type DoctorConfig, errorText, GIB, MIB, ok } from "./doctor-checks.ts";

// `reef doctor`'s checks of the places Reef keeps its data: free disk, the data
// directory's permissions, the secret key, and the service directory.

const succeeds = (p: Promise<unknown>): Promise<boolean> =>
  p.then(
    () => true,
    () => false,
  );

async function existingAncestor(path: string): Promise<string> {
  let d = path;
  while (d !== dirname(d) && !(await succeeds(stat(d)))) d = dirname(d);
  return d;
}

function size(bytes: number): string {
  return bytes >= GIB ? `${(bytes / GIB).toFixed(1)} GiB` : `${Math.round(bytes / MIB)} MiB`;
}

/** Free space where the data dir is (warn under 2 GiB, fail under 500 MiB). */
export async function checkDisk(config: DoctorConfig): Promise<CheckResult> {
  const title = "disk";
  const dir = await existingAncestor(config.dataDir);
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const message = `${size(free)} free at ${dir}`;
  if (free >= 2 * GIB) return ok("disk", title, message);
  return bad(
    "disk",
    title,
    free < 500 * MIB ? "fail" : "warn",
    `only ${message}: the database and every gateway's state live there`,
    "free some space, or set REEF_DATA_DIR (and REEF_SERVICE_DIR) to a larger filesystem",
  );
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, "0");

/** The data dir exists or can be made, is ours to write, and nobody else can write it. */
export async function checkDataDir(config: DoctorConfig): Promise<CheckResult> {
  const title = "data dir";
  const dir = config.dataDir;
  const uid = process.getuid?.();
  const info = await stat(dir).catch(() => undefined);
  if (!info) {
    const parent = await existingAncestor(dir);
    return (await succeeds(access(parent, constants.W_OK)))
      ? ok("data-dir", title, `${dir} does not exist yet: the first start creates it`)
      : bad(
          "data-dir",
          title,
          "fail",
          `${dir} does not exist and ${parent} is not writable by uid ${uid}`,
          `mkdir -p ${dir} && chown ${uid} ${dir}, or set REEF_DATA_DIR`,
        );
  }
  if (!info.isDirectory()) {
    return bad("data-dir", title, "fail", `${dir} is not a directory`, "set REEF_DATA_DIR to a directory");
  }
  if (info.mode & 0o002) {
    return bad(
      "data-dir",
      title,
      "fail",
      `${dir} is world-writable (mode ${octal(info.mode)}): anyone on this machine could swap secret.key or the database's files`,
      `chmod o-w ${dir}`,
    );
  }
  if (!(await succeeds(access(dir, constants.W_OK)))) {
    return bad(
      "data-dir",
      title,
      "fail",
      `${dir} is not writable by uid ${uid} (owner uid ${info.uid})`,
      `chown ${uid} ${dir}, or run Reef as its owner`,
    );
  }
  return ok("data-dir", title, `${dir} (mode ${octal(info.mode)}, owner uid ${info.uid})`);
}

/** secret.key: a valid key, mode 0600, owned by the user that runs Reef (the one running this). */
export async function checkSecretKey(config: DoctorConfig): Promise<CheckResult> {
  const title = "secret key";
  if (config.secretKey) return ok("secret-key", title, "given as REEF_SECRET_KEY (secret.key is not used)");
  const path = join(config.dataDir, "secret.key");
  const info = await lstat(path).catch(() => undefined);
  if (!info) {
    return ok("secret-key", title, `none yet: the first start generates ${path} (mode 0600); back it up then`);
  }
  if (!info.isFile()) {
    return bad(
      "secret-key",
      title,
      "fail",
      `${path} is not a regular file`,
      `replace ${path} with the key file itself`,
    );
  }
  const uid = process.getuid?.();
  const problems: string[] = [];
  const fixes: string[] = [];
  if (info.mode & 0o077) {
    problems.push(`${path} has mode ${octal(info.mode)}: other users can read or change the root key`);
    fixes.push(`chmod 600 ${path}`);
  }
  if (uid !== undefined && info.uid !== uid) {
    problems.push(`${path} is owned by uid ${info.uid}, not by uid ${uid} that runs Reef`);
    fixes.push(`chown ${uid} ${path}`);
  }
  try {
    const key = secretKeySchema.safeParse(await readFile(path, "utf8"));
    if (!key.success) {
      problems.push(`${path} does not hold a valid key (${key.error.issues[0]?.message})`);
      fixes.push("restore it from your backup, or set REEF_SECRET_KEY");
    }
  } catch (err) {
    problems.push(`cannot read ${path}: ${errorText(err)}`);
    fixes.push(`chown ${uid} ${path}`);
  }
  if (problems.length) return bad("secret-key", title, "fail", problems.join("; "), [...new Set(fixes)].join(" && "));
  return ok("secret-key", title, `${path} (mode ${octal(info.mode)}, owner uid ${info.uid})`);
}

/**
 * As root, Postgres and the gateways run as unprivileged users: the directory
 * that holds their files (the data dir, or the service directory start chose
 * or will choose) must be reachable by them through every parent.
 */
export async function checkServiceDir(config: DoctorConfig): Promise<CheckResult> {
  const title = "service dir";
  const plan = await planServiceDir(config, true);
  const dir = plan?.dir ?? config.dataDir;
  if (!(await othersCanEnter(dir))) {
    return bad(
      "service-dir",
      title,
      "fail",
      `${dir} holds the database and gateway runtimes, but their unprivileged OS users cannot get through its parent directories`,
      plan?.reason === "configured"
        ? "set REEF_SERVICE_DIR to a directory every user can traverse (e.g. /var/lib/reef/NAME)"
        : `chmod o+x each directory down to ${dir}, or set REEF_SERVICE_DIR (e.g. /var/lib/reef/NAME)`,
    );
  }
  const why = !plan
    ? "the data dir"
    : plan.unrecorded
      ? "the data dir is private, so the first start puts them here"
      : plan.reason === "configured"
        ? "REEF_SERVICE_DIR"
        : "recorded in the data dir's service-dir file";
  return ok("service-dir", title, `${dir} (${why}): reachable by the OS users of Postgres and the gateways`);
}
