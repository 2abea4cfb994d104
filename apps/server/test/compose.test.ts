/**
 * deploy/compose.yaml as an operator runs it: docker-compose starts Postgres and
 * Reef's image (docker driver, the Docker socket mounted, read-only root, no
 * capabilities). The first account signs up over HTTP, the operator allows a
 * provider on the host (the LLM stand-in, reached from Reef's container as
 * host.docker.internal), an agent is created and a chat message answered: by a
 * gateway container Reef started through the socket, which calls its model
 * through Reef's LLM proxy at http://reef:7420 (no vendor key in the gateway).
 *
 * No registry is reachable where the suite runs, so Postgres is a stand-in image
 * built once from fixtures/compose-postgres (tagged by the hash of its files).
 * Skips, saying why, without an engine, docker-compose or the local images.
 */
import { execFile, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import {
  type ApiClient,
  addAgent,
  addStandInProvider,
  chatOnce,
  expectStatus,
  freePort,
  type HttpClient,
  httpClient,
  type LlmStandIn,
  startLlmStandIn,
} from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../../..");
const COMPOSE_FILE = join(ROOT, "deploy", "compose.yaml");
const PG_FIXTURE = join(import.meta.dirname, "fixtures", "compose-postgres");
const BASE_IMAGE = "reef-base:bookworm";
/** The Reef image under test: what build-images.sh tags, unless the environment names another. */
const REEF_IMAGE = process.env.REEF_COMPOSE_TEST_IMAGE ?? "reef:latest";
const OPENCLAW_VERSION: string = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")).packages[
  "node_modules/openclaw"
].version;
const GATEWAY_IMAGE = `reef-gateway:${OPENCLAW_VERSION}`;
/** The Postgres stand-in's tag: a change to its files builds a new one, re-runs reuse it. */
const PG_IMAGE = `reef-test-postgres:${createHash("sha256")
  .update(readFileSync(join(PG_FIXTURE, "Dockerfile")))
  .update(readFileSync(join(PG_FIXTURE, "entrypoint.sh")))
  .digest("hex")
  .slice(0, 12)}`;
const LLM_KEY = `sk-compose-${randomBytes(8).toString("hex")}`;

function quietly(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 20_000 });
  return { ok: r.status === 0, out: (r.stdout ?? "").trim() };
}

const hasImage = (image: string) => quietly("docker", ["image", "inspect", image]).ok;

/**
 * Where containers reach this host: what `host-gateway` (compose.yaml's
 * host.docker.internal) stands for, as the engine itself resolves it.
 */
function hostGateway(): string {
  const r = quietly("docker", [
    ...["run", "--rm", "--network", "none", "--add-host", "probe:host-gateway"],
    ...["--entrypoint", "getent", REEF_IMAGE, "hosts", "probe"],
  ]);
  return r.ok ? (r.out.split(/\s+/)[0] ?? "") : "";
}

let hostGatewayIp = "";

function whyNot(): string | undefined {
  if (!quietly("docker", ["version", "--format", "{{.Server.Version}}"]).ok) return "no Docker engine answers";
  if (!quietly("docker-compose", ["version", "--short"]).ok) return "docker-compose is not installed";
  for (const image of [REEF_IMAGE, GATEWAY_IMAGE]) {
    if (!hasImage(image)) return `image ${image} is missing (build it with deploy/docker/build-images.sh)`;
  }
  hostGatewayIp = hostGateway();
  if (!hostGatewayIp) return "the engine resolves no host-gateway address";
  if (!hasImage(PG_IMAGE) && !hasImage(BASE_IMAGE))
    return `image ${BASE_IMAGE} (the Postgres stand-in's base) is missing`;
  return undefined;
}

const skipReason = whyNot();
if (skipReason) console.warn(`compose test skipped: ${skipReason}`);

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

describe.skipIf(skipReason !== undefined)("deploy/compose.yaml", () => {
  const id = randomBytes(4).toString("hex");
  const project = `reefcompose${id}`;
  const reefContainer = `reef-compose-${id}`;
  let dir = "";
  let port = 0;
  let llm: LlmStandIn | undefined;
  /** Workspaces whose gateway objects Reef may have made, removed at the end. */
  const workspaces: string[] = [];
  let env: NodeJS.ProcessEnv = {};

  const compose = (args: string[], timeout = 120_000) =>
    exec("docker-compose", ["--env-file", join(dir, "empty.env"), "-p", project, "-f", COMPOSE_FILE, ...args], {
      env,
      timeout,
      maxBuffer: 16 * 1024 * 1024,
    });

  async function reefLogs(): Promise<string> {
    const logs = await compose(["logs", "--no-color", "--tail", "60"]).catch((err: { stdout?: string }) => err);
    return String(logs.stdout ?? "");
  }

  beforeAll(async () => {
    if (!hasImage(PG_IMAGE)) {
      const started = performance.now();
      await exec("docker", ["build", "-q", "--build-arg", `BASE=${BASE_IMAGE}`, "-t", PG_IMAGE, PG_FIXTURE], {
        timeout: 15 * 60_000,
      });
      console.info(`built ${PG_IMAGE} in ${seconds(started)}`);
    }
    dir = await mkdtemp(join(tmpdir(), "reef-compose-"));
    // Compose reads deploy/.env by default: an operator's own must not leak into the test.
    await writeFile(join(dir, "empty.env"), "");
    llm = await startLlmStandIn({ apiKey: LLM_KEY, host: hostGatewayIp });
    port = await freePort();
    const docker = spawnSync("stat", ["-c", "%g", "/var/run/docker.sock"], { encoding: "utf8" });
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
      REEF_SECRET_KEY: randomBytes(32).toString("base64"),
      POSTGRES_PASSWORD: randomBytes(24).toString("hex"),
      DOCKER_GID: docker.stdout.trim(),
      REEF_PORT: String(port),
      REEF_PUBLIC_URL: `http://127.0.0.1:${port}`,
      REEF_CONTAINER_NAME: reefContainer,
      REEF_IMAGE,
      REEF_GATEWAY_IMAGE: GATEWAY_IMAGE,
      REEF_POSTGRES_IMAGE: PG_IMAGE,
    };
    const started = performance.now();
    await compose(["up", "-d"], 240_000);
    const deadline = Date.now() + 180_000;
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`Reef was not ready within 180 s:\n${await reefLogs()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    console.info(`docker-compose up to /readyz: ${seconds(started)}`);
  }, 20 * 60_000);

  afterAll(async () => {
    if (env.REEF_SECRET_KEY) {
      await compose(["down", "-v", "--remove-orphans", "--timeout", "5"]).catch((err: Error) =>
        console.warn(`docker-compose down failed: ${err.message}`),
      );
    }
    // Gateway containers outlive Reef by design; these are the ones this test's Reef made.
    for (const wid of workspaces) {
      const filters = ["--filter", "label=dev.reef.managed=true", "--filter", `label=dev.reef.workspace=${wid}`];
      for (const [kind, list, remove] of [
        ["container", ["ps", "-aq"], ["rm", "-f"]],
        ["network", ["network", "ls", "-q"], ["network", "rm"]],
        ["volume", ["volume", "ls", "-q"], ["volume", "rm", "-f"]],
      ] as const) {
        const ids = quietly("docker", [...list, ...filters])
          .out.split("\n")
          .filter(Boolean);
        if (ids.length && !quietly("docker", [...remove, ...ids]).ok) console.warn(`could not remove ${kind} ${ids}`);
      }
    }
    await llm?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it("runs hardened, signs the first account up, and answers a chat through a gateway container", async () => {
    const stand = llm;
    if (!stand) throw new Error("no stand-in");
    try {
      // What the operator relies on from the file: Reef unprivileged and locked down.
      const inspect = JSON.parse(quietly("docker", ["inspect", reefContainer]).out)[0];
      expect(inspect.Config.User).toBe("10000:10000");
      expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
      expect(inspect.HostConfig.CapDrop).toEqual(["ALL"]);
      expect(inspect.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
      expect(inspect.HostConfig.PortBindings["7420/tcp"]).toEqual([{ HostIp: "127.0.0.1", HostPort: String(port) }]);

      const base = `http://127.0.0.1:${port}`;
      const signup = await fetch(`${base}/api/v1/auth/signup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "operator@example.test", password: "correct horse battery", name: "Operator" }),
      });
      expect(signup.status, await signup.clone().text()).toBe(201);
      const body = (await signup.json()) as { user: { platformRole: string }; workspace: { id: string } };
      expect(body.user.platformRole).toBe("super_admin");
      const wid = body.workspace.id;
      workspaces.push(wid);
      const cookies = new Map<string, string>();
      for (const c of signup.headers.getSetCookie()) {
        const pair = c.split(";")[0] ?? "";
        const at = pair.indexOf("=");
        if (at > 0) cookies.set(pair.slice(0, at), pair.slice(at + 1));
      }
      // httpClient reads only the cookie jar of the client it is given.
      const owner: HttpClient = httpClient(base, { cookies } as unknown as ApiClient);

      // The stand-in is on a private address: only the operator's allow-list lets a provider use it.
      const llmPort = new URL(stand.baseUrl).port;
      await expectStatus(
        owner,
        "PATCH",
        "/api/v1/admin/settings",
        { providerAllowedHosts: [`host.docker.internal:${llmPort}`] },
        200,
      );
      const providerId = await addStandInProvider(
        owner,
        wid,
        { baseUrl: `http://host.docker.internal:${llmPort}/v1` },
        LLM_KEY,
      );
      const agentId = await addAgent(owner, wid, { name: "Ada", providerId, model: "stand-in-model" });

      const asked = performance.now();
      const { answer } = await chatOnce(owner, wid, agentId, "Hello from compose");
      console.info(`first answer (gateway container cold start included): ${seconds(asked)}`);
      expect(answer).toBe("Stand-in reply to: Hello from compose");
      // Reef's proxy called the vendor with the workspace's key; the gateway never held it.
      const chats = stand.requests.filter((r) => r.path.endsWith("/chat/completions"));
      expect(chats.length).toBeGreaterThan(0);
      expect(chats.every((r) => r.authorization === `Bearer ${LLM_KEY}`)).toBe(true);

      // One gateway container for the workspace, reachable from Reef's network only: no published port.
      const gateways = quietly("docker", [
        "ps",
        "--filter",
        `label=dev.reef.workspace=${wid}`,
        "--format",
        "{{.Image}}|{{.Ports}}",
      ]).out.split("\n");
      expect(gateways).toHaveLength(1);
      expect(gateways[0]).toMatch(new RegExp(`^${GATEWAY_IMAGE.replace(/\./g, "\\.")}\\|`));
      expect(gateways[0]).not.toContain("->");
    } catch (err) {
      console.warn(`compose logs:\n${await reefLogs()}`);
      throw err;
    }
  }, 240_000);
});
