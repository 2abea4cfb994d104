import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { type ReefLaunch, runReef, startReef, tempDataDir } from "./reef-process.ts";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));
/** The project's own Node, as `npm start` uses it. */
const NODE = join(REPO, "node_modules", ".bin", "node");
const MAIN = join(REPO, "apps", "cli", "src", "main.ts");
/** Each run loads the whole CLI: a few seconds on an idle machine, far more on a busy one. */
const RUN_TIMEOUT = 120_000;

interface Check {
  id: string;
  title: string;
  status: "ok" | "warn" | "fail";
  message: string;
  fix?: string;
}

async function doctor(args: string[], env: Record<string, string>, launch: ReefLaunch = {}) {
  const p = runReef(["doctor", ...args], env, { node: NODE, ...launch });
  const code = await p.exited;
  return { code, output: p.output() };
}

function checksOf(output: string): Record<string, Check> {
  const report = JSON.parse(output) as { ok: boolean; checks: Check[] };
  return Object.fromEntries(report.checks.map((c) => [c.id, c]));
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** The text report's line for a check, and the fix line under it. */
function lineOf(output: string, title: string): { verdict: string; fix: string } {
  const lines = output.split("\n");
  const i = lines.findIndex((l) => new RegExp(`^  (ok|warn|fail)\\s+${title}  `).test(l));
  expect(i, `no "${title}" line in:\n${output}`).toBeGreaterThanOrEqual(0);
  const next = lines[i + 1] ?? "";
  return { verdict: lines[i] as string, fix: /^\s+fix: /.test(next) ? next.trim() : "" };
}

describe("reef doctor", () => {
  it(
    "passes on this machine, one verdict per check, and creates nothing",
    async () => {
      const dataDir = await tempDataDir();
      const res = await doctor(["--json"], { REEF_DATA_DIR: dataDir, REEF_PORT: String(await closedPort()) });
      expect(res.code, res.output).toBe(0);
      const checks = checksOf(res.output);
      for (const id of ["config", "node", "postgres", "bubblewrap", "socat", "gateway-users", "port", "disk"]) {
        expect(checks[id]?.status, `${id}: ${JSON.stringify(checks[id])}`).toBe("ok");
      }
      expect(checks.node?.message).toMatch(/Node v(2[4-9]|[3-9]\d)\.\d+\.\d+ at .*node_modules\/\.bin\/node/);
      expect(checks.postgres?.message).toMatch(/embedded postgres \(PostgreSQL\) \d+/);
      expect(checks.port?.message).toMatch(/is free$/);
      expect(checks["data-dir"]?.status).toBe("ok");
      expect(checks["secret-key"]?.message).toContain("none yet");
      if (process.getuid?.() === 0) {
        expect(checks.postgres?.message).toMatch(/runs as (OS user postgres|nobody)/);
        expect(checks["service-dir"]?.status).toBe("ok");
      }
      // Unlike `reef start`, the doctor generates no key and makes no directory.
      expect(await readdir(dataDir)).toEqual([]);
      for (const c of Object.values(checks)) expect(c.fix, c.id).toBeUndefined();
    },
    RUN_TIMEOUT,
  );

  it(
    "reports an external DATABASE_URL's server version",
    async () => {
      const pg = inject("reefPostgres");
      const url = `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/postgres`;
      const res = await doctor(["--json"], { REEF_DATA_DIR: await tempDataDir(), REEF_PORT: "0", DATABASE_URL: url });
      expect(res.code, res.output).toBe(0);
      expect(checksOf(res.output).postgres?.message).toMatch(/answers: PostgreSQL \d+\.\d+/);
      expect(res.output).not.toContain(pg.password);
    },
    RUN_TIMEOUT,
  );

  it(
    "fails a broken setup, naming the fix for each problem",
    async () => {
      const dataDir = await tempDataDir();
      await chmod(dataDir, 0o777);
      const keyPath = join(dataDir, "secret.key");
      await writeFile(keyPath, `${randomBytes(32).toString("base64")}\n`);
      await chmod(keyPath, 0o644);
      // Something else on Reef's port: a web server, but not Reef.
      const other: Server = createHttpServer((_req, res) => res.writeHead(404).end("not reef"));
      await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
      const port = (other.address() as { port: number }).port;
      const dbPassword = "doctor-db-password-canary";
      try {
        const res = await doctor([], {
          REEF_DATA_DIR: dataDir,
          REEF_HOST: "127.0.0.1",
          REEF_PORT: String(port),
          REEF_RUNTIME_DRIVER: "docker",
          REEF_DOCKER_SOCKET: join(dataDir, "no-such-docker.sock"),
          DATABASE_URL: `postgres://reef:${dbPassword}@127.0.0.1:${await closedPort()}/reef`,
        });
        expect(res.code, res.output).toBe(1);

        const secret = lineOf(res.output, "secret key");
        expect(secret.verdict).toMatch(/^ {2}fail .*secret\.key has mode 0644/);
        expect(secret.fix).toBe(`fix: chmod 600 ${keyPath}`);

        const dir = lineOf(res.output, "data dir");
        expect(dir.verdict).toMatch(/^ {2}fail .*world-writable \(mode 0777\)/);
        expect(dir.fix).toBe(`fix: chmod o-w ${dataDir}`);

        const taken = lineOf(res.output, "port");
        expect(taken.verdict).toMatch(new RegExp(`^ {2}fail .*127\\.0\\.0\\.1:${port} is in use by another program`));
        expect(taken.fix).toMatch(/set REEF_PORT to a free port/);

        const docker = lineOf(res.output, "docker");
        expect(docker.verdict).toMatch(/^ {2}fail .*no Docker socket at .*no-such-docker\.sock/);
        expect(docker.fix).toMatch(/REEF_DOCKER_SOCKET/);

        const postgres = lineOf(res.output, "postgres");
        expect(postgres.verdict).toMatch(/^ {2}fail .*cannot use DATABASE_URL postgres:\/\/reef:\*\*\*@/);
        expect(postgres.fix).toMatch(/correct DATABASE_URL/);
        expect(res.output).not.toContain(dbPassword);

        // The process driver's checks do not apply to the docker driver; its callback URL does.
        expect(res.output).not.toMatch(/^ {2}\w+\s+bubblewrap/m);
        expect(lineOf(res.output, "callback url").verdict).toMatch(/^ {2}warn /);
        expect(res.output).toMatch(/\n5 to fix, 1 warning\.\n$/);
      } finally {
        await new Promise((r) => other.close(r));
      }
    },
    RUN_TIMEOUT,
  );

  it(
    "stops at a bad setting with the setting's name",
    async () => {
      const res = await doctor(["--json"], { REEF_DATA_DIR: await tempDataDir(), REEF_PORT: "seventy" });
      expect(res.code).toBe(1);
      const config = checksOf(res.output).config;
      expect(config?.status).toBe("fail");
      expect(config?.message).toMatch(/REEF_PORT: .*number/i);
    },
    RUN_TIMEOUT,
  );
});

const NOBODY = 65534;
const AS_NOBODY = ["/usr/bin/setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];
const asRoot = process.platform === "linux" && process.getuid?.() === 0;
/** Why the ordinary-user test cannot run here, if it cannot. */
const cannotRunAsNobody = !asRoot
  ? "not root, so it cannot start Reef as another user"
  : spawnSync(AS_NOBODY[0] as string, [
        ...AS_NOBODY.slice(1),
        NODE,
        "-e",
        "require('fs').readFileSync(process.argv[1])",
        MAIN,
      ]).status !== 0
    ? `uid ${NOBODY} cannot read ${MAIN} or run ${NODE} (the checkout must be readable by other users)`
    : undefined;
if (cannotRunAsNobody) console.warn(`skipping "reef as an ordinary user": ${cannotRunAsNobody}`);

describe.skipIf(cannotRunAsNobody !== undefined)("reef as an ordinary user", () => {
  it("starts as nobody with an unwritable HOME, is ready, and says gateways share its OS user", async () => {
    const home = await mkdtemp(join(tmpdir(), "reef-nobody-"));
    await chown(home, NOBODY, NOBODY);
    const env = { PATH: "/usr/bin:/bin", HOME: "/nonexistent", REEF_DATA_DIR: join(home, "data") };
    const launch = { node: NODE, wrapper: AS_NOBODY };
    try {
      const reef = await startReef(env, 120_000, launch);
      try {
        expect((await stat(`/proc/${reef.child.pid}`)).uid).toBe(NOBODY);
        expect((await fetch(`${reef.url}/readyz`)).status).toBe(200);
        const messages = reef
          .output()
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => (JSON.parse(l) as { msg: string }).msg);
        const sandboxed = messages.some((m) => m.startsWith("gateways run sandboxed"));
        expect(messages).toContain(
          `Reef is not running as root: gateways share Reef's OS user (uid ${NOBODY}) instead of one OS user per workspace; ${sandboxed ? "the bubblewrap sandbox still applies" : "they are not sandboxed either"}`,
        );
        const key = await stat(join(env.REEF_DATA_DIR, "secret.key"));
        expect([key.uid, key.mode & 0o777]).toEqual([NOBODY, 0o600]);

        // The same user's doctor, next to the running Reef: its port is Reef's, not a conflict.
        const res = await doctor(["--json"], { ...env, REEF_PORT: new URL(reef.url).port }, launch);
        expect(res.code, res.output).toBe(0);
        const checks = checksOf(res.output);
        expect(checks.port?.message).toMatch(/in use by a running Reef \d+\.\d+\.\d+$/);
        expect(checks["gateway-users"]?.message).toContain(`gateways share its OS user (uid ${NOBODY})`);
        expect(checks["secret-key"]?.status).toBe("ok");
        expect(checks["service-dir"]).toBeUndefined();
      } finally {
        reef.child.kill("SIGINT");
        expect(await reef.exited, reef.output().slice(-2000)).toBe(0);
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 240_000);
});
