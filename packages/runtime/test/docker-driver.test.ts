import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { objectName } from "../src/container-profile.ts";
import { DockerDriver } from "../src/docker/docker-driver.ts";
import type { GatewaySettings } from "../src/openclaw-config.ts";
import { describeDriverConformance } from "./driver-conformance.ts";
import { startFakeDockerEngine } from "./fake-docker-engine.ts";

let engine: Awaited<ReturnType<typeof startFakeDockerEngine>>;
beforeAll(async () => {
  engine = await startFakeDockerEngine();
});
afterAll(() => engine.close());

const KEY = "sk-docker-canary-key";
const settings = (): GatewaySettings => ({
  providers: [
    { id: "p", baseUrl: "https://llm.example/v1", apiKey: KEY, api: "openai-completions", models: [{ id: "m" }] },
  ],
  agents: [{ id: "main", name: "Main", model: "p/m" }],
});

describeDriverConformance("docker (fake Engine API)", {
  makeDriver: () => new DockerDriver({ socketPath: engine.socketPath, image: "openclaw:2026.9.6" }),
  settings,
  servesHttp: true,
  timeoutMs: 20_000,
  async leftovers(workspaceId) {
    const name = objectName(workspaceId);
    return [
      ...[...engine.containers.values()].filter((c) => c.name === name).map(() => `container ${name}`),
      ...[...engine.networks.keys()].filter((n) => n === name).map((n) => `network ${n}`),
      ...[...engine.volumes.keys()].filter((v) => v === `${name}-state`).map((v) => `volume ${v}`),
    ];
  },
});

describe("docker driver requests", () => {
  it("creates the hardened container from the plan, uploads the config into the volume, and keeps secrets out of env", async () => {
    const driver = new DockerDriver({ socketPath: engine.socketPath, image: "openclaw:2026.9.6" });
    const workspaceId = randomUUID();
    const token = randomBytes(16).toString("hex");
    const { state } = await driver.start(
      { workspaceId, token, gateway: settings(), limits: { memoryMb: 1024, cpus: 1, pids: 256 } },
      AbortSignal.timeout(10_000),
    );
    const create = engine.calls.find(
      (c) => c.path === "/containers/create" && c.query.get("name") === `reef-ws-${workspaceId}`,
    );
    expect(create?.body).toMatchObject({
      User: "10001:10001",
      HostConfig: {
        ReadonlyRootfs: true,
        CapDrop: ["ALL"],
        Memory: 1024 * 1024 * 1024,
        PidsLimit: 256,
        NetworkMode: `reef-ws-${workspaceId}`,
      },
    });
    const serialized = JSON.stringify(create?.body);
    expect(serialized).not.toContain(token);
    expect(serialized).not.toContain(KEY);
    const container = engine.containers.get(String(state.container));
    const config = JSON.parse(container?.files.get("openclaw.json") ?? "{}");
    expect(config.gateway.auth.token).toBe(token);
    const upload = engine.calls.find((c) => c.path === `/containers/${state.container}/archive`);
    expect(upload?.query.get("path")).toBe("/state");
    await driver.destroy({ workspaceId, state });
    expect(engine.networks.has(`reef-ws-${workspaceId}`)).toBe(false);
    expect(engine.volumes.has(`reef-ws-${workspaceId}-state`)).toBe(false);
  });
});

describe("docker driver lifecycle", () => {
  const limits = { memoryMb: 1024, cpus: 1, pids: 256 };
  const driver = () => new DockerDriver({ socketPath: engine.socketPath, image: "openclaw:2026.9.6" });

  it("hands the state volume to the gateway user before start, whatever the image holds at /state", async () => {
    const d = driver();
    const workspaceId = randomUUID();
    const { state } = await d.start(
      { workspaceId, token: randomBytes(16).toString("hex"), gateway: settings(), limits },
      AbortSignal.timeout(10_000),
    );
    expect(engine.volumes.get(`${objectName(workspaceId)}-state`)?.owner).toEqual({ uid: 10_001, gid: 10_001 });
    const helper = engine.calls.find(
      (c) => c.path === "/containers/create" && c.query.get("name") === `${objectName(workspaceId)}-init`,
    );
    expect(helper?.body).toMatchObject({
      HostConfig: { NetworkMode: "none", CapDrop: ["ALL"], CapAdd: ["CHOWN"], ReadonlyRootfs: true },
    });
    // It is gone once done; only the gateway's container is left.
    expect([...engine.containers.values()].map((c) => c.name)).not.toContain(`${objectName(workspaceId)}-init`);
    const dirs = engine.containers.get(String(state.container))?.dirs;
    for (const dir of ["home/", "logs/", "agents/"]) expect(dirs?.get(dir)).toMatchObject({ uid: 10_001, mode: 0o700 });
    await d.destroy({ workspaceId, state });
  });

  it("starts again after a stop (the stopped container is replaced, the volume kept)", async () => {
    const d = driver();
    const workspaceId = randomUUID();
    const spec = { workspaceId, token: randomBytes(16).toString("hex"), gateway: settings(), limits };
    const first = await d.start(spec, AbortSignal.timeout(10_000));
    await d.stop({ workspaceId, state: first.state }, { graceful: true });
    const second = await d.start(spec, AbortSignal.timeout(10_000));
    expect(second.state.container).not.toBe(first.state.container);
    expect(await d.poll({ workspaceId, state: second.state })).toEqual({ status: "running" });
    await d.destroy({ workspaceId, state: second.state });
    expect([...engine.containers.values()].filter((c) => c.name === objectName(workspaceId))).toEqual([]);
  });

  it("a failed start carries the gateway's last output, secrets redacted, in its reason and warning", async () => {
    const warnings: { message: string; details: Record<string, string> }[] = [];
    const d = new DockerDriver({
      socketPath: engine.socketPath,
      image: "openclaw:2026.9.6",
      onWarning: (message, details) => warnings.push({ message, details }),
    });
    const workspaceId = randomUUID();
    const token = randomBytes(16).toString("hex");
    const noise = Array.from({ length: 40 }, (_, i) => `line ${i}`);
    engine.failNextStart(78, [...noise, `token was ${token}`, `key was ${KEY}`, "Error: EACCES: mkdir '/state/state'"]);
    const failure = await d
      .start({ workspaceId, token, gateway: settings(), limits }, AbortSignal.timeout(10_000))
      .catch((err: Error) => err);
    expect(failure).toBeInstanceOf(Error);
    const message = (failure as Error).message;
    expect(message).toMatch(/^the gateway container exited with code 78 before it was ready/);
    expect(message).toContain("EACCES: mkdir '/state/state'");
    expect(message).toContain("token was [redacted]");
    expect(message).not.toContain(token);
    expect(message).not.toContain(KEY);
    // The last 30 lines, newest first (the recorded reason is cut short), not everything it printed.
    expect(message.split("\n").slice(1, 4)).toEqual([
      "Error: EACCES: mkdir '/state/state'",
      "key was [redacted]",
      "token was [redacted]",
    ]);
    expect(message.split("\n")).toHaveLength(31);
    expect(message).toContain("line 39");
    expect(message).not.toContain("line 12\n");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.details.output).toContain("EACCES");
    expect(JSON.stringify(warnings)).not.toContain(token);
    // Read before the container went: nothing is left of the failed start.
    expect([...engine.containers.values()].filter((c) => c.name === objectName(workspaceId))).toEqual([]);
    expect(engine.volumes.has(`${objectName(workspaceId)}-state`)).toBe(false);
  });

  it("reports a gateway killed by its memory limit as exited 137 with that reason", async () => {
    const d = driver();
    const workspaceId = randomUUID();
    const { state } = await d.start(
      { workspaceId, token: randomBytes(16).toString("hex"), gateway: settings(), limits },
      AbortSignal.timeout(10_000),
    );
    await engine.oomKill(String(state.container));
    expect(await d.poll({ workspaceId, state })).toEqual({
      status: "exited",
      code: 137,
      reason: "killed by its memory limit",
    });
    await d.destroy({ workspaceId, state });
  });

  it("with Reef in a container: no published port, Reef joins the network as `reef`, and leaves it on destroy", async () => {
    const d = new DockerDriver({
      socketPath: engine.socketPath,
      image: "openclaw:2026.9.6",
      reefContainer: "reef-app",
      // The fake's gateway does not answer at the container's name: only the requests are checked here.
      readyTimeoutMs: 300,
    });
    const workspaceId = randomUUID();
    const name = objectName(workspaceId);
    const seen = engine.calls.length;
    await expect(
      d.start({ workspaceId, token: "t".repeat(32), gateway: settings(), limits }, AbortSignal.timeout(10_000)),
    ).rejects.toThrow(/not ready within 300 ms/);
    const calls = engine.calls.slice(seen);
    const network = calls.find((c) => c.path === "/networks/create")?.body as { Options: Record<string, string> };
    expect(network.Options["com.docker.network.bridge.enable_icc"]).toBe("true");
    const create = calls.find((c) => c.path === "/containers/create" && c.query.get("name") === name)?.body as {
      HostConfig: { PortBindings: unknown; ExtraHosts: string[] };
    };
    expect(create.HostConfig.PortBindings).toEqual({});
    expect(create.HostConfig.ExtraHosts).toEqual(["host.docker.internal:host-gateway"]);
    expect(calls.find((c) => c.path === `/networks/${name}/connect`)?.body).toEqual({
      Container: "reef-app",
      EndpointConfig: { Aliases: ["reef"] },
    });
    // The failed start cleaned up: Reef left the network, so the network could go.
    expect(calls.some((c) => c.path === `/networks/${name}/disconnect`)).toBe(true);
    expect(engine.networks.has(name)).toBe(false);
  });
});
