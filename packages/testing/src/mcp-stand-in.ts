import { randomBytes, randomUUID } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { z } from "zod";

/** A request the MCP stand-in received: what a test checks credentials and traffic against. */
export interface McpRequestRecord {
  method: string;
  path: string;
  authorization: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  /** JSON-RPC method when the body was one (`initialize`, `tools/list`, `tools/call`…). */
  rpcMethod: string | undefined;
}

export interface McpStandIn {
  /** Streamable HTTP endpoint: `http://127.0.0.1:<port>/mcp`. */
  url: string;
  /** Legacy SSE endpoint: `http://127.0.0.1:<port>/sse` (messages posted to `/messages?sessionId=…`). */
  sseUrl: string;
  /** The value the `nonce` tool returns: a test looks for it in answers and traces. */
  nonce: string;
  /** The bearer token the server requires (when it requires one). */
  token: string | undefined;
  requests: McpRequestRecord[];
  /** Tool calls received, in order, with their arguments. */
  calls: { tool: string; args: unknown }[];
  close(): Promise<void>;
}

export interface McpStandInOptions {
  /** Require `Authorization: Bearer <token>` (401 otherwise). Default: a random token. `null`: no auth. */
  token?: string | null;
  /** Extra tools beyond `nonce` and `echo` (names only; each returns `"<name> ran"`). */
  extraTools?: string[];
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function rpcMethodOf(body: unknown): string | undefined {
  const first = Array.isArray(body) ? body[0] : body;
  return first && typeof first === "object" && "method" in first ? String(first.method) : undefined;
}

/**
 * A real MCP server built with the official SDK, on 127.0.0.1, standing in for
 * a workspace's tool server (or n8n's MCP endpoint): tools `nonce` (returns a
 * random value fixed for the server's life), `echo` (returns its `text`), and
 * any `extraTools`. Serves streamable HTTP at `/mcp` and legacy SSE at `/sse`,
 * checks a bearer token, and records every request.
 */
export async function startMcpStandIn(opts: McpStandInOptions = {}): Promise<McpStandIn> {
  const nonce = `mcp-nonce-${randomBytes(8).toString("hex")}`;
  const token = opts.token === null ? undefined : (opts.token ?? `mcp-token-${randomBytes(12).toString("hex")}`);
  const requests: McpRequestRecord[] = [];
  const calls: McpStandIn["calls"] = [];

  function buildServer(): McpServer {
    const server = new McpServer({ name: "reef-mcp-stand-in", version: "1.0.0" });
    server.registerTool("nonce", { description: "Returns this server's nonce.", inputSchema: {} }, async () => {
      calls.push({ tool: "nonce", args: {} });
      return { content: [{ type: "text", text: nonce }] };
    });
    server.registerTool(
      "echo",
      { description: "Returns the text it is given.", inputSchema: { text: z.string() } },
      async (args) => {
        calls.push({ tool: "echo", args });
        return { content: [{ type: "text", text: `echo: ${args.text}` }] };
      },
    );
    for (const name of opts.extraTools ?? []) {
      server.registerTool(name, { description: `The ${name} tool.`, inputSchema: {} }, async () => {
        calls.push({ tool: name, args: {} });
        return { content: [{ type: "text", text: `${name} ran` }] };
      });
    }
    return server;
  }

  const streamable = new Map<string, StreamableHTTPServerTransport>();
  const sse = new Map<string, SSEServerTransport>();

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const body = req.method === "POST" ? await readJson(req) : undefined;
    requests.push({
      method: req.method ?? "",
      path: url.pathname,
      authorization: req.headers.authorization,
      headers: { ...req.headers },
      rpcMethod: rpcMethodOf(body),
    });
    if (token !== undefined && req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": "Bearer" });
      res.end(JSON.stringify({ error: "unauthorized" }));
      return;
    }
    if (url.pathname === "/mcp") {
      const sessionId = req.headers["mcp-session-id"];
      let transport = typeof sessionId === "string" ? streamable.get(sessionId) : undefined;
      if (!transport) {
        if (typeof sessionId === "string" || rpcMethodOf(body) !== "initialize") {
          res.writeHead(404, { "content-type": "application/json" });
          res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }));
          return;
        }
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            streamable.set(id, created);
          },
        });
        created.onclose = () => {
          if (created.sessionId) streamable.delete(created.sessionId);
        };
        // The SDK declares its own transport with optional callbacks, which exactOptionalPropertyTypes rejects.
        await buildServer().connect(created as Transport);
        transport = created;
      }
      await transport.handleRequest(req, res, body);
      return;
    }
    if (url.pathname === "/sse" && req.method === "GET") {
      const transport = new SSEServerTransport("/messages", res);
      sse.set(transport.sessionId, transport);
      transport.onclose = () => sse.delete(transport.sessionId);
      await buildServer().connect(transport);
      return;
    }
    if (url.pathname === "/messages" && req.method === "POST") {
      const transport = sse.get(url.searchParams.get("sessionId") ?? "");
      if (!transport) {
        res.writeHead(404).end("no such session");
        return;
      }
      await transport.handlePostMessage(req, res, body);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    sseUrl: `http://127.0.0.1:${port}/sse`,
    nonce,
    token,
    requests,
    calls,
    async close() {
      for (const t of streamable.values()) await t.close().catch(() => {});
      for (const t of sse.values()) await t.close().catch(() => {});
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
