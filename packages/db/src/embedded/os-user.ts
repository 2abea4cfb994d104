import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);

/** System tools live in sbin, which a service's PATH often lacks. */
function tool(name: string): string {
  for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return name;
}

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  /** Home directory from the password database (`/` when it names none). */
  home: string;
}

async function lookup(name: string): Promise<OsUser | undefined> {
  try {
    const uid = Number((await run(tool("id"), ["-u", name])).stdout.trim());
    const gid = Number((await run(tool("id"), ["-g", name])).stdout.trim());
    const entry = await run(tool("getent"), ["passwd", name]).then(
      (r) => r.stdout.trim(),
      () => "",
    );
    return { name, uid, gid, home: entry.split(":")[5] || "/" };
  } catch {
    return undefined;
  }
}

/**
 * Returns the unprivileged OS user the embedded server runs as when Reef runs as
 * root, creating it (system user, no home, no login shell) if it does not exist.
 */
export async function ensureOsUser(name: string): Promise<OsUser> {
  const found = await lookup(name);
  if (found) return found;
  try {
    await run(tool("groupadd"), ["--system", name]).catch(() => {});
    await run(tool("useradd"), ["--system", "--gid", name, "--no-create-home", "--shell", "/usr/sbin/nologin", name]);
  } catch (err) {
    throw new Error(
      `Reef runs as root, so the embedded Postgres must run as an unprivileged OS user, and creating user "${name}" failed: ${(err as Error).message}`,
    );
  }
  const created = await lookup(name);
  if (!created) throw new Error(`OS user "${name}" was created but cannot be looked up`);
  return created;
}
