import { mkdtempSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extract } from "tar-stream";

/** A request the fake received, for asserting what the driver asked Docker to do. */
export interface EngineCall {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

interface FakeContainer {
  id: string;
  name: string;
  create: Record<string, any>;
  files: Map<string, string>;
  /** Directories the uploads created or changed: owner and mode, by path. */
  dirs: Map<string, { uid: number; gid: number; mode: number }>;
  running: boolean;
  paused?: boolean;
  exitCode: number;
  oomKilled: boolean;
  /** What the container printed, newest last (served by the logs endpoint, multiplexed as the Engine does). */
  output: string[];
  /** Exit with this code and output at start instead of serving (a gateway that cannot start). */
  failAtStart?: { code: number; output: string[] };
  gateway?: Server;
  hostPort?: number;
}

/**
 * A local stand-in for the Docker Engine API on a unix socket. It records every
 * call and, when a container "starts", runs a stub gateway on loopback that
 * answers the probes and checks the bearer token from the config the driver
 * uploaded: enough for the driver conformance suite, no Docker needed.
 */
export async function startFakeDockerEngine() {
  const socketPath = join(mkdtempSync(join(tmpdir(), "reef-fake-docker-")), "docker.sock");
  const calls: EngineCall[] = [];
  const containers = new Map<string, FakeContainer>();
  // The Engine API takes a container's id or its name wherever it takes one.
  const find = (idOrName: string | undefined) => {
    const key = decodeURIComponent(idOrName ?? "");
    return containers.get(key) ?? [...containers.values()].find((c) => c.name === key);
  };
  const networks = new Map<string, Record<string, unknown>>();
  /** Containers connected to each network after its creation (name or id), with their aliases. */
  const connected = new Map<string, Map<string, string[]>>();
  /** The next container created exits at start like this (one shot). */
  let nextFailure: FakeContainer["failAtStart"];
  /** Volumes by name: their create body and, once a one-shot container chowned their root, its owner. */
  const volumes = new Map<string, Record<string, unknown> & { owner?: { uid: number; gid: number } }>();
  let seq = 0;

  const readBody = async (req: IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  async function untar(buf: Buffer, c: FakeContainer): Promise<Map<string, string>> {
    const files = new Map<string, string>();
    const ex = extract();
    const done = new Promise<void>((resolve, reject) => {
      ex.on("entry", (header, stream, next) => {
        if (header.type === "directory") {
          c.dirs.set(header.name, { uid: header.uid ?? 0, gid: header.gid ?? 0, mode: header.mode ?? 0 });
          stream.resume();
          stream.on("end", () => next());
          return;
        }
        const chunks: Buffer[] = [];
        stream.on("data", (c: unknown) => chunks.push(c as Buffer));
        stream.on("end", () => {
          files.set(header.name, Buffer.concat(chunks).toString("utf8"));
          next();
        });
      });
      ex.on("finish", () => resolve());
      ex.on("error", reject);
    });
    ex.end(buf);
    await done;
    return files;
  }

  function startGateway(c: FakeContainer): Promise<void> {
    const config = JSON.parse(c.files.get("openclaw.json") ?? "{}");
    const token = config.gateway?.auth?.token as string | undefined;
    c.gateway = createServer(async (req, res) => {
      // A frozen container accepts connections (the kernel does) but answers nothing until it is thawed.
      while (c.paused) await new Promise((r) => setTimeout(r, 20));
      if (req.url === "/readyz" || req.url === "/healthz") return res.writeHead(200).end("{}");
      if (req.headers.authorization !== `Bearer ${token}`) return res.writeHead(401).end();
      res.writeHead(200, { "content-type": "application/json" }).end('{"data":[]}');
    });
    return new Promise((resolve) =>
      c.gateway?.listen(0, "127.0.0.1", () => {
        const a = c.gateway?.address();
        c.hostPort = typeof a === "object" && a ? a.port : 0;
        resolve();
      }),
    );
  }

  const stopGateway = (c: FakeContainer) =>
    new Promise<void>((resolve) => {
      c.running = false;
      c.paused = false;
      if (!c.gateway) return resolve();
      c.gateway.closeAllConnections();
      c.gateway.close(() => resolve());
    });

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://docker");
    const path = url.pathname.replace(/^\/v\d+\.\d+/, "");
    const raw = await readBody(req);
    const isJson = (req.headers["content-type"] ?? "").includes("json");
    const body = isJson && raw.length ? JSON.parse(raw.toString("utf8")) : undefined;
    calls.push({ method: req.method ?? "GET", path, query: url.searchParams, body });
    const json = (status: number, payload?: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(payload === undefined ? "" : JSON.stringify(payload));
    };
    const notFound = () => json(404, { message: "No such object" });
    const on = (method: string | undefined, re: RegExp) =>
      method === undefined || req.method === method ? path.match(re) : null;

    if (req.method === "GET" && path === "/_ping") return res.writeHead(200).end("OK");
    if (req.method === "POST" && path === "/networks/create") {
      if (networks.has(body.Name)) return json(409, { message: "network exists" });
      networks.set(body.Name, body);
      return json(201, { Id: body.Name });
    }
    if (req.method === "POST" && path === "/volumes/create") {
      volumes.set(body.Name, body);
      return json(201, { Name: body.Name });
    }
    if (req.method === "POST" && path === "/containers/create") {
      const id = `c${++seq}`;
      const name = url.searchParams.get("name") ?? body.name ?? id;
      // A one-shot helper (`node -e`), not a gateway.
      const helper = body.Entrypoint?.[0] === "node";
      if (find(name)) return json(409, { message: `Conflict. The container name "/${name}" is already in use` });
      containers.set(id, {
        id,
        name,
        create: body,
        files: new Map(),
        dirs: new Map(),
        running: false,
        exitCode: 0,
        oomKilled: false,
        output: [],
        ...(nextFailure && !helper ? { failAtStart: nextFailure } : {}),
      });
      if (!helper) nextFailure = undefined;
      return json(201, { Id: id, Warnings: [] });
    }
    const archive = on("PUT", /^\/containers\/([^/]+)\/archive$/);
    if (archive) {
      const c = find(archive[1]);
      if (!c) return notFound();
      for (const [name, content] of await untar(raw, c)) c.files.set(name, content);
      return json(200);
    }
    const start = on(undefined, /^\/containers\/([^/]+)\/start$/);
    if (start) {
      const c = find(start[1]);
      if (!c) return notFound();
      const script = c.create.Entrypoint?.[0] === "node" ? String(c.create.Entrypoint?.[2] ?? "") : undefined;
      if (script !== undefined) {
        // A one-shot `node -e` helper: what it does to the volume root is all that matters here.
        const chown = /chownSync\("[^"]+",(\d+),(\d+)\)/.exec(script);
        const volume = volumes.get(c.create.HostConfig?.Mounts?.[0]?.Source);
        if (chown && volume && c.create.HostConfig?.CapAdd?.includes("CHOWN") && c.create.User === "0:0") {
          volume.owner = { uid: Number(chown[1]), gid: Number(chown[2]) };
        }
        c.exitCode = 0;
        return res.writeHead(204).end();
      }
      if (c.failAtStart) {
        c.exitCode = c.failAtStart.code;
        c.output.push(...c.failAtStart.output);
        return res.writeHead(204).end();
      }
      c.running = true;
      await startGateway(c);
      return res.writeHead(204).end();
    }
    const pause = on("POST", /^\/containers\/([^/]+)\/(pause|unpause)$/);
    if (pause) {
      const c = find(pause[1]);
      if (!c) return notFound();
      const want = pause[2] === "pause";
      // As the engine: only a running container pauses, and only a paused one unpauses.
      if (!c.running || c.paused === want)
        return json(409, { message: `container is ${want ? "already paused" : "not paused"}` });
      c.paused = want;
      return res.writeHead(204).end();
    }
    const inspect = on(undefined, /^\/containers\/([^/]+)\/json$/);
    if (inspect) {
      const c = find(inspect[1]);
      if (!c) return notFound();
      const port = Object.keys(c.create.ExposedPorts ?? {})[0] ?? "18789/tcp";
      return json(200, {
        Id: c.id,
        Name: `/${c.name}`,
        State: {
          Running: c.running,
          Paused: c.running && c.paused === true,
          ExitCode: c.exitCode,
          OOMKilled: c.oomKilled,
          Status: c.running ? "running" : "exited",
        },
        NetworkSettings: {
          Ports: c.running ? { [port]: [{ HostIp: "127.0.0.1", HostPort: String(c.hostPort) }] } : {},
        },
      });
    }
    const wait = on("POST", /^\/containers\/([^/]+)\/wait$/);
    if (wait) {
      const c = find(wait[1]);
      if (!c) return notFound();
      return json(200, { StatusCode: c.exitCode });
    }
    const volume = on("GET", /^\/volumes\/([^/]+)$/);
    if (volume) {
      const v = volumes.get(decodeURIComponent(volume[1] ?? ""));
      return v ? json(200, { Name: v.Name, Labels: v.Labels }) : notFound();
    }
    const logs = on("GET", /^\/containers\/([^/]+)\/logs$/);
    if (logs) {
      const c = find(logs[1]);
      if (!c) return notFound();
      const tail = Number(url.searchParams.get("tail") ?? "all");
      const lines = Number.isFinite(tail) ? c.output.slice(-tail) : c.output;
      const frames = lines.map((line, i) => {
        const payload = Buffer.from(`${line}\n`);
        const header = Buffer.alloc(8);
        header[0] = i % 2 ? 2 : 1;
        header.writeUInt32BE(payload.length, 4);
        return Buffer.concat([header, payload]);
      });
      res.writeHead(200, { "content-type": "application/vnd.docker.raw-stream" });
      return res.end(Buffer.concat(frames));
    }
    const link = on("POST", /^\/networks\/([^/]+)\/(connect|disconnect)$/);
    if (link) {
      const network = decodeURIComponent(link[1] ?? "");
      if (!networks.has(network)) return notFound();
      const members = connected.get(network) ?? new Map<string, string[]>();
      connected.set(network, members);
      if (link[2] === "connect") {
        if (members.has(body.Container))
          return json(403, { message: "endpoint with name reef already exists in network" });
        members.set(body.Container, body.EndpointConfig?.Aliases ?? []);
      } else if (!members.delete(body.Container)) {
        return json(403, { message: `container ${body.Container} is not connected to network ${network}` });
      }
      return json(200);
    }
    const halt = on(undefined, /^\/containers\/([^/]+)\/(stop|kill)$/);
    if (halt) {
      const c = find(halt[1]);
      if (!c) return notFound();
      if (!c.running) return res.writeHead(304).end();
      c.exitCode = halt[2] === "kill" ? 137 : 0;
      await stopGateway(c);
      return res.writeHead(204).end();
    }
    const removeContainer = on("DELETE", /^\/containers\/([^/]+)$/);
    if (removeContainer) {
      const c = find(removeContainer[1]);
      if (!c) return notFound();
      await stopGateway(c);
      containers.delete(c.id);
      return res.writeHead(204).end();
    }
    const removeVolume = on("DELETE", /^\/volumes\/([^/]+)$/);
    if (removeVolume) {
      return volumes.delete(decodeURIComponent(removeVolume[1] ?? "")) ? res.writeHead(204).end() : notFound();
    }
    const removeNetwork = on("DELETE", /^\/networks\/([^/]+)$/);
    if (removeNetwork) {
      const network = decodeURIComponent(removeNetwork[1] ?? "");
      if (connected.get(network)?.size) return json(403, { message: "network has active endpoints" });
      connected.delete(network);
      return networks.delete(decodeURIComponent(removeNetwork[1] ?? "")) ? res.writeHead(204).end() : notFound();
    }
    json(501, { message: `fake engine: ${req.method} ${path} not implemented` });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    calls,
    containers,
    networks,
    connected,
    volumes,
    /** The next container created exits with `code` at start, having printed `output`. */
    failNextStart(code: number, output: string[]) {
      nextFailure = { code, output };
    },
    /** The container is killed by its memory limit, as the kernel's OOM killer does. */
    async oomKill(id: string) {
      const c = find(id);
      if (!c) throw new Error(`no container ${id}`);
      c.exitCode = 137;
      c.oomKilled = true;
      await stopGateway(c);
    },
    async close() {
      for (const c of containers.values()) await stopGateway(c);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
