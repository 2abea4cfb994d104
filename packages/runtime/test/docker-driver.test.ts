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
