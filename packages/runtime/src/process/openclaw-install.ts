import { execFile } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { chmod, chown, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The launcher of the `openclaw` package Reef is installed with. */
export function openclawEntry(): string {
  // As OpenClaw's embedding guide does: the package entry is dist/index.js.
  const entry = fileURLToPath(import.meta.resolve("openclaw"));
  return join(dirname(entry), "..", "openclaw.mjs");
}

let installedVersion: string | undefined;
/** The version of the `openclaw` package Reef runs gateways from. */
export function installedOpenclawVersion(): string {
  installedVersion ??= (
    JSON.parse(readFileSync(join(dirname(openclawEntry()), "package.json"), "utf8")) as { version: string }
  ).version;
  return installedVersion;
}

/**
 * What a sandbox must show read-only for `node <entry>` to run: the top-most
 * `node_modules` above the (real) entry, where its dependencies are hoisted,
 * and the (real) Node binary's directory. Paths are resolved, so a symlinked
 * install runs from where it really is.
 */
export function installPaths(nodePath: string, entry: string): { node: string; entry: string; readOnly: string[] } {
  const realNode = realpathSync(nodePath);
  const realEntry = realpathSync(entry);
  let nodeModules: string | undefined;
  for (let d = dirname(realEntry); d !== dirname(d); d = dirname(d))
    if (basename(d) === "node_modules") nodeModules = d;
  return { node: realNode, entry: realEntry, readOnly: [nodeModules ?? dirname(realEntry), dirname(realNode)] };
}

const lifecycle = new Map<string, Promise<void>>();

/**
 * OpenClaw ships with a pending post-install step that its first run completes by
 * writing into its own package directory. Reef installs with scripts disabled and
 * runs gateways as users who cannot write there (and in sandboxes where the
 * install is read-only), so Reef completes it once, as the user that owns
 * node_modules, before the first gateway starts.
 */
export function completeOpenClawInstall(nodePath: string, entry: string): Promise<void> {
  const pendingRun = lifecycle.get(entry);
  if (pendingRun) return pendingRun;
  const completion = (async () => {
    const pending = join(dirname(entry), ".openclaw-lifecycle-pending");
    if (!existsSync(pending)) return;
    // Another Reef process may be completing it at the same moment: what counts is
    // that the marker is gone afterwards.
    const failure = await run(nodePath, [entry, "--version"], {
      env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: tmpdir() },
      timeout: 120_000,
    }).then(
      () => undefined,
      (err: Error) => err,
    );
    if (existsSync(pending)) {
      throw new Error(
        `OpenClaw's installation is incomplete (${pending} remains${failure ? `: ${failure.message}` : ""}); reinstall dependencies as the user that runs Reef`,
      );
    }
  })().catch((err: unknown) => {
    lifecycle.delete(entry);
    throw err;
  });
  lifecycle.set(entry, completion);
  return completion;
}

/**
 * OpenClaw prefers a shared `/tmp/openclaw` when it is safe (owned by the gateway's
 * own user, mode 0700). Owning it as root makes it unsafe for every gateway user,
 * so each falls back to its private TMPDIR and nothing is shared between workspaces.
 * (A sandboxed gateway has a /tmp of its own.)
 */
export async function claimSharedTmpRoot(): Promise<void> {
  await mkdir("/tmp/openclaw", { mode: 0o700 }).catch(() => {});
  await chown("/tmp/openclaw", 0, 0).catch(() => {});
  await chmod("/tmp/openclaw", 0o700).catch(() => {});
}
