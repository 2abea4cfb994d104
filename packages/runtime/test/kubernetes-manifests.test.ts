import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { ENV_NAMES, parseConfig } from "@reef/config";
import { Deployment } from "kubernetes-models/apps/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { KubernetesDriver } from "../src/kubernetes/kubernetes-driver.ts";
import { type KubeCall, startFakeKubeApi } from "./fake-kube-api.ts";

// The manifests are YAML read by kubectl, so the test reads them loosely typed, as kubectl does.
type Obj = any;

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DIR = join(ROOT, "deploy/kubernetes");
const DRIVER_SOURCE = join(ROOT, "packages/runtime/src/kubernetes/kubernetes-driver.ts");
const SERVICES_SOURCE = join(ROOT, "apps/server/src/services.ts");
const GUIDE = join(ROOT, "docs/deploy-kubernetes.md");

/** The kinds Reef's manifests may use, each with its API schema from kubernetes-models. */
const MODELS: Record<string, new (data: Obj) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Service": Service,
  "v1/Secret": Secret,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

function loadYaml(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(join(DIR, file), "utf8"));
  if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
  return docs.flatMap((doc, i) => {
    if (doc.errors.length) throw new Error(`${file} document ${i}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value = doc.toJS();
    return value == null ? [] : [value];
  });
}

interface AttributeType {
  baseName: string;
  type: string;
}

/**
 * Fields the API server does not know. The OpenAPI schemas kubernetes-models
 * validates with allow extra properties, but `kubectl apply` (strict field
 * validation, its default) rejects them, and a misspelt security field that
 * were silently dropped would be worse. The model classes of
 * @kubernetes/client-node list every field of every type.
 */
function unknownFields(value: unknown, type: string, path: string): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1]) {
    const item = array[1];
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, item, `${path}[${i}]`)) : [];
  }
  const model = (k8s as Record<string, unknown>)[type] as { getAttributeTypeMap?: () => AttributeType[] } | undefined;
  const attributes = model?.getAttributeTypeMap?.();
  if (!attributes || typeof value !== "object" || value === null) return [];
  const known = new Map(attributes.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([key, v]) => {
    const t = known.get(key);
    return t ? unknownFields(v, t, `${path}.${key}`) : [`${path}.${key}`];
  });
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const kustomization = loadYaml("kustomization.yaml")[0];
const applied: { file: string; obj: Obj }[] = (kustomization.resources as string[]).flatMap((file) =>
  loadYaml(file).map((obj) => ({ file, obj })),
);
const secretExample = loadYaml("secret.example.yaml");
const objects = applied.map((a) => a.obj);
const one = (kind: string, name?: string): Obj => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ""}, found ${found.length}`);
  return found[0];
};

const deployment = one("Deployment");
const podSpec = deployment.spec.template.spec;
const reefLabels: Record<string, string> = deployment.spec.template.metadata.labels;
const container = podSpec.containers.find((c: Obj) => c.name === "reef");
const containerPort = (nameOrNumber: string | number): number =>
  typeof nameOrNumber === "number"
    ? nameOrNumber
    : container.ports.find((p: Obj) => p.name === nameOrNumber)?.containerPort;
const env = (name: string): Obj => container.env.find((e: Obj) => e.name === name);
const runtimeNamespace: string = env("REEF_KUBERNETES_NAMESPACE")?.value;
const reefService = one("Service", "reef");

/** The labels services.ts gives the driver as "Reef's pods" (it inlines them). */
function reefSelectorFromServices(): Record<string, string> {
  const found = /reefSelector:\s*(\{[^}]*\})/.exec(readFileSync(SERVICES_SOURCE, "utf8"));
  if (!found?.[1]) throw new Error("apps/server/src/services.ts no longer passes a literal reefSelector");
  return JSON.parse(found[1]);
}

/** "<apiGroup>/<resource>/<verb>" for each API call the driver's source makes. */
function rbacFromDriverSource(): string[] {
  const source = readFileSync(DRIVER_SOURCE, "utf8");
  const all = [...source.matchAll(/this\.#(core|net)\s*\.\s*(\w+)\(/g)];
  const verbs: Record<string, string> = {
    create: "create",
    read: "get",
    delete: "delete",
    replace: "update",
    patch: "patch",
    list: "list",
  };
  return all.map(([, client, method]) => {
    const m = /^(create|read|delete|replace|patch|list)Namespaced(\w+)$/.exec(method ?? "");
    if (!m?.[1] || !m[2]) throw new Error(`unrecognised Kubernetes API call in the driver: ${method}`);
    const kind = m[2].toLowerCase();
    const resource = kind.endsWith("y") ? `${kind.slice(0, -1)}ies` : `${kind}s`;
    return `${client === "net" ? "networking.k8s.io" : ""}/${resource}/${verbs[m[1]]}`;
  });
}

/** "<apiGroup>/<resource>/<verb>" for a request the fake API server recorded. */
function rbacOfCall(call: KubeCall): { namespace: string; permission: string } {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/v1)\/namespaces\/([^/]+)\/([a-z]+)(\/[^/]+)?$/.exec(call.path);
  if (!m?.[2] || !m[3]) throw new Error(`unexpected API path ${call.path}`);
  const named = Boolean(m[4]);
  const verb = { POST: "create", GET: named ? "get" : "list", DELETE: "delete", PUT: "update", PATCH: "patch" }[
    call.method
  ];
  return { namespace: m[2], permission: `${m[1] ?? ""}/${m[3]}/${verb}` };
}

const granted = (role: Obj): string[] =>
  role.rules.flatMap((r: Obj) =>
    (r.apiGroups as string[]).flatMap((g) =>
      (r.resources as string[]).flatMap((res) => (r.verbs as string[]).map((v) => `${g}/${res}/${v}`)),
    ),
  );

describe("deploy/kubernetes manifests", () => {
  it("every document is a known kind that passes its Kubernetes API schema, with no unknown field", () => {
    expect(applied.length).toBeGreaterThan(0);
    for (const { file, obj } of [...applied, ...secretExample.map((obj) => ({ file: "secret.example.yaml", obj }))]) {
      const where = `${file}: ${obj?.kind} ${obj?.metadata?.name}`;
      const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
      expect(Model, `${where}: no schema for ${obj.apiVersion} ${obj.kind}`).toBeDefined();
      if (!Model) continue;
      expect(() => new Model(obj).validate(), where).not.toThrow();
      const type = `V1${obj.kind}`;
      expect((k8s as Record<string, unknown>)[type], `${where}: no field list`).toBeDefined();
      expect(unknownFields(obj, type, obj.kind), where).toEqual([]);
    }
  });

  it("the kustomization applies every manifest but the Secret example, and moves nothing between namespaces", () => {
    expect(kustomization).toMatchObject({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization" });
    // A kustomization-wide namespace would pull the Role out of the runtime namespace.
    expect(kustomization.namespace).toBeUndefined();
    const yamlFiles = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));
    expect([...kustomization.resources].sort()).toEqual(
      yamlFiles.filter((f) => f !== "kustomization.yaml" && f !== "secret.example.yaml").sort(),
    );
    for (const { obj } of applied) {
      if (obj.kind !== "Namespace") expect(obj.metadata.namespace, `${obj.kind} ${obj.metadata.name}`).toBeTruthy();
    }
    const namespaces = objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name);
    for (const o of objects) if (o.metadata.namespace) expect(namespaces).toContain(o.metadata.namespace);
  });

  it("Reef runs as two hardened replicas with resources and probes on its HTTP port", () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(matches(deployment.spec.selector.matchLabels, reefLabels)).toBe(true);
    expect(podSpec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(podSpec.hostNetwork ?? false).toBe(false);
    expect(podSpec.containers).toHaveLength(1);
    expect(container.image).toMatch(/^reef:/); // the placeholder docs/deploy-kubernetes.md tells you to replace
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(container.securityContext.capabilities.add ?? []).toEqual([]);
    for (const kind of ["requests", "limits"]) {
      expect(container.resources[kind], kind).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    }
    const http = containerPort("http");
    expect(http).toBe(7420);
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
    expect(containerPort(container.readinessProbe.httpGet.port)).toBe(http);
    expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    expect(containerPort(container.livenessProbe.httpGet.port)).toBe(http);
    // A read-only root needs somewhere writable for the data dir and /tmp.
    const mounts = container.volumeMounts.map((m: Obj) => m.mountPath);
    expect(mounts).toEqual(expect.arrayContaining([env("REEF_DATA_DIR").value, "/tmp"]));

    const pdb = one("PodDisruptionBudget");
    expect(pdb.metadata.namespace).toBe(deployment.metadata.namespace);
    expect(matches(pdb.spec.selector.matchLabels, reefLabels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);

    expect(reefService.metadata.namespace).toBe(deployment.metadata.namespace);
    expect(matches(reefService.spec.selector, reefLabels)).toBe(true);
    expect(containerPort(reefService.spec.ports[0].targetPort)).toBe(http);
  });

  it("the Deployment's environment is a valid Reef config for the kubernetes driver", async () => {
    const known = new Set(Object.values(ENV_NAMES));
    for (const e of container.env) expect(known, `unknown setting ${e.name}`).toContain(e.name);
    // The Secret's values stand in for the secretKeyRefs, as the kubelet would resolve them.
    const literal = Object.fromEntries(
      container.env.filter((e: Obj) => "value" in e).map((e: Obj) => [e.name, e.value]),
    );
    const config = await parseConfig({
      env: {
        ...literal,
        DATABASE_URL: "postgresql://reef:pw@db.example:5432/reef",
        REEF_SECRET_KEY: randomBytes(32).toString("base64"),
      },
    });
    expect(config.runtimeDriver).toBe("kubernetes");
    expect(config.host).toBe("0.0.0.0");
    expect(config.port).toBe(containerPort("http"));
    expect(config.kubernetesNamespace).toBe(runtimeNamespace);
    expect(one("Namespace", runtimeNamespace)).toBeDefined();
    expect(config.runtimeImage).not.toBe(container.image);
    // Gateways call Reef's LLM proxy through the Service.
    const callback = new URL(config.runtimeCallbackUrl ?? "");
    const { name, namespace } = reefService.metadata;
    expect([`${name}.${namespace}.svc.cluster.local`, `${name}.${namespace}.svc`]).toContain(callback.hostname);
    expect(Number(callback.port)).toBe(reefService.spec.ports[0].port);
  });

  it("no secret value is written in the applied manifests; they come from the Secret the example describes", () => {
    expect(objects.filter((o) => o.kind === "Secret" || o.kind === "ConfigMap")).toEqual([]);
    for (const name of ["DATABASE_URL", "REEF_SECRET_KEY"]) {
      expect(env(name)?.value, name).toBeUndefined();
      expect(env(name)?.valueFrom?.secretKeyRef, name).toBeDefined();
    }
    for (const e of container.env) {
      if (/SECRET|PASSWORD|TOKEN|_KEY|DATABASE.*URL|SMTP_URL/.test(e.name)) {
        expect(e.value, `${e.name} is a literal`).toBeUndefined();
      }
    }
    const text = JSON.stringify(objects);
    expect(text).not.toMatch(/postgres(ql)?:\/\/[^"@/]+:[^"@/]+@/); // a URL with a password
    expect(text).not.toMatch(/"[A-Za-z0-9+/]{43}="/); // 32 bytes as base64
    expect(text).not.toMatch(/"[0-9a-f]{64}"/i); // 32 bytes as hex

    const [example] = secretExample;
    expect(secretExample).toHaveLength(1);
    expect(example.metadata.namespace).toBe(deployment.metadata.namespace);
    for (const e of container.env.filter((x: Obj) => x.valueFrom?.secretKeyRef)) {
      const ref = e.valueFrom.secretKeyRef;
      expect(ref.name, e.name).toBe(example.metadata.name);
      if (!ref.optional) expect(Object.keys(example.stringData), e.name).toContain(ref.key);
    }
    for (const value of Object.values(example.stringData)) expect(value).toContain("REPLACE-ME");
  });
});

describe("deploy/kubernetes access rules against the kubernetes driver", () => {
  let api: Awaited<ReturnType<typeof startFakeKubeApi>>;
  let gatewayPod: Obj;
  let driverPolicy: Obj;
  let permissions: { namespace: string; permission: string }[];
  const reefSelector = reefSelectorFromServices();

  beforeAll(async () => {
    api = await startFakeKubeApi();
    // The driver as services.ts builds it from this Deployment's settings, through its whole lifecycle.
    const driver = new KubernetesDriver({
      kubeConfig: api.kubeConfig,
      namespace: runtimeNamespace,
      image: env("REEF_RUNTIME_IMAGE").value,
      reefSelector,
      reefNamespace: deployment.metadata.namespace,
      readyTimeoutMs: 10_000,
    });
    const workspaceId = randomUUID();
    const handle = await driver.start(
      {
        workspaceId,
        token: "t".repeat(32),
        gateway: { providers: [], agents: [] },
        limits: { memoryMb: 1024, cpus: 1, pids: 256 },
      },
      AbortSignal.timeout(10_000),
    );
    gatewayPod = api.calls.find((c) => c.method === "POST" && c.body?.kind === "Pod")?.body;
    driverPolicy = api.calls.find((c) => c.method === "POST" && c.body?.kind === "NetworkPolicy")?.body;
    await driver.poll({ workspaceId, state: handle.state });
    await driver.stop({ workspaceId, state: handle.state }, { graceful: true });
    await driver.destroy({ workspaceId, state: handle.state });
    permissions = api.calls.map(rbacOfCall);
  });
  afterAll(() => api?.close());

  it("the driver's Role lives in the runtime namespace only and grants exactly the calls the driver makes", () => {
    expect(objects.filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding")).toEqual([]);
    const role = one("Role");
    expect(role.metadata.namespace).toBe(runtimeNamespace);
    for (const rule of role.rules) {
      expect(rule.resourceNames, "names are per workspace").toBeUndefined();
      for (const field of ["apiGroups", "resources", "verbs"]) expect(rule[field]).not.toContain("*");
    }
    const fromSource = new Set(rbacFromDriverSource());
    const made = new Set(permissions.map((p) => p.permission));
    expect(new Set(permissions.map((p) => p.namespace))).toEqual(new Set([runtimeNamespace]));
    // The lifecycle run exercised every call in the source, so neither list is missing one.
    expect(made).toEqual(fromSource);
    expect([...new Set(granted(role))].sort()).toEqual([...made].sort());
    // Never read a Secret back: Reef only writes a gateway's config into one and deletes it.
    expect(
      granted(role)
        .filter((p) => p.startsWith("/secrets/"))
        .sort(),
    ).toEqual(["/secrets/create", "/secrets/delete"]);

    const binding = one("RoleBinding");
    expect(binding.metadata.namespace).toBe(runtimeNamespace);
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name });
    const account = one("ServiceAccount");
    expect(podSpec.serviceAccountName).toBe(account.metadata.name);
    expect(podSpec.automountServiceAccountToken).not.toBe(false);
    expect(binding.subjects).toEqual([
      { kind: "ServiceAccount", name: account.metadata.name, namespace: account.metadata.namespace },
    ]);
  });

  it("the network policies select the gateway pods the driver creates and Reef's own pods", () => {
    expect(gatewayPod).toBeDefined();
    const gatewayLabels: Record<string, string> = gatewayPod.metadata.labels;
    const gatewayPort: number = gatewayPod.spec.containers[0].ports[0].containerPort;
    const reefNamespace = deployment.metadata.namespace;
    expect(matches(reefSelector, reefLabels), "the Deployment's pods carry the driver's reefSelector").toBe(true);
    expect(matches(reefSelector, gatewayLabels), "reefSelector must not match gateways").toBe(false);

    const policies = objects.filter((o) => o.kind === "NetworkPolicy");
    const gateways = policies.filter((p) => p.metadata.namespace === runtimeNamespace);
    expect(gateways).toHaveLength(1);
    const [gw] = gateways;
    expect(Object.keys(gw.spec.podSelector.matchLabels).length).toBeGreaterThan(0);
    expect(matches(gw.spec.podSelector.matchLabels, gatewayLabels)).toBe(true);
    // Every gateway, not one workspace's.
    expect(gw.spec.podSelector.matchLabels["reef.dev/workspace"]).toBeUndefined();
    expect([...gw.spec.policyTypes].sort()).toEqual(["Egress", "Ingress"]);

    // A peer in Reef's namespace carrying Reef's labels (the namespace label is set by Kubernetes).
    const isReef = (peer: Obj) =>
      peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === reefNamespace &&
      matches(peer.podSelector?.matchLabels ?? {}, reefLabels) &&
      Object.keys(peer.podSelector?.matchLabels ?? {}).length > 0 &&
      !peer.ipBlock;
    expect(gw.spec.ingress).toHaveLength(1);
    expect(gw.spec.ingress[0].from.every(isReef)).toBe(true);
    // The driver's own per-workspace policy admits Reef from its namespace too, not only pods beside the gateway.
    expect(driverPolicy.spec.ingress.flatMap((r: Obj) => r.from).every(isReef)).toBe(true);
    expect(gw.spec.ingress[0].ports).toEqual([{ port: gatewayPort, protocol: "TCP" }]);

    expect(gw.spec.egress).toHaveLength(2);
    const [toReef, toDns] = gw.spec.egress;
    expect(toReef.to.every(isReef)).toBe(true);
    expect(toReef.ports).toEqual([{ port: containerPort("http"), protocol: "TCP" }]);
    expect(toDns.to).toEqual([
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
        podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
      },
    ]);
    expect(toDns.ports.map((p: Obj) => `${p.port}/${p.protocol}`).sort()).toEqual(["53/TCP", "53/UDP"]);

    const reef = policies.filter((p) => p.metadata.namespace === reefNamespace);
    expect(reef).toHaveLength(1);
    expect(matches(reef[0].spec.podSelector.matchLabels, reefLabels)).toBe(true);
    expect(reef[0].spec.ingress.flatMap((r: Obj) => r.ports.map((p: Obj) => p.port))).toEqual([containerPort("http")]);
  });
});

const kubectlProbe = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8", timeout: 20_000 });
const hasKubectl = kubectlProbe.status === 0;
if (!hasKubectl)
  console.warn("kubernetes-manifests: kubectl is not installed; skipping the `kubectl kustomize` builds");

describe.skipIf(!hasKubectl)("deploy/kubernetes built by kubectl kustomize", () => {
  const build = (dir: string): Obj[] =>
    parseAllDocuments(execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60_000 })).map((d) =>
      d.toJS(),
    );
  const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

  it("builds exactly the objects checked above", () => {
    const built = build(DIR);
    expect(built.map(key).sort()).toEqual(objects.map(key).sort());
    for (const o of built) expect(o, key(o)).toEqual(objects.find((x) => key(x) === key(o)));
  });

  it("the overlay in docs/deploy-kubernetes.md replaces both images and changes nothing else", () => {
    const block = /<!-- overlay example[^>]*-->\s*```yaml\n([\s\S]*?)```/.exec(readFileSync(GUIDE, "utf8"))?.[1];
    expect(block, "the guide's overlay example").toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), "reef-overlay-"));
    try {
      // The guide's overlay sits next to a checkout; here it points at this one (kustomize wants a relative path).
      writeFileSync(
        join(dir, "kustomization.yaml"),
        (block ?? "").replace("../reef/deploy/kubernetes", relative(dir, DIR)),
      );
      const built = build(dir);
      const reef = built.find((o) => o.kind === "Deployment");
      const c = reef.spec.template.spec.containers[0];
      expect(c.image).toBe("registry.example.com/reef:1.0.0");
      expect(c.env.find((e: Obj) => e.name === "REEF_RUNTIME_IMAGE").value).toBe(
        "registry.example.com/reef-gateway:1.0.0",
      );
      // Merged by name (the patched entry moves first), not appended: no duplicate, none lost.
      const names = (list: Obj[]) => list.map((e: Obj) => e.name).sort();
      expect(names(c.env)).toEqual(names(container.env));
      const unchanged = (o: Obj) => (o.kind === "Deployment" ? null : o);
      expect(built.map(unchanged)).toEqual(expect.arrayContaining(objects.map(unchanged)));
      expect(built).toHaveLength(objects.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
