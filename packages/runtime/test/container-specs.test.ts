import { describe, expect, it } from "vitest";
import { buildDockerPlan } from "../src/docker/docker-spec.ts";
import { buildKubernetesPlan } from "../src/kubernetes/pod-spec.ts";

const workspaceId = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b";
const limits = { memoryMb: 1536, cpus: 1.5, pids: 512 };

describe("docker plan", () => {
  const plan = buildDockerPlan({ workspaceId, image: "openclaw:2026.9.6", port: 18789, limits });
  const host = plan.container.HostConfig;

  it("runs the gateway hardened: non-root, no capabilities, no privilege gain, read-only root", () => {
    expect(plan.container.User).toBe("10001:10001");
    expect(host).toMatchObject({
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      Privileged: false,
      Init: true,
      IpcMode: "private",
    });
    expect(host.SecurityOpt).toContain("no-new-privileges:true");
  });

  it("caps memory (no swap), CPU and process count", () => {
    expect(host.Memory).toBe(1536 * 1024 * 1024);
    expect(host.MemorySwap).toBe(host.Memory);
    expect(host.NanoCpus).toBe(1_500_000_000);
    expect(host.PidsLimit).toBe(512);
  });

  it("gives the workspace its own network and publishes the port on loopback only", () => {
    expect(plan.network.Name).toBe(`reef-ws-${workspaceId}`);
    // Without it the Engine makes a second network of that name on a restart.
    expect(plan.network.CheckDuplicate).toBe(true);
    expect(plan.network.Options["com.docker.network.bridge.enable_icc"]).toBe("false");
    expect(host.NetworkMode).toBe(plan.network.Name);
    expect(host.PortBindings).toEqual({ "18789/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] });
  });

  it("writes only to its own state volume and a size-limited /tmp; never a host path or the Docker socket", () => {
    expect(host.Mounts).toEqual([
      {
        Type: "volume",
        Source: `reef-ws-${workspaceId}-state`,
        Target: "/state",
        ReadOnly: false,
        VolumeOptions: { NoCopy: true },
      },
    ]);
    expect(Object.keys(host.Tmpfs)).toEqual(["/tmp"]);
    expect(JSON.stringify(plan)).not.toMatch(/docker\.sock|"Binds"|"bind"/);
  });

  it("carries no secret in env or command line", () => {
    const env = plan.container.Env.join("\n");
    expect(env).toContain("OPENCLAW_CONFIG_PATH=/state/openclaw.json");
    expect(env).not.toMatch(/TOKEN|KEY|PASSWORD|SECRET/i);
    // Reef's gateway image relays this port to OpenClaw on the container's loopback.
    expect(plan.container.Entrypoint).toEqual(["/usr/local/bin/reef-gateway-entry"]);
    expect(plan.container.Cmd).toEqual(["18789"]);
  });

  it("rejects anything that is not a workspace id as a name", () => {
    expect(() => buildDockerPlan({ workspaceId: "../../etc", image: "x", port: 1, limits })).toThrow(
      /not a workspace id/,
    );
  });
});

describe("kubernetes plan", () => {
  const plan = buildKubernetesPlan({
    workspaceId,
    namespace: "reef-runtimes",
    image: "openclaw:2026.9.6",
    port: 18789,
    limits,
    storageGi: 5,
    reefSelector: { app: "reef" },
    reefNamespace: "reef",
  });
  const spec = plan.pod.spec;
  const container = spec.containers[0];

  it("runs non-root with a read-only root, no capabilities, no privilege escalation, RuntimeDefault seccomp", () => {
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(spec).toMatchObject({
      automountServiceAccountToken: false,
      hostNetwork: false,
      hostPID: false,
      hostIPC: false,
      enableServiceLinks: false,
    });
  });

  it("limits memory and CPU", () => {
    expect(container?.resources.limits).toEqual({ memory: "1536Mi", cpu: "1500m" });
  });

  it("mounts its config from a Secret read-only, state from its own claim, /tmp in memory", () => {
    expect(spec.volumes).toEqual([
      { name: "state", persistentVolumeClaim: { claimName: `reef-ws-${workspaceId}-state` } },
      { name: "config", secret: { secretName: `reef-ws-${workspaceId}-config`, defaultMode: 0o400 } },
      { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "256Mi" } },
    ]);
    expect(container?.env.find((e) => e.name === "OPENCLAW_CONFIG_PATH")?.value).toBe("/config/openclaw.json");
    expect(JSON.stringify(container?.env)).not.toMatch(/TOKEN|KEY|PASSWORD|SECRET/i);
    expect(JSON.stringify(plan)).not.toMatch(/hostPath|docker\.sock/);
  });

  it("is reachable only inside the cluster and only from Reef, and cannot reach other pods", () => {
    expect(plan.service.spec.type).toBe("ClusterIP");
    expect(plan.networkPolicy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(plan.networkPolicy.spec.ingress).toEqual([
      {
        from: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "reef" } },
            podSelector: { matchLabels: { app: "reef" } },
          },
        ],
        ports: [{ port: 18789, protocol: "TCP" }],
      },
    ]);
    const internet = plan.networkPolicy.spec.egress[1]?.to[0];
    expect(internet).toMatchObject({
      ipBlock: { cidr: "0.0.0.0/0", except: expect.arrayContaining(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]) },
    });
  });

  it("probes readiness and liveness on the gateway's own endpoints", () => {
    expect(container?.readinessProbe.httpGet).toEqual({ path: "/readyz", port: 18789 });
    expect(container?.livenessProbe.httpGet).toEqual({ path: "/healthz", port: 18789 });
  });
});
