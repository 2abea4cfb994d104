import { setTimeout as sleep } from "node:timers/promises";
import {
  CoreV1Api,
  type KubeConfig,
  loadYaml,
  NetworkingV1Api,
  type V1NetworkPolicy,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1Secret,
  type V1Service,
} from "@kubernetes/client-node";
import { imageOpenclawVersion, objectName, STATE_DIR } from "../container-profile.ts";
import type { JsonObject, RuntimeDriver, RuntimeHandle, RuntimeSpec, RuntimeStatus } from "../driver.ts";
import { renderGatewayConfig } from "../openclaw-config.ts";
import { buildKubernetesPlan } from "./pod-spec.ts";

export interface KubernetesDriverOptions {
  /** A loaded kubeconfig (in-cluster: `kc.loadFromCluster()`). */
  kubeConfig: KubeConfig;
  namespace: string;
  image: string;
  port?: number;
  storageGi?: number;
  /** Labels of Reef's own pods: the NetworkPolicy lets only them in. */
  reefSelector: Record<string, string>;
  /** Reef's own namespace, where it differs from the gateways' (in-cluster: the service account's). */
  reefNamespace?: string | undefined;
  readyTimeoutMs?: number;
}

interface KubeState extends JsonObject {
  name: string;
  namespace: string;
}

function status(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

/**
 * A manifest (API JSON) as the client's model object. The client writes a body
 * from its models' field names, which differ from the JSON's in places
 * (`from` is `_from`): a plain manifest passed as is would lose those fields
 * (a NetworkPolicy's `from` clause, and with it the only-Reef rule).
 */
function model<T>(manifest: object): T {
  // loadYaml is the client's public way to a model from a manifest (JSON is YAML).
  return loadYaml<T>(JSON.stringify(manifest));
}

const ignore404 = (err: unknown) => {
  if (status(err) !== 404) throw err;
};

/**
 * One pod per workspace, with its config in a Secret, its state on a PVC, a
 * ClusterIP Service and a NetworkPolicy. Readiness is the pod's Ready condition
 * (the kubelet probes /readyz); the endpoint is the Service's cluster DNS name.
 */
export class KubernetesDriver implements RuntimeDriver {
  readonly kind = "kubernetes" as const;
  readonly #core: CoreV1Api;
  readonly #net: NetworkingV1Api;
  readonly #opts: Required<Omit<KubernetesDriverOptions, "kubeConfig" | "reefNamespace">> &
    Pick<KubernetesDriverOptions, "reefNamespace">;

  constructor(opts: KubernetesDriverOptions) {
    this.#core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.#net = opts.kubeConfig.makeApiClient(NetworkingV1Api);
    this.#opts = { port: 18_789, storageGi: 5, readyTimeoutMs: 180_000, ...opts };
  }

  async start(spec: RuntimeSpec, signal: AbortSignal): Promise<{ endpoint: URL; state: JsonObject }> {
    signal.throwIfAborted();
    const { namespace, port } = this.#opts;
    const plan = buildKubernetesPlan({
      workspaceId: spec.workspaceId,
      namespace,
      image: this.#opts.image,
      port,
      limits: spec.limits,
      storageGi: this.#opts.storageGi,
      reefSelector: this.#opts.reefSelector,
      reefNamespace: this.#opts.reefNamespace,
    });
    const config = renderGatewayConfig({
      ...spec.gateway,
      port,
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
    const state: KubeState = { name: plan.pod.metadata.name, namespace };
    const exists = (err: unknown) => {
      if (status(err) !== 409) throw err;
    };
    try {
      await this.#core
        .createNamespacedSecret({
          namespace,
          body: model<V1Secret>({ ...plan.secret, stringData: { "openclaw.json": JSON.stringify(config) } }),
        })
        .catch(exists);
      await this.#core
        .createNamespacedPersistentVolumeClaim({
          namespace,
          body: model<V1PersistentVolumeClaim>(plan.pvc),
        })
        .catch(exists);
      await this.#net
        .createNamespacedNetworkPolicy({
          namespace,
          body: model<V1NetworkPolicy>(plan.networkPolicy),
        })
        .catch(exists);
      await this.#core.createNamespacedService({ namespace, body: model<V1Service>(plan.service) }).catch(exists);
      await this.#core.createNamespacedPod({ namespace, body: model<V1Pod>(plan.pod) });
      const deadline = Date.now() + this.#opts.readyTimeoutMs;
      for (;;) {
        signal.throwIfAborted();
        const s = await this.poll({ workspaceId: spec.workspaceId, state });
        if (s.status === "running") break;
        if (s.status === "exited") throw new Error(`the gateway pod exited with code ${s.code} before it was ready`);
        if (Date.now() > deadline)
          throw new Error(`the gateway pod was not ready within ${this.#opts.readyTimeoutMs} ms`);
        await sleep(500);
      }
    } catch (err) {
      await this.destroy({ workspaceId: spec.workspaceId, state }).catch(() => {});
      throw err;
    }
    return { endpoint: new URL(`http://${state.name}.${namespace}.svc.cluster.local:${port}`), state };
  }

  async poll(handle: RuntimeHandle): Promise<RuntimeStatus> {
    const { name, namespace } = handle.state as KubeState;
    try {
      const pod = await this.#core.readNamespacedPod({ name, namespace });
      const phase = pod.status?.phase;
      if (phase === "Succeeded" || phase === "Failed") {
        const code = pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode ?? null;
        return { status: "exited", code };
      }
      const ready = pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      return phase === "Running" && ready ? { status: "running" } : { status: "starting" };
    } catch (err) {
      if (status(err) === 404) return { status: "exited", code: null };
      throw err;
    }
  }

  async stop(handle: RuntimeHandle, opts: { graceful: boolean }): Promise<void> {
    const { name, namespace } = handle.state as KubeState;
    // A stopped gateway is a deleted pod; its Secret, PVC, Service and policy stay for the next start.
    await this.#core
      .deleteNamespacedPod({ name, namespace, gracePeriodSeconds: opts.graceful ? 15 : 0 })
      .catch(ignore404);
  }

  async destroy(handle: RuntimeHandle): Promise<void> {
    // A stopped runtime has no persisted state: its objects are named after the workspace.
    const state = handle.state as Partial<KubeState>;
    const name = state.name ?? objectName(handle.workspaceId);
    const namespace = state.namespace ?? this.#opts.namespace;
    await this.#core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(ignore404);
    await this.#core.deleteNamespacedService({ name, namespace }).catch(ignore404);
    await this.#net.deleteNamespacedNetworkPolicy({ name, namespace }).catch(ignore404);
    await this.#core.deleteNamespacedPersistentVolumeClaim({ name: `${name}-state`, namespace }).catch(ignore404);
    await this.#core.deleteNamespacedSecret({ name: `${name}-config`, namespace }).catch(ignore404);
  }
}
