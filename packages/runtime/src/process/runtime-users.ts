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

export interface RuntimeUser {
  name: string;
  uid: number;
  gid: number;
}

/** The OS user a workspace's gateway runs as: `reef-` and the first 24 hex digits of its id. */
export function runtimeUserName(workspaceId: string): string {
  return `reef-${workspaceId.replace(/-/g, "").slice(0, 24)}`;
}

async function lookup(name: string): Promise<RuntimeUser | undefined> {
  try {
    const uid = Number((await run(tool("id"), ["-u", name])).stdout.trim());
    const gid = Number((await run(tool("id"), ["-g", name])).stdout.trim());
    return { name, uid, gid };
  } catch {
    return undefined;
  }
}

/** Creates (once) an unprivileged system user with its own group and no login shell. */
export async function ensureRuntimeUser(workspaceId: string): Promise<RuntimeUser> {
  const name = runtimeUserName(workspaceId);
  const found = await lookup(name);
  if (found) return found;
  try {
    await run(tool("useradd"), ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name]);
  } catch (err) {
    const again = await lookup(name);
    if (again) return again; // created concurrently
    throw new Error(`cannot create OS user ${name} for the workspace's gateway: ${(err as Error).message}`);
  }
  const created = await lookup(name);
  if (!created) throw new Error(`OS user ${name} was created but cannot be looked up`);
  return created;
}

export async function removeRuntimeUser(name: string): Promise<void> {
  await run(tool("userdel"), [name]).catch(() => {});
}

/** The uid of an OS user, or undefined if there is none. */
export async function lookupUid(name: string): Promise<number | undefined> {
  return (await lookup(name))?.uid;
}
