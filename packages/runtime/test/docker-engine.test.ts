/**
 * The docker driver against a real Docker Engine and the real gateway image:
 * the driver conformance suite, the hardened profile as the engine applied it,
 * a volume the image does not prepare, a chat turn through the containerised
 * gateway, a restart that keeps the workspace's state, a gateway killed by its
 * memory limit, and one workspace's container unable to reach another's
 * gateway. Skips (saying why) where no engine answers or the image is missing:
 * `.ci/docker-engine.sh` provides both.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server, connect as tcpConnect } from "node:net";
import { promisify } from "node:util";
import { type LlmStandIn, startLlmStandIn } from "@reef/testing/llm";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { objectName } from "../src/container-profile.ts";
import { DockerDriver } from "../src/docker/docker-driver.ts";
import type { JsonObject, RuntimeSpec } from "../src/driver.ts";
import { closeGatewayChannels } from "../src/gateway-channel.ts";
import { streamGatewayTurn } from "../src/gateway-ws-chat.ts";
import type { GatewaySettings } from "../src/openclaw-config.ts";
import { describeDriverConformance } from "./driver-conformance.ts";

const run = promisify(execFile);
const IMAGE = process.env.REEF_TEST_GATEWAY_IMAGE ?? "reef-gateway:2026.9.6";
const docker = new Docker({ socketPath: "/var/run/docker.sock" });
/** Generous: a gateway takes 10-15 s to start in a container on an idle machine, far longer on a busy one. */
const START_MS = 240_000;

async function whyNot(): Promise<string | undefined> {
  try {
    await docker.ping();
  } catch (err) {
    return `no Docker engine answers on /var/run/docker.sock (${(err as Error).message})`;
  }
  try {
    await docker.getImage(IMAGE).inspect();
  } catch {
    return `the gateway image ${IMAGE} is missing (deploy/docker/build-images.sh builds it)`;
  }
  try {
    await run("docker", ["version", "--format", "{{.Client.Version}}"]);
  } catch {
    return "the docker CLI is missing";
  }
  return undefined;
}
const skipReason = await whyNot();
if (skipReason) console.warn(`docker-engine tests skipped: ${skipReason}`);

/** What of a workspace's runtime the engine still holds: containers, networks and volumes, by label or name. */
async function leftovers(workspaceId: string): Promise<string[]> {
  const name = objectName(workspaceId);
  const label = { label: [`dev.reef.workspace=${workspaceId}`] };
  const named = { name: [name] };
  const found = new Set<string>();
  for (const filters of [label, named]) {
    for (const c of await docker.listContainers({ all: true, filters })) found.add(`container ${c.Names[0]}`);
    for (const n of await docker.listNetworks({ filters })) found.add(`network ${n.Name}`);
    for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) found.add(`volume ${v.Name}`);
  }
  return [...found];
}

describe.skipIf(skipReason !== undefined)("docker driver conformance on a real engine", () => {
  describeDriverConformance("docker (real engine)", {
    makeDriver: () => new DockerDriver({ image: IMAGE, readyTimeoutMs: START_MS }),
    settings: () => ({
      providers: [
        {
          id: "p",
          baseUrl: "https://llm.invalid/v1",
          apiKey: "sk-unused",
          api: "openai-completions",
          models: [{ id: "m" }],
        },
      ],
      agents: [{ id: "main", name: "Main", model: "p/m" }],
    }),
    servesHttp: true,
    timeoutMs: START_MS,
    leftovers,
  });
});

describe.skipIf(skipReason !== undefined)("docker driver on a real engine", () => {
  const KEY = `sk-canary-${randomBytes(8).toString("hex")}`;
  /** An image like the gateway's but whose /state is root's: the driver must not rely on the image. */
  const ROOT_STATE_IMAGE = `reef-test-root-state:${process.pid}`;
  const MEMORY_MB = 1024;
  let llm: LlmStandIn;
  let relay: Server;
  let relayPort = 0;
  let driver: DockerDriver;
  const starts: number[] = [];
  type Runtime = { spec: RuntimeSpec; state: JsonObject; endpoint: URL; name: string };
  let a: Runtime;
  let b: Runtime;

  const settings = (): GatewaySettings => ({
    providers: [
      {
        id: "standin",
        // The LLM stand-in on the host, as a Reef on the host is reached (REEF_RUNTIME_CALLBACK_URL).
        baseUrl: `http://host.docker.internal:${relayPort}/v1`,
        apiKey: KEY,
        api: "openai-completions",
        models: [{ id: "stand-in-model" }],
      },
    ],
    agents: [{ id: "main", name: "Main", model: "standin/stand-in-model" }],
  });

  async function start(spec: RuntimeSpec): Promise<Runtime> {
    const t0 = Date.now();
    const { endpoint, state } = await driver.start(spec, AbortSignal.timeout(START_MS));
    starts.push(Date.now() - t0);
    return { spec, state, endpoint, name: objectName(spec.workspaceId) };
  }

  /** Runs `node -e script args…` in a container as the gateway user; its stdout, trimmed. */
  async function nodeIn(container: string, script: string, ...args: string[]): Promise<string> {
    const { stdout } = await run("docker", ["exec", "-u", "10001:10001", container, "node", "-e", script, ...args], {
      timeout: 60_000,
    });
    return stdout.trim();
  }

  /** What fetching `url` from inside `container` gets: `status <code>` or `error <why>`. */
  const probe = (container: string, url: string) =>
    nodeIn(
      container,
      `fetch(process.argv[1], { signal: AbortSignal.timeout(4000) }).then(
        (r) => console.log("status " + r.status),
        (e) => console.log("error " + (e.cause?.code ?? e.cause?.name ?? e.name)))`,
      url,
    );

  beforeAll(async () => {
    const dockerfile = `FROM ${IMAGE}\nUSER root\nRUN chown root:root /state && chmod 0755 /state\nUSER 10001:10001\n`;
    await new Promise<void>((resolve, reject) => {
      const build = spawn("docker", ["build", "-q", "-t", ROOT_STATE_IMAGE, "-"], {
        stdio: ["pipe", "ignore", "pipe"],
      });
      let err = "";
      build.stderr.on("data", (c: Buffer) => {
        err += c;
      });
      build.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`docker build failed: ${err}`))));
      build.stdin.end(dockerfile);
    });
    llm = await startLlmStandIn({ apiKey: KEY });
    // Containers reach the host at the default bridge's gateway address (host.docker.internal).
    const bridge = await docker.getNetwork("bridge").inspect();
    const hostIp = bridge.IPAM?.Config?.[0]?.Gateway as string;
    const upstream = Number(new URL(llm.baseUrl).port);
    relay = createServer((socket) => {
      const out = tcpConnect(upstream, "127.0.0.1");
      socket.pipe(out).pipe(socket);
      out.on("error", () => socket.destroy());
      socket.on("error", () => out.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, hostIp, resolve));
    relayPort = (relay.address() as { port: number }).port;
    driver = new DockerDriver({ image: ROOT_STATE_IMAGE, readyTimeoutMs: START_MS });
    const spec = (): RuntimeSpec => ({
      workspaceId: randomUUID(),
      token: randomBytes(24).toString("base64url"),
      gateway: settings(),
      limits: { memoryMb: MEMORY_MB, cpus: 2, pids: 512 },
    });
    // One after the other: two cold starts at once can starve a gateway's start-up checks on a small machine.
    a = await start(spec());
    b = await start(spec());
  }, START_MS * 2);

  afterAll(async () => {
    closeGatewayChannels();
    for (const r of [a, b]) {
      if (r) await driver.destroy({ workspaceId: r.spec.workspaceId, state: {} }).catch((err) => console.warn(err));
    }
    await run("docker", ["rmi", "-f", ROOT_STATE_IMAGE]).catch(() => {});
    await new Promise<void>((resolve) => (relay ? relay.close(() => resolve()) : resolve()));
    await llm?.close();
    console.log(`docker-engine: gateway start times (ms): ${starts.join(", ")}`);
    for (const r of [a, b]) if (r) expect(await leftovers(r.spec.workspaceId)).toEqual([]);
  }, 120_000);

  it("runs the gateway with the hardened profile the engine actually applied, on a volume the image did not prepare", async () => {
    const info = await docker.getContainer(a.name).inspect();
    expect(info.Config.User).toBe("10001:10001");
    expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(info.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.Memory).toBe(MEMORY_MB * 1024 * 1024);
    expect(info.HostConfig.PidsLimit).toBe(512);
    const bindings = Object.values(info.NetworkSettings.Ports ?? {}).flat();
    expect(bindings.length).toBeGreaterThan(0);
    for (const binding of bindings) expect(binding?.HostIp).toBe("127.0.0.1");
    expect(info.Mounts.map((m) => [m.Type, m.Destination])).toEqual([["volume", "/state"]]);
    expect(JSON.stringify(info.Mounts)).not.toContain("docker.sock");
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([a.name]);
    // The gateway process as the kernel sees it: its user, no capabilities, no privilege gain.
    const status = await nodeIn(a.name, `console.log(require("fs").readFileSync("/proc/1/status", "utf8"))`);
    expect(status).toMatch(/^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    const writes = await nodeIn(
      a.name,
      `const fs = require("fs");
       try { fs.writeFileSync("/opt/probe", "x"); console.log("root writable"); } catch (e) { console.log(e.code); }
       const s = fs.statSync("/state");
       console.log(s.uid + " " + (s.mode & 0o777).toString(8));`,
    );
    expect(writes.split("\n")).toEqual(["EROFS", "10001 700"]);
  });

  // Over the WebSocket protocol Reef's chat uses: OpenClaw grants a token-only backend
  // client its operator scopes over loopback alone, so the image's entry point relays the
  // container's port to a gateway listening on the container's loopback.
  it("runs a chat turn through the containerised gateway, as Reef's chat does, to the model it is configured with", async () => {
    const before = llm.requests.length;
    let text = "";
    for await (const ev of streamGatewayTurn({
      endpoint: a.endpoint,
      token: a.spec.token,
      agentId: "main",
      sessionKey: `agent:main:t-${randomUUID()}`,
      text: "hello from a container",
      signal: AbortSignal.timeout(120_000),
    })) {
      if (ev.type === "error") throw new Error(ev.message);
      if (ev.type === "delta") text = ev.replace ? ev.text : text + ev.text;
    }
    expect(text).toBe("Stand-in reply to: hello from a container");
    expect(llm.requests.slice(before).some((r) => r.authorization === `Bearer ${KEY}`)).toBe(true);
  }, 150_000);

  it("one workspace's container cannot reach another's gateway by IP, by name, or through the host", async () => {
    const bInfo = await docker.getContainer(b.name).inspect();
    const bIp = bInfo.NetworkSettings.Networks[b.name]?.IPAddress;
    const bHostPort = new URL(b.endpoint).port;
    expect(bIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // The probe works: A reaches its own gateway and the host.
    expect(await probe(a.name, "http://127.0.0.1:18789/readyz")).toBe("status 200");
    expect(await probe(a.name, `http://host.docker.internal:${relayPort}/v1/models`)).toMatch(/^status \d+$/);
    expect(await probe(a.name, `http://${bIp}:18789/readyz`)).toMatch(/^error /);
    expect(await probe(a.name, `http://${b.name}:18789/readyz`)).toMatch(/^error /);
    expect(await probe(a.name, `http://host.docker.internal:${bHostPort}/readyz`)).toMatch(/^error /);
    // And fails for the defence, not the probe: on one network that lets them talk, the same probes get through.
    const shared = `reef-test-shared-${process.pid}`;
    await docker.createNetwork({
      Name: shared,
      Driver: "bridge",
      Labels: { "dev.reef.managed": "true" },
      Options: { "com.docker.network.bridge.enable_icc": "true" },
    });
    try {
      await docker.getNetwork(shared).connect({ Container: a.name });
      await docker.getNetwork(shared).connect({ Container: b.name });
      const sharedIp = (await docker.getContainer(b.name).inspect()).NetworkSettings.Networks[shared]?.IPAddress;
      expect(await probe(a.name, `http://${b.name}:18789/readyz`)).toBe("status 200");
      expect(await probe(a.name, `http://${sharedIp}:18789/readyz`)).toBe("status 200");
    } finally {
      for (const r of [a, b])
        await docker
          .getNetwork(shared)
          .disconnect({ Container: r.name, Force: true })
          .catch(() => {});
      await docker.getNetwork(shared).remove();
    }
  }, 120_000);

  it(
    "starts again after a stop with the workspace's state intact",
    async () => {
      const nonce = randomBytes(8).toString("hex");
      await nodeIn(a.name, `require("fs").writeFileSync("/state/home/marker", process.argv[1])`, nonce);
      await driver.stop({ workspaceId: a.spec.workspaceId, state: a.state }, { graceful: true });
      expect((await driver.poll({ workspaceId: a.spec.workspaceId, state: a.state })).status).toBe("exited");
      a = await start(a.spec);
      expect(await driver.poll({ workspaceId: a.spec.workspaceId, state: a.state })).toEqual({ status: "running" });
      expect(await nodeIn(a.name, `console.log(require("fs").readFileSync("/state/home/marker", "utf8"))`)).toBe(nonce);
    },
    START_MS,
  );

  it("reports a gateway killed by its memory limit as exited 137, killed by its memory limit", async () => {
    // The kernel kills the biggest process of the cgroup, adjusted: the gateway, once it is marked first in line.
    const hog = `const fs = require("fs");
      for (const p of fs.readdirSync("/proc")) {
        if (!/^\\d+$/.test(p) || Number(p) === process.pid) continue;
        try {
          if (fs.readFileSync("/proc/" + p + "/cmdline", "utf8").includes("openclaw")) fs.writeFileSync("/proc/" + p + "/oom_score_adj", "1000");
        } catch {}
      }
      const held = [];
      for (;;) held.push(Buffer.alloc(32 << 20, 1));`;
    await nodeIn(a.name, hog).catch(() => {});
    const handle = { workspaceId: a.spec.workspaceId, state: a.state };
    const deadline = Date.now() + 30_000;
    let status = await driver.poll(handle);
    while (status.status !== "exited" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      status = await driver.poll(handle);
    }
    expect(status).toEqual({ status: "exited", code: 137, reason: "killed by its memory limit" });
  }, 90_000);
});
