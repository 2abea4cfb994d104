import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type LlmStandIn, startLlmStandIn } from "@reef/testing/llm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayIntegrityError, type RuntimeHandle } from "../src/driver.ts";
import type { GatewaySettings } from "../src/openclaw-config.ts";
import { cgroupPids } from "../src/process/cgroups.ts";
import { ProcessDriver } from "../src/process/process-driver.ts";
import { ensureRuntimeUser, lockFolder, RUNTIME_UID_RANGE } from "../src/process/runtime-users.ts";

/**
 * Attacks on the process driver from another tenant's shell-enabled agent,
 * played by a process of another OS user (`nobody`) on the same host. Run
 * against unsandboxed gateways (on loopback ports, where the host has no
 * bubblewrap); a sandboxed gateway has no host port to squat.
 */
const asRoot = process.getuid?.() === 0 && process.platform === "linux";
const NOBODY = 65534;
const limits = { memoryMb: 2048, cpus: 2, pids: 512 };

let llm: LlmStandIn;
const root = join(tmpdir(), `reef-hardening-${process.pid}-${Date.now()}`);
const attackers: ChildProcess[] = [];

beforeAll(async () => {
  llm = await startLlmStandIn({ apiKey: "sk-hardening" });
  await mkdir(root, { recursive: true, mode: 0o755 });
  await chmod(root, 0o755);
});
afterAll(async () => {
  for (const a of attackers) a.kill("SIGKILL");
  await llm?.close();
});

const settings = (): GatewaySettings => ({
  providers: [
    {
      id: "standin",
      baseUrl: llm.baseUrl,
      apiKey: "sk-hardening",
      api: "openai-completions",
      models: [{ id: "stand-in-model" }],
    },
  ],
  agents: [{ id: "main", name: "Main", model: "standin/stand-in-model" }],
});

/**
 * The reviewer's script: watch `ps` for gateways' `--port N` (or wait for a given
 * port to be free), bind it first, answer every request with 200 and write down
 * what arrived, bearer tokens included. Only ports in `from..to` are touched, so
 * other test runs on the machine are left alone.
 */
const ATTACKER = `
const http = require("node:http"); const fs = require("node:fs");
const [log, from, to, only] = process.argv.slice(2);
const seen = new Set();
function squat(port) {
  if (seen.has(port)) return; seen.add(port);
  const srv = http.createServer((req, res) => {
    fs.appendFileSync(log, JSON.stringify({ url: req.url, auth: req.headers.authorization ?? null }) + "\\n");
    res.writeHead(200, { "content-type": "application/json" }); res.end('{"ok":true,"status":"live"}');
  });
  srv.on("error", () => seen.delete(port));
  srv.listen(port, "127.0.0.1", () => fs.appendFileSync(log, JSON.stringify({ bound: port }) + "\\n"));
}
setInterval(() => {
  if (only) return squat(Number(only));
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\\d+$/.test(pid)) continue;
    let argv; try { argv = fs.readFileSync("/proc/" + pid + "/cmdline", "utf8").split("\\0"); } catch { continue; }
    const i = argv.indexOf("--port"); if (i < 0) continue;
    const port = Number(argv[i + 1]);
    if (port >= Number(from) && port < Number(to)) squat(port);
  }
}, 2);
`;

async function startAttacker(range: { from: number; to: number }, only?: number) {
  const dir = await mkdtemp(join(tmpdir(), "reef-attacker-"));
  await chmod(dir, 0o777);
  const script = join(dir, "attacker.cjs");
  const log = join(dir, "seen.jsonl");
  await writeFile(script, ATTACKER);
  await writeFile(log, "");
  await chmod(log, 0o666);
  const child = spawn(
    "setpriv",
    [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      process.execPath,
      script,
      log,
      String(range.from),
      String(range.to),
      ...(only ? [String(only)] : []),
    ],
    { stdio: "ignore" },
  );
  attackers.push(child);
  return {
    seen: () =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { url?: string; auth?: string | null; bound?: number }),
    stop: () => child.kill("SIGKILL"),
  };
}

describe.runIf(asRoot)("process driver under attack from another tenant", () => {
  it("a squatter who binds a starting gateway's port first gets nothing: no request, no token", async () => {
    const ports = { from: 47_000, to: 47_000 + 120 * 4 };
    const attacker = await startAttacker(ports);
    const driver = new ProcessDriver({ rootDir: join(root, "squat"), ports, sandbox: false });
    const workspaceId = randomUUID();
    const token = randomBytes(24).toString("base64url");
    const started = await driver
      .start({ workspaceId, token, gateway: settings(), limits }, AbortSignal.timeout(90_000))
      .then(
        async (r) => {
          // Before the fix the squatter's /readyz made this "ready", and the next
          // chat request carried the token to it.
          await fetch(new URL("/v1/models", r.endpoint), { headers: { authorization: `Bearer ${token}` } }).catch(
            () => {},
          );
          return r;
        },
        (err: unknown) => err,
      );
    attacker.stop();
    await driver.destroy({ workspaceId, state: {} });
    const seen = attacker.seen();
    expect(
      seen.some((s) => s.bound),
      "the attacker bound a gateway port",
    ).toBe(true);
    expect(seen.filter((s) => s.url)).toEqual([]);
    expect(JSON.stringify(seen)).not.toContain(token);
    expect(started).toBeInstanceOf(Error);
  }, 120_000);

  describe("a running gateway", () => {
    const driver = new ProcessDriver({
      rootDir: join(root, "running"),
      ports: { from: 47_600, to: 48_800 },
      sandbox: false,
    });
    const workspaceId = randomUUID();
    let handle: RuntimeHandle;
    let uid: number;
    let squatted: string;

    beforeAll(async () => {
      // The reviewer's second attack: a folder named after the uid the next
      // workspace's gateway will get, created first by another tenant.
      const user = await ensureRuntimeUser(workspaceId);
      uid = user.uid;
      squatted = lockFolder(uid);
      spawnSync("setpriv", [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        "--clear-groups",
        "mkdir",
        "-m",
        "755",
        squatted,
      ]);
      expect((await stat(squatted)).uid).toBe(NOBODY);
      const r = await driver.start(
        { workspaceId, token: randomBytes(24).toString("base64url"), gateway: settings(), limits },
        AbortSignal.timeout(120_000),
      );
      handle = { workspaceId, state: r.state };
    }, 150_000);
    afterAll(async () => {
      await driver.destroy(handle ?? { workspaceId, state: {} });
    }, 60_000);

    it("starts although another tenant created its lock folder first, and takes the folder over", async () => {
      expect((await driver.poll(handle)).status).toBe("running");
      const st = await stat(squatted);
      expect(st.uid).toBe(uid);
      expect(st.mode & 0o777).toBe(0o700);
    });

    it("runs as a uid from the reserved range, without privileges, inside its limits", async () => {
      expect(uid).toBeGreaterThanOrEqual(RUNTIME_UID_RANGE.from);
      expect(uid).toBeLessThan(RUNTIME_UID_RANGE.from + RUNTIME_UID_RANGE.size);
      const status = await readFile(`/proc/${handle.state.pid}/status`, "utf8");
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(status).toMatch(/^CapBnd:\s+0+$/m);
      expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, "m"));
      const cg = handle.state.cgroup as { version: number; dirs: string[] } | null;
      expect(cg, "the gateway runs in control groups").not.toBeNull();
      if (cg?.version === 1) {
        const [pids, cpu, memory] = cg.dirs as [string, string, string];
        expect(readFileSync(join(pids, "pids.max"), "utf8").trim()).toBe(String(limits.pids));
        expect(readFileSync(join(cpu, "cpu.cfs_quota_us"), "utf8").trim()).toBe(String(limits.cpus * 100_000));
        expect(Number(readFileSync(join(memory, "memory.limit_in_bytes"), "utf8"))).toBe(limits.memoryMb * 1048576);
      }
      const members = await cgroupPids(cg as { version: 1 | 2; dirs: string[] });
      expect(members).toContain(Number(handle.state.pid));
    });

    it("verify passes for the gateway's own listener", async () => {
      await expect(driver.verify(handle)).resolves.toBeUndefined();
    });

    it("stop kills the whole tree, including a process that left the gateway's session and group", async () => {
      const cg = handle.state.cgroup as { version: 1 | 2; dirs: string[] };
      // What an agent's command can do: re-parent and re-group itself (setsid, double fork).
      const procs = cg.dirs.map((d) => join(d, "cgroup.procs"));
      spawnSync(
        "sh",
        [
          "-c",
          `for f in ${procs.join(" ")}; do echo $$ > $f; done; exec setpriv --reuid=${uid} --regid=${uid} --clear-groups setsid sh -c 'sleep 600 & exit 0'`,
          // Not inherited by the sleeper: spawnSync would wait for its pipes to close.
        ],
        { stdio: "ignore" },
      );
      await sleep(200);
      const escaped = spawnSync("pgrep", ["-u", String(uid), "-x", "sleep"])
        .stdout.toString()
        .trim();
      expect(escaped, "the escaped process runs").not.toBe("");
      // Then the gateway dies, and another tenant binds its port at once.
      const port = Number(handle.state.port);
      const attacker = await startAttacker({ from: port, to: port + 1 }, port);
      await driver.stop(handle, { graceful: false });
      // Nothing of the uid runs any more (exited children may linger as zombies until reaped).
      const running = spawnSync("ps", ["-o", "pid=,stat=,comm=", "-u", String(uid)])
        .stdout.toString()
        .split("\n")
        .filter((l) => l.trim() && !/^\s*\d+\s+Z/.test(l));
      expect(running).toEqual([]);
      expect(cg.dirs.some((d) => existsSync(d))).toBe(false);
      for (let i = 0; i < 100 && !attacker.seen().some((s) => s.bound); i++) await sleep(50);
      expect(attacker.seen().some((s) => s.bound)).toBe(true);
      // Reef must not connect to what now listens there.
      await expect(driver.verify(handle)).rejects.toBeInstanceOf(GatewayIntegrityError);
      expect((await driver.poll(handle)).status).toBe("exited");
      attacker.stop();
      expect(attacker.seen().filter((s) => s.url)).toEqual([]);
    }, 60_000);
  });
});
