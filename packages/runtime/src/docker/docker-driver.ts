import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";
import { pack } from "tar-stream";
import { CONFIG_PATH, GATEWAY_UID, imageOpenclawVersion, objectName, STATE_DIR } from "../container-profile.ts";
import type { JsonObject, RuntimeDriver, RuntimeHandle, RuntimeSpec, RuntimeStatus } from "../driver.ts";
import { renderGatewayConfig } from "../openclaw-config.ts";
import { buildDockerPlan } from "./docker-spec.ts";

export interface DockerDriverOptions {
  /** Where the Engine API listens (a unix socket by default). */
  socketPath?: string;
  /** The gateway image (OpenClaw, pinned). */
  image: string;
  /** The gateway's port inside its container. */
  port?: number;
  readyTimeoutMs?: number;
}

interface DockerState extends JsonObject {
  container: string;
  network: string;
  volume: string;
  hostPort: number;
}

/** A tar holding one file, for the Engine API's archive upload. */
async function tarOf(path: string, content: string, uid: number): Promise<Buffer> {
  const archive = pack();
  archive.entry({ name: path, mode: 0o600, uid, gid: uid }, content);
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * One hardened container per workspace through the Docker Engine API
 * (dockerode): its own bridge network and state volume, the config uploaded
 * into the volume (mode 0600) before start, the port published on loopback.
 */
export class DockerDriver implements RuntimeDriver {
  readonly kind = "docker" as const;
  readonly #docker: Docker;
  readonly #opts: Required<Omit<DockerDriverOptions, "socketPath">>;

  constructor(opts: DockerDriverOptions) {
    this.#docker = new Docker({ socketPath: opts.socketPath ?? "/var/run/docker.sock" });
    this.#opts = { port: 18_789, readyTimeoutMs: 120_000, ...opts };
  }

  async start(spec: RuntimeSpec, signal: AbortSignal): Promise<{ endpoint: URL; state: JsonObject }> {
    signal.throwIfAborted();
    const plan = buildDockerPlan({
      workspaceId: spec.workspaceId,
      image: this.#opts.image,
      port: this.#opts.port,
      limits: spec.limits,
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
    await this.#docker.createNetwork(plan.network).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 409) throw err;
    });
    await this.#docker.createVolume(plan.volume);
    const container = await this.#docker.createContainer(plan.container);
    const state: DockerState = {
      container: container.id,
      network: plan.network.Name,
      volume: plan.volume.Name,
      hostPort: 0,
    };
    try {
      const relative = CONFIG_PATH.slice(STATE_DIR.length + 1);
      await container.putArchive(await tarOf(relative, `${JSON.stringify(config, null, 2)}\n`, GATEWAY_UID), {
        path: STATE_DIR,
      });
      await container.start();
      const info = await container.inspect();
      const binding = info.NetworkSettings.Ports[`${this.#opts.port}/tcp`]?.[0];
      if (binding?.HostIp !== "127.0.0.1") throw new Error("the gateway port was not published on loopback");
      state.hostPort = Number(binding.HostPort);
      const deadline = Date.now() + this.#opts.readyTimeoutMs;
      while (!(await answers(state.hostPort))) {
        signal.throwIfAborted();
        const now = await container.inspect();
        if (!now.State.Running)
          throw new Error(`the gateway container exited with code ${now.State.ExitCode} before it was ready`);
        if (Date.now() > deadline) throw new Error(`the gateway was not ready within ${this.#opts.readyTimeoutMs} ms`);
        await sleep(200);
      }
    } catch (err) {
      await this.destroy({ workspaceId: spec.workspaceId, state });
      throw err;
    }
    return { endpoint: new URL(`http://127.0.0.1:${state.hostPort}`), state };
  }

  async poll(handle: RuntimeHandle): Promise<RuntimeStatus> {
    const { container, hostPort } = handle.state as DockerState;
    try {
      const info = await this.#docker.getContainer(container).inspect();
      if (!info.State.Running) return { status: "exited", code: info.State.ExitCode ?? null };
      return (await answers(hostPort)) ? { status: "running" } : { status: "starting" };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return { status: "exited", code: null };
      throw err;
    }
  }

  async stop(handle: RuntimeHandle, opts: { graceful: boolean }): Promise<void> {
    const { container } = handle.state as DockerState;
    const c = this.#docker.getContainer(container);
    try {
      if (opts.graceful) await c.stop({ t: 15 });
      else await c.kill();
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      // 304: already stopped; 404: gone; 409: not running.
      if (code !== 304 && code !== 404 && code !== 409) throw err;
    }
  }

  async destroy(handle: RuntimeHandle): Promise<void> {
    // A stopped runtime has no persisted state: its objects are named after the workspace.
    const name = objectName(handle.workspaceId);
    const state = handle.state as Partial<DockerState>;
    const container = state.container ?? name;
    const network = state.network ?? name;
    const volume = state.volume ?? `${name}-state`;
    const ignoreMissing = (err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    };
    await this.#docker.getContainer(container).remove({ force: true }).catch(ignoreMissing);
    await this.#docker.getVolume(volume).remove().catch(ignoreMissing);
    await this.#docker.getNetwork(network).remove().catch(ignoreMissing);
  }
}
