import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";
import { CONFIG_PATH, GATEWAY_UID, imageOpenclawVersion, objectName, STATE_DIR } from "../container-profile.ts";
import type { JsonObject, RuntimeDriver, RuntimeHandle, RuntimeSpec, RuntimeStatus } from "../driver.ts";
import { renderGatewayConfig } from "../openclaw-config.ts";
import { claimVolume, lastOutput, secretsOf, stateArchive } from "./docker-io.ts";
import { buildDockerPlan } from "./docker-spec.ts";

export interface DockerDriverOptions {
  /** Where the Engine API listens (a unix socket by default). */
  socketPath?: string;
  /** The gateway image (OpenClaw, pinned). */
  image: string;
  /** The gateway's port inside its container. */
  port?: number;
  readyTimeoutMs?: number;
  /**
   * Reef's own container (name or id), when Reef runs in one: the driver then
   * publishes no port, connects that container to each workspace's network
   * (alias `reef`) and reaches the gateway at `http://<container name>:<port>`.
   */
  reefContainer?: string;
  /** Where the driver reports what a failed gateway printed last (secrets redacted). */
  onWarning?: (message: string, details: Record<string, string>) => void;
}

interface DockerState extends JsonObject {
  container: string;
  network: string;
  volume: string;
  /** The published loopback port; 0 when Reef reaches the gateway over the network. */
  hostPort: number;
  /** Where the gateway answers (persisted so any replica probes the same place). */
  endpoint: string;
}

/** How many of a failed gateway's last output lines its failure reason carries. */
const TAIL_LINES = 30;

type EngineError = { statusCode?: number; message?: string };
const statusOf = (err: unknown) => (err as EngineError).statusCode;

async function answers(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(new URL("/readyz", endpoint), { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * One hardened container per workspace through the Docker Engine API
 * (dockerode): its own bridge network and state volume, whose ownership and
 * config (mode 0600) the driver writes before start, the port published on
 * loopback (or, for a containerised Reef, the network shared with Reef alone).
 */
export class DockerDriver implements RuntimeDriver {
  readonly kind = "docker" as const;
  readonly #docker: Docker;
  readonly #opts: Required<Omit<DockerDriverOptions, "socketPath" | "reefContainer" | "onWarning">> &
    Pick<DockerDriverOptions, "reefContainer" | "onWarning">;

  constructor(opts: DockerDriverOptions) {
    this.#docker = new Docker({ socketPath: opts.socketPath ?? "/var/run/docker.sock" });
    this.#opts = { port: 18_789, readyTimeoutMs: 120_000, ...opts };
  }

  async start(spec: RuntimeSpec, signal: AbortSignal): Promise<{ endpoint: URL; state: JsonObject }> {
    signal.throwIfAborted();
    const reef = this.#opts.reefContainer;
    const plan = buildDockerPlan({
      workspaceId: spec.workspaceId,
      image: this.#opts.image,
      port: this.#opts.port,
      limits: spec.limits,
      reefInContainer: reef !== undefined,
    });
    const config = renderGatewayConfig({
      ...spec.gateway,
      port: this.#opts.port,
      token: spec.token,
      paths: { logFile: `${STATE_DIR}/logs/gateway.log`, agentsDir: `${STATE_DIR}/agents` },
      openclawVersion: imageOpenclawVersion(this.#opts.image),
      // Models through Reef's LLM proxy on the network (no vendor key in the config), where Reef offers one.
      ...(spec.outbound?.url
        ? {
            outbound: {
              baseUrl: spec.outbound.url,
              credentials: spec.outbound.credentials,
              mcpCredential: spec.outbound.mcpCredential,
            },
          }
        : {}),
    });
    // A restart finds the workspace's volume, and its state, as the last run left it.
    const freshVolume = await this.#docker
      .getVolume(plan.volume.Name)
      .inspect()
      .then(
        () => false,
        (err: EngineError) => {
          if (err.statusCode !== 404) throw err;
          return true;
        },
      );
    if (freshVolume) {
      await this.#docker.createVolume(plan.volume);
      await claimVolume(this.#docker, {
        image: this.#opts.image,
        volume: plan.volume.Name,
        target: STATE_DIR,
        uid: GATEWAY_UID,
        name: `${plan.container.name}-init`,
        labels: plan.volume.Labels,
      }).catch(async (err: unknown) => {
        await this.#docker
          .getVolume(plan.volume.Name)
          .remove()
          .catch(() => {});
        throw err;
      });
    }
    await this.#docker.createNetwork(plan.network).catch((err: EngineError) => {
      if (err.statusCode !== 409) throw err;
    });
    const container = await this.#create(plan.container);
    const state: DockerState = {
      container: container.id,
      network: plan.network.Name,
      volume: plan.volume.Name,
      hostPort: 0,
      endpoint: `http://${plan.container.name}:${this.#opts.port}`,
    };
    try {
      if (reef) await this.#connectReef(reef, plan.network.Name);
      const relative = CONFIG_PATH.slice(STATE_DIR.length + 1);
      const archive = await stateArchive(GATEWAY_UID, ["home", "logs", "agents"], {
        [relative]: `${JSON.stringify(config, null, 2)}\n`,
      });
      await container.putArchive(archive, { path: STATE_DIR });
      signal.throwIfAborted();
      await container.start();
      if (!reef) {
        const info = await container.inspect();
        const binding = info.NetworkSettings.Ports?.[`${this.#opts.port}/tcp`]?.[0];
        // A gateway that already exited has no ports: the wait below reports why it exited.
        if (info.State.Running && binding?.HostIp !== "127.0.0.1") {
          throw new Error("the gateway port was not published on loopback");
        }
        state.hostPort = Number(binding?.HostPort ?? 0);
        state.endpoint = `http://127.0.0.1:${state.hostPort}`;
      }
      await this.#awaitReady(container, state.endpoint, spec, signal);
    } catch (err) {
      await this.#removeAll(state, freshVolume);
      throw err;
    }
    return { endpoint: new URL(state.endpoint), state };
  }

  /** Creates the container; a stopped one of the workspace's (its last run) is replaced. */
  async #create(body: ReturnType<typeof buildDockerPlan>["container"]): Promise<Docker.Container> {
    try {
      return await this.#docker.createContainer(body as Docker.ContainerCreateOptions);
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      await this.#docker.getContainer(body.name).remove({ force: true });
      return await this.#docker.createContainer(body as Docker.ContainerCreateOptions);
    }
  }

  async #connectReef(reef: string, network: string): Promise<void> {
    await this.#docker
      .getNetwork(network)
      .connect({ Container: reef, EndpointConfig: { Aliases: ["reef"] } })
      .catch((err: EngineError) => {
        // A restart finds it connected already.
        if (!/already exists/i.test(err.message ?? "")) throw err;
      });
  }

  async #awaitReady(container: Docker.Container, endpoint: string, spec: RuntimeSpec, signal: AbortSignal) {
    const deadline = Date.now() + this.#opts.readyTimeoutMs;
    let problem: string | undefined;
    while (!(await answers(endpoint))) {
      if (signal.aborted) break;
      const now = await container.inspect();
      if (!now.State.Running) {
        problem = `the gateway container exited with code ${now.State.ExitCode}${
          now.State.OOMKilled ? " (killed by its memory limit)" : ""
        } before it was ready`;
        break;
      }
      if (Date.now() > deadline) {
        problem = `the gateway was not ready within ${this.#opts.readyTimeoutMs} ms`;
        break;
      }
      await sleep(200);
    }
    if (signal.aborted) throw signal.reason;
    if (!problem) return;
    // What it printed last says why, and is gone once the failed start removes the container.
    const output = await lastOutput(container, TAIL_LINES, secretsOf(spec)).catch(() => "");
    this.#opts.onWarning?.(`${problem}; its last output follows`, { workspaceId: spec.workspaceId, output });
    if (!output) throw new Error(`${problem} (it printed nothing)`);
    // Newest first: the recorded reason is cut short, and the last line usually says why.
    const newestFirst = output.split("\n").reverse().join("\n");
    throw new Error(`${problem}; its last output, newest first:\n${newestFirst}`);
  }

  async poll(handle: RuntimeHandle): Promise<RuntimeStatus> {
    const { container, hostPort, endpoint } = handle.state as Partial<DockerState>;
    try {
      const info = await this.#docker.getContainer(String(container)).inspect();
      // Docker reports a paused container as running too; it cannot answer until unpaused.
      if (info.State.Running && info.State.Paused) return { status: "paused" };
      if (!info.State.Running) {
        return {
          status: "exited",
          code: info.State.ExitCode ?? null,
          ...(info.State.OOMKilled ? { reason: "killed by its memory limit" } : {}),
        };
      }
      // State persisted before `endpoint` was kept names the loopback port only.
      return (await answers(endpoint ?? `http://127.0.0.1:${hostPort}`))
        ? { status: "running" }
        : { status: "starting" };
    } catch (err) {
      if (statusOf(err) === 404) return { status: "exited", code: null };
      throw err;
    }
  }

  /** `docker pause`: the cgroup freezer, atomic for the whole container. */
  async pause(handle: RuntimeHandle): Promise<void> {
    const { container } = handle.state as DockerState;
    try {
      await this.#docker.getContainer(container).pause();
    } catch (err) {
      // 409: already paused (idempotent); anything else (gone, not running) is the caller's crash.
      if (statusOf(err) !== 409 || !(await this.#state(container))?.Paused) throw err;
    }
  }

  async resume(handle: RuntimeHandle): Promise<void> {
    const { container } = handle.state as DockerState;
    try {
      await this.#docker.getContainer(container).unpause();
    } catch (err) {
      // 409/500 "not paused" while it runs: already resumed.
      const state = await this.#state(container);
      if (!state?.Running || state.Paused) throw err;
    }
  }

  /** The container's state as the engine reports it; undefined when it cannot say (gone). */
  async #state(container: string) {
    const info = await this.#docker
      .getContainer(container)
      .inspect()
      .catch(() => undefined);
    return info?.State;
  }

  async stop(handle: RuntimeHandle, opts: { graceful: boolean }): Promise<void> {
    const { container } = handle.state as DockerState;
    const c = this.#docker.getContainer(container);
    // A paused container is frozen: a stop signal would wait out its timeout. Thaw it first.
    if ((await this.#state(container))?.Paused) await c.unpause().catch(() => {});
    try {
      if (opts.graceful) await c.stop({ t: 15 });
      else await c.kill();
    } catch (err) {
      const code = statusOf(err);
      // 304: already stopped; 404: gone; 409: not running.
      if (code !== 304 && code !== 404 && code !== 409) throw err;
    }
  }

  async destroy(handle: RuntimeHandle): Promise<void> {
    // A stopped runtime has no persisted state: its objects are named after the workspace.
    const name = objectName(handle.workspaceId);
    const state = handle.state as Partial<DockerState>;
    // The one-shot container that claims a fresh volume, should a Reef have died while it ran.
    await this.#docker
      .getContainer(`${name}-init`)
      .remove({ force: true })
      .catch(() => {});
    await this.#removeAll(
      { container: state.container ?? name, network: state.network ?? name, volume: state.volume ?? `${name}-state` },
      true,
    );
  }

  /** Removes the container and network, and the volume too when `withVolume` (a failed restart keeps the state). */
  async #removeAll(objects: { container: string; network: string; volume: string }, withVolume: boolean) {
    const { container, network, volume } = objects;
    const ignoreMissing = (err: EngineError) => {
      if (err.statusCode !== 404) throw err;
    };
    await this.#docker.getContainer(container).remove({ force: true }).catch(ignoreMissing);
    if (withVolume) await this.#docker.getVolume(volume).remove().catch(ignoreMissing);
    const reef = this.#opts.reefContainer;
    if (reef) {
      // A network with an endpoint left on it cannot be removed.
      await this.#docker
        .getNetwork(network)
        .disconnect({ Container: reef, Force: true })
        .catch((err: EngineError) => {
          if (err.statusCode !== 404 && !/is not connected/i.test(err.message ?? "")) throw err;
        });
    }
    await this.#docker.getNetwork(network).remove().catch(ignoreMissing);
  }
}
