import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NOT_ALLOWED_MESSAGE, type ProbeTransport, probeProvider } from "../src/providers/provider-catalog.ts";

// A server that accepts connections and never answers: a provider that hangs.
let silent: Server;
let port = 0;
const sockets: Socket[] = [];
beforeAll(async () => {
  silent = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const address = silent.address();
  port = typeof address === "object" && address ? address.port : 0;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => silent.close(() => r()));
});

describe("probeProvider", () => {
  it("gives up on a provider that does not answer, and says so", async () => {
    const started = Date.now();
    const r = await probeProvider(
      { kind: "openai-compatible", baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: "k" },
      { timeoutMs: 300, allowedHosts: [`127.0.0.1:${port}`] },
    );
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("refuses a host that does not resolve like a private one, without saying which", async () => {
    const r = await probeProvider(
      { kind: "openai", baseUrl: "http://no-such-host.invalid/v1", apiKey: "k" },
      { timeoutMs: 5000 },
    );
    expect(r).toMatchObject({ ok: false, reason: "not_allowed", message: NOT_ALLOWED_MESSAGE });
  });

  it("refuses loopback unless allowed, and then says nothing about what failed to answer", async () => {
    const r = await probeProvider(
      { kind: "openai-compatible", baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: "k" },
      { timeoutMs: 300 },
    );
    expect(r).toMatchObject({ ok: false, reason: "not_allowed", message: NOT_ALLOWED_MESSAGE });
    // Allowed but closed: a plain "could not connect", no socket error code.
    const closed = createHttpServer();
    await new Promise<void>((done) => closed.listen(0, "127.0.0.1", done));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((done) => closed.close(() => done()));
    const down = await probeProvider(
      { kind: "openai-compatible", baseUrl: `http://127.0.0.1:${closedPort}/v1`, apiKey: "k" },
      { timeoutMs: 2000, allowedHosts: ["127.0.0.1"] },
    );
    expect(down).toMatchObject({ ok: false, reason: "unreachable" });
    if (!down.ok) expect(down.message).not.toMatch(/ECONN|refused|listening/i);
  });

  it("re-checks every redirect and never carries the key to another origin", async () => {
    const seen: { port: number; auth: string | undefined }[] = [];
    const listen = async (handler: Parameters<typeof createHttpServer>[1]) => {
      const srv = createHttpServer(handler);
      await new Promise<void>((done) => srv.listen(0, "127.0.0.1", done));
      return { srv, port: (srv.address() as { port: number }).port };
    };
    const target = await listen((req, res) => {
      seen.push({ port: target.port, auth: req.headers.authorization });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ data: [{ id: "m" }] }));
    });
    const hop = await listen((req, res) => {
      seen.push({ port: hop.port, auth: req.headers.authorization });
      res.writeHead(302, { location: `http://127.0.0.1:${target.port}/v1/models` });
      res.end();
    });
    try {
      const input = { kind: "openai-compatible" as const, baseUrl: `http://127.0.0.1:${hop.port}/v1`, apiKey: "sk-k" };
      // The first hop is allowed, the second is not: refused, and the second never called.
      const refused = await probeProvider(input, { timeoutMs: 2000, allowedHosts: [`127.0.0.1:${hop.port}`] });
      expect(refused).toMatchObject({ ok: false, reason: "not_allowed" });
      expect(seen.map((s) => s.port)).toEqual([hop.port]);
      // Both allowed: followed, with the key only on the first origin.
      const ok = await probeProvider(input, { timeoutMs: 2000, allowedHosts: ["127.0.0.1"] });
      expect(ok).toMatchObject({ ok: true, models: ["m"] });
      expect(seen.slice(1)).toEqual([
        { port: hop.port, auth: "Bearer sk-k" },
        { port: target.port, auth: undefined },
      ]);
    } finally {
      await new Promise<void>((done) => hop.srv.close(() => done()));
      await new Promise<void>((done) => target.srv.close(() => done()));
    }
  });

  it("speaks each vendor's auth: Anthropic's x-api-key on /v1/models, Bearer elsewhere", async () => {
    const seen: { url: string; headers: Record<string, string> }[] = [];
    const fake: ProbeTransport = async (url, init) => {
      seen.push({ url, headers: init.headers });
      return { status: 200, text: JSON.stringify({ data: [{ id: "b" }, { id: "a" }, { id: "a" }] }) };
    };
    const anthropic = await probeProvider(
      { kind: "anthropic", baseUrl: "https://api.anthropic.com", apiKey: "sk-ant" },
      { timeoutMs: 1000, transport: fake },
    );
    expect(anthropic).toMatchObject({ ok: true, models: ["a", "b"] });
    expect(seen[0]?.url).toBe("https://api.anthropic.com/v1/models");
    expect(seen[0]?.headers).toMatchObject({ "x-api-key": "sk-ant" });
    await probeProvider(
      { kind: "openrouter", baseUrl: "https://openrouter.ai/api/v1", apiKey: "sk-or" },
      { timeoutMs: 1000, transport: fake },
    );
    expect(seen[1]).toMatchObject({
      url: "https://openrouter.ai/api/v1/models",
      headers: { authorization: "Bearer sk-or" },
    });
    // Keyless (Ollama): no Authorization header at all.
    await probeProvider(
      { kind: "ollama", baseUrl: "http://127.0.0.1:11434/v1", apiKey: undefined },
      { timeoutMs: 1000, transport: fake },
    );
    expect(seen[2]?.headers.authorization).toBeUndefined();
  });

  it("treats an answer that is not a model list as an upstream error", async () => {
    const html: ProbeTransport = async () => ({ status: 200, text: "<html>" });
    const r = await probeProvider(
      { kind: "openai", baseUrl: "https://x.example/v1", apiKey: "k" },
      { timeoutMs: 1000, transport: html },
    );
    expect(r).toMatchObject({ ok: false, reason: "upstream_error" });
  });
});
