import {
  type ContainerLimits,
  GATEWAY_ENTRYPOINT,
  GATEWAY_UID,
  gatewayArgs,
  gatewayEnv,
  objectName,
  STATE_DIR,
} from "../container-profile.ts";

export interface KubernetesPlanInput {
  workspaceId: string;
  namespace: string;
  image: string;
  port: number;
  limits: ContainerLimits;
  storageGi: number;
  /** Labels of the Reef pods, the only ones allowed to reach a gateway. */
  reefSelector: Record<string, string>;
  /**
   * The namespace Reef's pods run in. A NetworkPolicy's pod selector alone
   * matches pods in the gateway's own namespace only, so Reef in another one
   * (deploy/kubernetes: `reef` beside `reef-runtimes`) must be named.
   */
  reefNamespace?: string | undefined;
}

const MANAGED = "app.kubernetes.io/managed-by";

/**
 * The Kubernetes objects of one workspace's gateway: a Secret holding its
 * rendered config (never env), a PVC for its state, the Pod, a ClusterIP
 * Service, and a NetworkPolicy letting in only Reef and keeping the gateway off
 * the cluster network except DNS. Pure; unit tests pin the hardening.
 */
export function buildKubernetesPlan(input: KubernetesPlanInput) {
  const name = objectName(input.workspaceId);
  const labels = {
    "app.kubernetes.io/name": "openclaw-gateway",
    [MANAGED]: "reef",
    "reef.dev/workspace": input.workspaceId,
  };
  const metadata = { name, namespace: input.namespace, labels };
  const requests = { memory: `${Math.min(512, input.limits.memoryMb)}Mi`, cpu: "100m" };
  const limits = { memory: `${input.limits.memoryMb}Mi`, cpu: `${Math.round(input.limits.cpus * 1000)}m` };

  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { ...metadata, name: `${name}-config` },
    type: "Opaque",
  };
  const pvc = {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { ...metadata, name: `${name}-state` },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: `${input.storageGi}Gi` } } },
  };
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata,
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      hostNetwork: false,
      hostPID: false,
      hostIPC: false,
      restartPolicy: "Never",
      securityContext: {
        runAsNonRoot: true,
        runAsUser: GATEWAY_UID,
        runAsGroup: GATEWAY_UID,
        fsGroup: GATEWAY_UID,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [
        {
          name: "gateway",
          image: input.image,
          command: GATEWAY_ENTRYPOINT,
          args: gatewayArgs(input.port),
          env: Object.entries({ ...gatewayEnv(), OPENCLAW_CONFIG_PATH: "/config/openclaw.json" }).map(([n, value]) => ({
            name: n,
            value,
          })),
          ports: [{ name: "gateway", containerPort: input.port, protocol: "TCP" }],
          resources: { requests, limits },
          securityContext: {
            allowPrivilegeEscalation: false,
            privileged: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
          },
          volumeMounts: [
            { name: "state", mountPath: STATE_DIR },
            { name: "config", mountPath: "/config", readOnly: true },
            { name: "tmp", mountPath: "/tmp" },
          ],
          readinessProbe: { httpGet: { path: "/readyz", port: input.port }, periodSeconds: 2, failureThreshold: 60 },
          livenessProbe: { httpGet: { path: "/healthz", port: input.port }, periodSeconds: 15, failureThreshold: 4 },
        },
      ],
      volumes: [
        { name: "state", persistentVolumeClaim: { claimName: `${name}-state` } },
        { name: "config", secret: { secretName: `${name}-config`, defaultMode: 0o400 } },
        { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "256Mi" } },
      ],
    },
  };
  const service = {
    apiVersion: "v1",
    kind: "Service",
    metadata,
    spec: {
      type: "ClusterIP",
      selector: labels,
      ports: [{ name: "gateway", port: input.port, targetPort: input.port }],
    },
  };
  const networkPolicy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata,
    spec: {
      podSelector: { matchLabels: labels },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          from: [
            {
              ...(input.reefNamespace
                ? { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": input.reefNamespace } } }
                : {}),
              podSelector: { matchLabels: input.reefSelector },
            },
          ],
          ports: [{ port: input.port, protocol: "TCP" }],
        },
      ],
      egress: [
        // DNS, and the internet (LLM vendors), but not other pods or cluster-private ranges.
        {
          to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
          ports: [
            { port: 53, protocol: "UDP" },
            { port: 53, protocol: "TCP" },
          ],
        },
        {
          to: [
            {
              ipBlock: {
                cidr: "0.0.0.0/0",
                except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"],
              },
            },
          ],
        },
      ],
    },
  };
  return { secret, pvc, pod, service, networkPolicy };
}
