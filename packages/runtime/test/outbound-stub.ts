import { chmod, chown, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { LLM_PROXY_PATH, type RuntimeOutbound } from "../src/driver.ts";

/** What the stub saw, for assertions. */
export interface OutboundStub {
  /** LLM calls forwarded, with the credential the gateway presented. */
  calls: { providerId: string; path: string; credential: string | undefined }[];
  /** Requests refused: a wrong credential, CONNECT or absolute-URI (egress), anything else. */
  refused: { kind: "credential" | "connect" | "forward" | "other"; target: string }[];
  /** Socket paths listened on, and those closed again. */
  listened: string[];
  closed: string[];
  /** A RuntimeOutbound for one start, accepting `credentials` (by provider id). */
  outbound(credentials: Record<string, string>): RuntimeOutbound;
}

/**
 * A stand-in for Reef's outbound server in driver tests: `/llm/<provider>/<rest>`
 * is checked against the credential minted for the start and forwarded to the
 * LLM stand-in (`upstream`, its base URL) with the vendor key, which the gateway
 * never sees; CONNECT and absolute-URI requests are refused (no egress here).
 */
export function createOutboundStub(opts: { upstream: string; apiKey: string }): OutboundStub {
  const stub: OutboundStub = {
    calls: [],
    refused: [],
    listened: [],
    closed: [],
    outbound(credentials) {
      return {
        credentials,
        async listen(path, owner) {
          const sockets = new Set<Socket>();
          // A gateway killed mid-answer cuts the forwarded stream: that is the test's point, not an error here.
          const server = createServer((req, res) => void handle(credentials, req, res).catch(() => res.destroy()));
          server.on("connection", (s) => {
            sockets.add(s);
            s.on("close", () => sockets.delete(s));
          });
          server.on("connect", (req: IncomingMessage, socket: Socket) => {
            stub.refused.push({ kind: "connect", target: req.url ?? "" });
            socket.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
          });
          await rm(path, { force: true });
          await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(path, () => resolve());
          });
          if (owner) await chown(path, owner.uid, owner.gid);
          await chmod(path, 0o600);
          stub.listened.push(path);
          return {
            close: async () => {
              for (const s of sockets) s.destroy();
              await new Promise<void>((resolve) => server.close(() => resolve()));
              stub.closed.push(path);
            },
          };
        },
      };
    },
  };

  async function handle(credentials: Record<string, string>, req: IncomingMessage, res: ServerResponse) {
    const url = req.url ?? "/";
    if (/^https?:\/\//i.test(url)) {
      stub.refused.push({ kind: "forward", target: url });
      res.writeHead(403).end();
      return;
    }
    const m = new RegExp(`^${LLM_PROXY_PATH}/([a-z0-9-]+)/(.*)$`).exec(url);
    if (!m) {
      stub.refused.push({ kind: "other", target: url });
      res.writeHead(404).end();
      return;
    }
    const [, providerId = "", rest = ""] = m;
    const credential = req.headers.authorization?.replace(/^Bearer /, "");
    if (!credentials[providerId] || credential !== credentials[providerId]) {
      stub.refused.push({ kind: "credential", target: url });
      res.writeHead(401, { "content-type": "application/json" }).end('{"error":{"message":"bad credential"}}');
      return;
    }
    stub.calls.push({ providerId, path: `/${rest}`, credential });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const upstream = await fetch(`${opts.upstream.replace(/\/+$/, "")}/${rest}`, {
      method: req.method ?? "GET",
      headers: {
        authorization: `Bearer ${opts.apiKey}`,
        "content-type": req.headers["content-type"] ?? "application/json",
      },
      ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
    });
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
    if (upstream.body) for await (const part of upstream.body) res.write(part);
    res.end();
  }

  return stub;
}
