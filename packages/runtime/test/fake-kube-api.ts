import { createServer, type IncomingMessage } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";

/** A request the fake API server received. */
export interface KubeCall {
  method: string;
  path: string;
  body: any;
}

const KINDS: Record<string, string> = {
  pods: "Pod",
  secrets: "Secret",
  services: "Service",
  persistentvolumeclaims: "PersistentVolumeClaim",
  networkpolicies: "NetworkPolicy",
};

/**
 * A local stand-in for the Kubernetes API server: stores objects per kind,
 * records every call, and reports a created pod as Running and Ready (as a
 * kubelet would once the readiness probe passes). Drives the Kubernetes driver
 * through the real @kubernetes/client-node over HTTP.
 */
export async function startFakeKubeApi() {
  const calls: KubeCall[] = [];
  const objects = new Map<string, any>(); // "<kind>/<ns>/<name>"
  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    return raw ? JSON.parse(raw) : undefined;
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://kube");
    const body = await readBody(req);
    calls.push({ method: req.method ?? "GET", path: url.pathname, body });
    const send = (code: number, payload: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    const status = (code: number, reason: string) =>
      send(code, { kind: "Status", apiVersion: "v1", status: "Failure", reason, code, message: reason });
    const m = url.pathname.match(
      /^\/(?:api\/v1|apis\/networking\.k8s\.io\/v1)\/namespaces\/([^/]+)\/([a-z]+)(?:\/([^/]+))?$/,
    );
    if (!m || !KINDS[m[2] ?? ""]) return status(404, "NotFound");
    const [, ns, plural, name] = m;
    const key = (n: string) => `${plural}/${ns}/${n}`;
    if (req.method === "POST" && !name) {
      const objName = body?.metadata?.name as string;
      if (objects.has(key(objName))) return status(409, "AlreadyExists");
      const obj = { ...body, metadata: { ...body.metadata, namespace: ns, uid: `${plural}-${objects.size}` } };
      if (plural === "pods")
        obj.status = { phase: "Running", podIP: "10.0.0.9", conditions: [{ type: "Ready", status: "True" }] };
      objects.set(key(objName), obj);
      return send(201, obj);
    }
    if (!name) return status(405, "MethodNotAllowed");
    const existing = objects.get(key(name));
    if (req.method === "GET") return existing ? send(200, existing) : status(404, "NotFound");
    if (req.method === "PUT") {
      if (!existing) return status(404, "NotFound");
      objects.set(key(name), { ...body, metadata: { ...body.metadata, namespace: ns } });
      return send(200, objects.get(key(name)));
    }
    if (req.method === "DELETE") {
      if (!existing) return status(404, "NotFound");
      objects.delete(key(name));
      return send(200, existing);
    }
    status(405, "MethodNotAllowed");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "fake", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "reef" }],
    contexts: [{ name: "fake", cluster: "fake", user: "reef" }],
    currentContext: "fake",
  });
  return {
    kubeConfig,
    calls,
    objects,
    /** Simulates the gateway container dying. */
    crash(namespace: string, podName: string, exitCode: number) {
      const pod = objects.get(`pods/${namespace}/${podName}`);
      if (pod) pod.status = { phase: "Failed", containerStatuses: [{ state: { terminated: { exitCode } } }] };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
