import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeProvider } from "../src/providers/provider-catalog.ts";

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
      { timeoutMs: 300 },
    );
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("names a host that does not resolve", async () => {
    const r = await probeProvider(
      { kind: "openai", baseUrl: "http://no-such-host.invalid/v1", apiKey: "k" },
      { timeoutMs: 5000 },
    );
    expect(r).toMatchObject({ ok: false, reason: "unreachable" });
    if (!r.ok) expect(r.message).toMatch(/does not resolve|connection failed/);
  });

  it("speaks each vendor's auth: Anthropic's x-api-key on /v1/models, Bearer elsewhere", async () => {
    const seen: { url: string; headers: Record<string, string> }[] = [];
    const fake = (async (url: string, init: RequestInit) => {
      seen.push({ url, headers: init.headers as Record<string, string> });
      return new Response(JSON.stringify({ data: [{ id: "b" }, { id: "a" }, { id: "a" }] }), { status: 200 });
    }) as unknown as typeof fetch;
    const anthropic = await probeProvider(
      { kind: "anthropic", baseUrl: "https://api.anthropic.com", apiKey: "sk-ant" },
      { timeoutMs: 1000, fetch: fake },
    );
    expect(anthropic).toMatchObject({ ok: true, models: ["a", "b"] });
    expect(seen[0]?.url).toBe("https://api.anthropic.com/v1/models");
    expect(seen[0]?.headers).toMatchObject({ "x-api-key": "sk-ant" });
    await probeProvider(
      { kind: "openrouter", baseUrl: "https://openrouter.ai/api/v1", apiKey: "sk-or" },
      { timeoutMs: 1000, fetch: fake },
    );
    expect(seen[1]).toMatchObject({
      url: "https://openrouter.ai/api/v1/models",
      headers: { authorization: "Bearer sk-or" },
    });
    // Keyless (Ollama): no Authorization header at all.
    await probeProvider(
      { kind: "ollama", baseUrl: "http://127.0.0.1:11434/v1", apiKey: undefined },
      { timeoutMs: 1000, fetch: fake },
    );
    expect(seen[2]?.headers.authorization).toBeUndefined();
  });

  it("treats an answer that is not a model list as an upstream error", async () => {
    const html = (async () => new Response("<html>", { status: 200 })) as unknown as typeof fetch;
    const r = await probeProvider(
      { kind: "openai", baseUrl: "https://x.example/v1", apiKey: "k" },
      { timeoutMs: 1000, fetch: html },
    );
    expect(r).toMatchObject({ ok: false, reason: "upstream_error" });
  });
});
