import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { runtimeUserName } from "@reef/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReef } from "./reef-process.ts";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("../../..", import.meta.url));
const asRoot = process.platform === "linux" && process.getuid?.() === 0;

/** A browser-ish client over real HTTP: keeps cookies and echoes the CSRF cookie on mutations. */
function httpClient(base: string) {
  const cookies = new Map<string, string>();
  return async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const csrf = [...cookies].find(([k]) => k.endsWith("reef_csrf"))?.[1];
    if (csrf && method !== "GET") headers["x-csrf-token"] = csrf;
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(method === "GET" ? {} : { body: JSON.stringify(body ?? {}) }),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (pair && eq > 0) cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) };
  };
}

/** Processes whose command line mentions `text`, with their uid. */
async function processesMentioning(text: string): Promise<{ pid: number; uid: number; cmdline: string }[]> {
  const found: { pid: number; uid: number; cmdline: string }[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ");
    if (!cmdline.includes(text)) continue;
    const uid = await stat(`/proc/${entry}`).then(
      (s) => s.uid,
      () => -1,
    );
    found.push({ pid: Number(entry), uid, cmdline });
  }
  return found;
}

/**
 * The README's two commands on a fresh server: root, a clone under root's home
 * (mode 0700), the default data dir. Neither Postgres' OS user nor the gateways'
 * may need a permission change to that home.
 */
describe.skipIf(!asRoot)("reef start as root from a clone in a mode-700 home", () => {
  let home: string;
  let clone: string;
  let serviceDir: string | undefined;
  let workspaceId: string | undefined;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "reef-root-home-"));
    await chmod(home, 0o700);
    clone = join(home, "reef");
    await mkdir(clone);
    // Hardlinks make a full copy of the install (node_modules included) quick.
    for (const entry of await readdir(REPO)) {
      if (entry === ".git" || entry === ".reef") continue;
      await run("cp", ["-al", join(REPO, entry), clone]);
    }
  }, 120_000);

  afterAll(async () => {
    if (workspaceId) await run("userdel", [runtimeUserName(workspaceId)]).catch(() => {});
    await rm(home, { recursive: true, force: true });
    if (serviceDir?.startsWith("/var/lib/reef/")) await rm(serviceDir, { recursive: true, force: true });
  }, 60_000);

  it("serves, keeps the cluster and runtimes where their users can reach them, and starts a gateway", async () => {
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    const reef = await startReef(
      { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: home, REEF_RUNTIME_START_TIMEOUT_SECONDS: "280" },
      90_000,
      {
        node: join(clone, "node_modules", ".bin", "node"),
        main: join(clone, "apps/cli/src/main.ts"),
        cwd: clone,
      },
    );
    try {
      expect((await fetch(`${reef.url}/readyz`)).status).toBe(200);
      const layout = reef
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg: string; serviceDir?: string; level: number })
        .find((l) => l.serviceDir);
      expect(layout, reef.output()).toBeDefined();
      serviceDir = layout?.serviceDir;
      expect(layout?.level).toBe(30);
      expect(serviceDir).toMatch(/^\/var\/lib\/reef\//);
      // The secret key stays in the data dir; nothing else needs to.
      expect(await readdir(join(clone, ".reef"))).toContain("secret.key");

      const http = httpClient(reef.url);
      const signup = await http("POST", "/api/v1/auth/signup", {
        email: `root-${Date.now()}@example.test`,
        password: "correct horse battery",
        name: "Root",
      });
      expect(signup.status, signup.text).toBe(201);
      workspaceId = signup.json().workspace.id as string;
      const started = await http("POST", `/api/v1/workspaces/${workspaceId}/runtime/start`);
      expect(started.status, `${started.text}\n${reef.output().slice(-3000)}`).toBe(200);
      expect(started.json()).toMatchObject({ state: "running" });

      // Postgres and the gateway run the mirrored install, each as its own unprivileged user.
      const dir = serviceDir as string;
      const pgPid = Number((await readFile(join(dir, "postgres/data/postmaster.pid"), "utf8")).split("\n")[0]);
      expect(await readlink(`/proc/${pgPid}/exe`)).toMatch(new RegExp(`^${dir}/install/`));
      expect((await stat(`/proc/${pgPid}`)).uid).not.toBe(0);
      // bubblewrap itself stays root outside the sandbox it made (it only waits for it);
      // everything inside runs as the workspace's user.
      const mentioning = (await processesMentioning(`${dir}/install/`)).filter((p) => p.cmdline.includes("openclaw"));
      const gateways = mentioning.filter((p) => !p.cmdline.startsWith("/usr/bin/bwrap "));
      expect(gateways.length).toBeGreaterThan(0);
      for (const g of gateways) expect(g.uid, g.cmdline).toBeGreaterThanOrEqual(1_500_000_000);
      for (const b of mentioning.filter((p) => p.cmdline.startsWith("/usr/bin/bwrap "))) {
        expect(b.cmdline).toContain("--die-with-parent");
        expect(b.cmdline).toContain("--unshare-net");
      }
      expect(await readdir(join(dir, "runtimes"))).toContain(workspaceId);
      await http("POST", `/api/v1/workspaces/${workspaceId}/runtime/stop`);
    } finally {
      reef.child.kill("SIGINT");
      expect(await reef.exited).toBe(0);
    }
    // Nothing was opened up in the home to make this work.
    expect((await stat(home)).mode & 0o777).toBe(0o700);
  }, 600_000);
});
