import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { request } from "node:http";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { ParsedConfig } from "@reef/config";
import { resolvePostgresBinaries } from "@reef/db";
import { openclawEntry, probeSandbox, SANDBOX_FIX } from "@reef/runtime";
import { othersCanEnter } from "@reef/server";
import pg from "pg";

const run = promisify(execFile);

export type CheckStatus = "ok" | "warn" | "fail";

/** One line of `reef doctor`: what was checked, the verdict, and what to do about it. */
export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  message: string;
  /** A concrete action, on every warn and fail. */
  fix?: string;
}

/** The settings the checks read: parsed by the config loader, nothing created (no key generated). */
export type DoctorConfig = ParsedConfig;

const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
/** OpenClaw's floor when its package.json cannot be read. */
const OPENCLAW_NODE_FALLBACK = ">=24.16.0";
export const GIB = 1024 ** 3;
export const MIB = 1024 ** 2;

export const ok = (id: string, title: string, message: string): CheckResult => ({ id, title, status: "ok", message });
export const bad = (id: string, title: string, status: "warn" | "fail", message: string, fix: string): CheckResult => ({
  id,
  title,
  status,
  message,
  fix,
});

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function findTool(name: string): string | undefined {
  for (const dir of ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

function versionParts(v: string): number[] {
  return v
    .replace(/^v/, "")
    .split(".")
    .map((n) => Number.parseInt(n, 10) || 0);
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/**
 * Whether `version` satisfies an npm `engines` range built from `>=`, `>`, `<`,
 * `<=` and `=` comparators, joined by spaces (and) and `||` (or): enough for
 * OpenClaw's `>=24.16.0 <25 || >=26.1.0` without a semver dependency.
 */
export function satisfiesRange(version: string, range: string): boolean {
  return range.split("||").some((part) =>
    part
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .every((comparator) => {
        const m = /^(>=|<=|>|<|=)?v?(\d+(?:\.\d+){0,2})$/.exec(comparator);
        if (!m) return false;
        const c = compareVersions(version, m[2] as string);
        switch (m[1]) {
          case ">=":
            return c >= 0;
          case ">":
            return c > 0;
          case "<":
            return c < 0;
          case "<=":
            return c <= 0;
          default:
            return c === 0;
        }
      }),
  );
}

function openclawNodeRange(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(openclawEntry()), "package.json"), "utf8")) as {
      engines?: { node?: string };
    };
    return pkg.engines?.node ?? OPENCLAW_NODE_FALLBACK;
  } catch {
    return OPENCLAW_NODE_FALLBACK;
  }
}

/** The Node the project runs on (`node_modules/.bin/node`, which every npm script uses) against OpenClaw's engines. */
export async function checkNode(): Promise<CheckResult> {
  const title = "node";
  const range = openclawNodeRange();
  const projectNode = join(REPO_ROOT, "node_modules", ".bin", "node");
  const node = existsSync(projectNode) ? projectNode : process.execPath;
  let version: string;
  try {
    version = (await run(node, ["--version"], { timeout: 15_000 })).stdout.trim();
  } catch (err) {
    return bad("node", title, "fail", `${node} does not run: ${errorText(err)}`, "reinstall with npm ci");
  }
  if (!satisfiesRange(version, range)) {
    return bad(
      "node",
      title,
      "fail",
      `Node ${version} at ${node}; OpenClaw needs ${range}`,
      "run npm ci in the project: it installs Node 24 into node_modules/.bin/node, which npm start uses",
    );
  }
  if (node !== projectNode) {
    return bad(
      "node",
      title,
      "warn",
      `no node_modules/.bin/node: Reef runs on ${node} (${version})`,
      "run npm ci in the project to get the Node 24 it is tested with",
    );
  }
  return ok("node", title, `Node ${version} at ${node} (OpenClaw needs ${range})`);
}

async function osUser(name: string): Promise<{ name: string; uid: number; gid: number } | undefined> {
  try {
    const id = findTool("id") ?? "id";
    const uid = Number((await run(id, ["-u", name])).stdout.trim());
    const gid = Number((await run(id, ["-g", name])).stdout.trim());
    return { name, uid, gid };
  } catch {
    return undefined;
  }
}

function maskedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/** DATABASE_URL reachable (and its version), or the embedded binaries present and runnable by their OS user. */
export async function checkPostgres(config: DoctorConfig, asRoot: boolean): Promise<CheckResult> {
  const title = "postgres";
  if (config.databaseUrl) {
    const client = new pg.Client({ connectionString: config.databaseUrl, connectionTimeoutMillis: 5_000 });
    client.on("error", () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ version: string }>("select current_setting('server_version') as version");
      return ok(
        "postgres",
        title,
        `DATABASE_URL ${maskedUrl(config.databaseUrl)} answers: PostgreSQL ${rows[0]?.version}`,
      );
    } catch (err) {
      return bad(
        "postgres",
        title,
        "fail",
        `cannot use DATABASE_URL ${maskedUrl(config.databaseUrl)}: ${errorText(err)}`,
        "start that server or correct DATABASE_URL (host, port, user, password, database); unset it to use the embedded Postgres",
      );
    } finally {
      await client.end().catch(() => {});
    }
  }
  let bins: Awaited<ReturnType<typeof resolvePostgresBinaries>>;
  try {
    bins = await resolvePostgresBinaries();
  } catch (err) {
    return bad(
      "postgres",
      title,
      "fail",
      errorText(err),
      "run npm ci (it installs the embedded Postgres), or set DATABASE_URL to an existing server",
    );
  }
  let version: string;
  try {
    version = (await run(bins.postgres, ["--version"], { timeout: 15_000 })).stdout.trim();
  } catch (err) {
    return bad(
      "postgres",
      title,
      "fail",
      `${bins.postgres} does not run: ${errorText(err)}`,
      "reinstall with npm ci, or set DATABASE_URL to an existing server",
    );
  }
  if (!asRoot) return ok("postgres", title, `embedded ${version} (${bins.postgres})`);
  // As root the server runs as OS user postgres (start creates it); "nobody" stands in until then.
  const user = (await osUser("postgres")) ?? { ...((await osUser("nobody")) ?? { uid: 65534, gid: 65534 }), name: "" };
  const as = user.name ? `OS user ${user.name}` : "nobody (OS user postgres does not exist yet: start creates it)";
  if (!(await othersCanEnter(dirname(bins.postgres)))) {
    return ok(
      "postgres",
      title,
      `embedded ${version}; its OS user cannot enter the install here, so start runs it from a hardlinked copy in the service directory`,
    );
  }
  for (const bin of [bins.postgres, bins.initdb]) {
    try {
      await run(bin, ["--version"], { uid: user.uid, gid: user.gid, cwd: "/", env: { PATH: "/usr/bin:/bin" } });
    } catch (err) {
      return bad(
        "postgres",
        title,
        "fail",
        `${version} is installed, but ${as} cannot run ${bin}: ${errorText(err)}`,
        `let other users read the install: chmod -R o+rX ${dirname(dirname(bin))}`,
      );
    }
  }
  return ok("postgres", title, `embedded ${version}, runs as ${as}`);
}

/** bubblewrap present and able to create every namespace a gateway's sandbox uses. */
export function checkBubblewrap(config: DoctorConfig): CheckResult {
  const title = "bubblewrap";
  const probe = probeSandbox({ fresh: true });
  if (probe.available) {
    return ok("bubblewrap", title, `${probe.bwrap} creates the sandbox's mount, PID, IPC and network namespaces`);
  }
  const required = config.sandbox === "required";
  return bad(
    "bubblewrap",
    title,
    required ? "fail" : "warn",
    `${probe.reason}: ${required ? "REEF_SANDBOX=required, so Reef will not start" : "gateways run unsandboxed and agents get no shell or file tools"}`,
    SANDBOX_FIX,
  );
}

/** socat bridges every gateway to Reef's outbound socket, sandboxed or not. */
export function checkSocat(): CheckResult {
  const socat = findTool("socat");
  if (!socat) {
    return bad(
      "socat",
      "socat",
      "fail",
      "socat is not installed: gateways cannot reach their models or the web through Reef",
      "apt-get install socat",
    );
  }
  if (!socat.startsWith("/usr/")) {
    return bad(
      "socat",
      "socat",
      "warn",
      `socat is at ${socat}, outside /usr, where a sandbox cannot run it`,
      "install it from the distribution (apt-get install socat)",
    );
  }
  return ok("socat", "socat", socat);
}

/** Whether gateways get OS users of their own (root) or share Reef's. */
export function checkGatewayUsers(asRoot: boolean, sandboxed: boolean): CheckResult {
  const title = "gateway users";
  if (asRoot) {
    const missing = ["useradd", "groupadd"].filter((t) => !findTool(t));
    if (missing.length) {
      return bad(
        "gateway-users",
        title,
        "fail",
        `${missing.join(" and ")} not found: Reef cannot create each workspace's OS user, so gateways cannot start`,
        "apt-get install passwd",
      );
    }
    return ok("gateway-users", title, "each workspace's gateway runs as an OS user of its own");
  }
  const uid = process.getuid?.() ?? -1;
  if (sandboxed) {
    return ok(
      "gateway-users",
      title,
      `Reef is not root: gateways share its OS user (uid ${uid}); the bubblewrap sandbox still applies`,
    );
  }
  return bad(
    "gateway-users",
    title,
    "warn",
    `Reef is not root: gateways share its OS user (uid ${uid}) and are not sandboxed`,
    `${SANDBOX_FIX}; as root each gateway also gets an OS user of its own`,
  );
}

function dockerGet(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "GET", timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("no answer in 5 s")));
    req.on("error", reject);
    req.end();
  });
}

/** The Docker Engine's socket reachable, its API version, and the gateway image present. */
export async function checkDocker(config: DoctorConfig): Promise<CheckResult> {
  const title = "docker";
  const socket = config.dockerSocket;
  const info = await stat(socket).catch(() => undefined);
  if (!info) {
    return bad(
      "docker",
      title,
      "fail",
      `no Docker socket at ${socket}`,
      "start the Docker engine (systemctl start docker), or set REEF_DOCKER_SOCKET to its socket",
    );
  }
  if (!info.isSocket()) {
    return bad("docker", title, "fail", `${socket} is not a socket`, "set REEF_DOCKER_SOCKET to the engine's socket");
  }
  let version: { Version?: string; ApiVersion?: string };
  try {
    const res = await dockerGet(socket, "/version");
    if (res.status !== 200) throw new Error(`GET /version answered ${res.status}`);
    version = JSON.parse(res.body);
  } catch (err) {
    const denied = (err as NodeJS.ErrnoException).code === "EACCES";
    return bad(
      "docker",
      title,
      "fail",
      `cannot talk to Docker at ${socket}: ${errorText(err)}`,
      denied
        ? "add the user Reef runs as to the socket's group (usermod -aG docker USER), or run Reef as root"
        : "start the Docker engine (systemctl start docker)",
    );
  }
  const engine = `Docker ${version.Version ?? "?"} (API ${version.ApiVersion ?? "?"})`;
  const image = await dockerGet(socket, `/images/${config.runtimeImage}/json`).catch(
    (err: Error) => ({ status: 0, body: err.message }) as const,
  );
  if (image.status !== 200) {
    return bad(
      "docker",
      title,
      "fail",
      `${engine} answers, but the gateway image ${config.runtimeImage} is not there${image.status === 404 ? "" : ` (${image.status || image.body})`}`,
      `docker pull ${config.runtimeImage} (or build and tag it; REEF_RUNTIME_IMAGE names another)`,
    );
  }
  return ok("docker", title, `${engine} at ${socket}; gateway image ${config.runtimeImage} present`);
}

/** Containers and pods reach Reef's LLM proxy only through REEF_RUNTIME_CALLBACK_URL. */
export function checkCallbackUrl(config: DoctorConfig): CheckResult {
  if (config.runtimeCallbackUrl) return ok("callback-url", "callback url", config.runtimeCallbackUrl);
  return bad(
    "callback-url",
    "callback url",
    "warn",
    `REEF_RUNTIME_CALLBACK_URL is unset: gateways in ${config.runtimeDriver === "docker" ? "containers" : "pods"} cannot call their models through Reef`,
    "set REEF_RUNTIME_CALLBACK_URL to where they reach this Reef (e.g. http://172.17.0.1:7420 for Docker's default bridge)",
  );
}

function tryListen(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** The version of the Reef answering at host:port, if it is one. */
async function reefAt(host: string, port: number): Promise<string | undefined> {
  const target = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host;
  try {
    const res = await fetch(`http://${target}:${port}/healthz`, { signal: AbortSignal.timeout(3_000) });
    const body = (await res.json()) as { status?: string; version?: string };
    return res.ok && body.status === "ok" && typeof body.version === "string" && res.headers.has("x-request-id")
      ? body.version
      : undefined;
  } catch {
    return undefined;
  }
}

/** The configured port free, or held by a Reef already (a doctor run next to a running Reef). */
export async function checkPort(config: DoctorConfig): Promise<CheckResult> {
  const title = "port";
  const where = `${config.host}:${config.port}`;
  if (config.port === 0) return ok("port", title, "REEF_PORT=0: each start picks a free port");
  const err = await tryListen(config.host, config.port);
  if (!err) return ok("port", title, `${where} is free`);
  if (err.code === "EADDRINUSE") {
    const version = await reefAt(config.host, config.port);
    if (version) return ok("port", title, `${where} is in use by a running Reef ${version}`);
    return bad(
      "port",
      title,
      "fail",
      `${where} is in use by another program`,
      `stop it (ss -ltnp 'sport = :${config.port}' names it) or set REEF_PORT to a free port`,
    );
  }
  if (err.code === "EACCES") {
    return bad(
      "port",
      title,
      "fail",
      `binding port ${config.port} needs privileges this user lacks`,
      "set REEF_PORT to 1024 or above (put a reverse proxy on 80/443)",
    );
  }
  if (err.code === "EADDRNOTAVAIL") {
    return bad(
      "port",
      title,
      "fail",
      `REEF_HOST ${config.host} is not an address of this machine`,
      "set REEF_HOST to 127.0.0.1, 0.0.0.0 or one of this machine's addresses",
    );
  }
  return bad("port", title, "fail", `cannot listen on ${where}: ${err.message}`, "set REEF_HOST and REEF_PORT");
}

/** Whether a file system call succeeds (exists, is accessible). */
