import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { objectName } from "../src/container-profile.ts";
import { KubernetesDriver } from "../src/kubernetes/kubernetes-driver.ts";
import { buildKubernetesPlan } from "../src/kubernetes/pod-spec.ts";
import type { GatewaySettings } from "../src/openclaw-config.ts";
import { describeDriverConformance } from "./driver-conformance.ts";
import { startFakeKubeApi } from "./fake-kube-api.ts";

let api: Awaited<ReturnType<typeof startFakeKubeApi>>;
beforeAll(async () => {
  api = await startFakeKubeApi();
});
afterAll(() => api.close());

const KEY = "sk-kube-canary-key";
const settings = (): GatewaySettings => ({
  providers: [
    { id: "p", baseUrl: "https://llm.example/v1", apiKey: KEY, api: "openai-completions", models: [{ id: "m" }] },
  ],
  agents: [{ id: "main", name: "Main", model: "p/m" }],
});
const driver = () =>
  new KubernetesDriver({
    kubeConfig: api.kubeConfig,
    namespace: "reef-runtimes",
    image: "openclaw:2026.9.6",
    reefSelector: { app: "reef" },
  });

describeDriverConformance("kubernetes (fake API server)", {
  makeDriver: driver,
  settings,
  // The endpoint is a cluster DNS name: only reachable from inside a cluster.
  servesHttp: false,
  timeoutMs: 20_000,
  async leftovers(workspaceId) {
    const name = objectName(workspaceId);
    return [...api.objects.keys()].filter((k) => k.split("/")[2]?.startsWith(name));
  },
});

describe("kubernetes driver requests", () => {
  it("creates the secret, claim, policy, service and hardened pod; secrets only in the Secret", async () => {
    const d = driver();
    const workspaceId = randomUUID();
    const token = randomBytes(16).toString("hex");
    const { endpoint, state } = await d.start(
      { workspaceId, token, gateway: settings(), limits: { memoryMb: 1024, cpus: 1, pids: 256 } },
      AbortSignal.timeout(10_000),
    );
    expect(endpoint.toString()).toBe(`http://reef-ws-${workspaceId}.reef-runtimes.svc.cluster.local:18789/`);
    const kinds = api.calls
      .filter((c) => c.method === "POST" && c.body?.metadata?.labels?.["reef.dev/workspace"] === workspaceId)
      .map((c) => c.body.kind);
    expect(kinds).toEqual(["Secret", "PersistentVolumeClaim", "NetworkPolicy", "Service", "Pod"]);
    // The API server receives the plan field for field: the client's models rename some
    // fields (a NetworkPolicy's `from`), and a dropped `from` would let every pod in.
    const plan = buildKubernetesPlan({
      workspaceId,
      namespace: "reef-runtimes",
      image: "openclaw:2026.9.6",
      port: 18789,
      limits: { memoryMb: 1024, cpus: 1, pids: 256 },
      storageGi: 5,
      reefSelector: { app: "reef" },
    });
    const posted = (kind: string) =>
      api.calls.find((c) => c.method === "POST" && c.body?.kind === kind && c.body.metadata.name.includes(workspaceId))
        ?.body;
    expect(posted("NetworkPolicy")).toEqual(plan.networkPolicy);
    expect(posted("Pod")).toEqual(plan.pod);
    expect(posted("Service")).toEqual(plan.service);
    expect(posted("PersistentVolumeClaim")).toEqual(plan.pvc);
    const secret = api.objects.get(`secrets/reef-runtimes/reef-ws-${workspaceId}-config`);
    expect(JSON.parse(secret.stringData["openclaw.json"]).gateway.auth.token).toBe(token);
    const pod = api.objects.get(`pods/reef-runtimes/reef-ws-${workspaceId}`);
    const podJson = JSON.stringify(pod);
    expect(podJson).not.toContain(token);
    expect(podJson).not.toContain(KEY);
    expect(pod.spec.containers[0].securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });

    api.crash("reef-runtimes", String(state.name), 137);
    expect(await d.poll({ workspaceId, state })).toEqual({ status: "exited", code: 137 });
    await d.destroy({ workspaceId, state });
    expect([...api.objects.keys()].filter((k) => k.includes(workspaceId))).toEqual([]);
  });
});
