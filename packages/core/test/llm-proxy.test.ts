import { randomBytes, randomUUID } from "node:crypto";
import { lstat, writeFile } from "node:fs/promises";
import http, { type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withScope } from "@reef/db";
import type { GatewaySettings, RuntimeOutbound } from "@reef/runtime";
import { createTestDatabase, type LlmStandIn, startLlmStandIn, type TestDatabase } from "@reef/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashCredential } from "../src/outbound/llm-credentials.ts";
import { createRuntimeOutbound, type RuntimeOutboundService } from "../src/outbound/outbound-server.ts";
import type { ProviderFailure } from "../src/outbound/provider-failures.ts";
import { createQuotaService } from "../src/quotas/quota-service.ts";
import { createVault } from "../src/vault/vault-service.ts";
import type { WorkspaceGate } from "../src/workspace/workspace-access.ts";
import { FakeDriver } from "./fake-driver.ts";
import { runtimeTestKit, SYSTEM } from "./runtime-test-kit.ts";
import { call } from "./socket-http.ts";

// The LLM proxy on a runtime's own socket, against the LLM stand-in: no gateway
// is needed to prove what a gateway can and cannot do with its credentials.

const KEY = `sk-canary-${randomBytes(12).toString("hex")}`;
const OTHER_KEY = `sk-canary-b-${randomBytes(12).toString("hex")}`;

let t: TestDatabase;
let standIn: LlmStandIn;
let outbound: RuntimeOutboundService;
/** What the proxy told about providers that failed (see provider-failures.ts). */
const failures: ProviderFailure[] = [];
const vault = createVault({ keyring: { current: randomBytes(32), previous: [] } });
// The proxy uses only the quota functions that take the caller's transaction: no gate.
const quotas = createQuotaService({ gate: {} as WorkspaceGate, limits: { messages: null, tokens: null } });
const handles: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  standIn = await startLlmStandIn({ apiKey: KEY, models: ["alpha"], chunkDelayMs: 40 });
  outbound = createRuntimeOutbound({
    db: t.database.db,
    vault,
    quotas,
    allowedHosts: async () => ["127.0.0.1"],
    onProviderFailure: (f) => failures.push(f),
  });
});
afterAll(async () => {
  await outbound.close();
  await standIn.close();
  await t.drop();
});
afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.close()));
});

async function workspace(): Promise<string> {
  const id = randomUUID();
  await t.owner.query("insert into workspaces (id, name) values ($1, 'w')", [id]);
  return id;
}

/** A provider of `wid`, its key sealed by the vault as the provider service does. */
async function provider(
  wid: string,
  opts: { baseUrl?: string; key?: string; kind?: string } = {},
): Promise<GatewaySettings["providers"][number]> {
  const id = randomUUID();
  const sealed = await withScope(t.database.db, { workspaceId: wid }, (tx) => vault.seal(tx, wid, id, opts.key ?? KEY));
  await t.owner.query(
    "insert into providers (id, workspace_id, name, kind, base_url, api_key_sealed, models) values ($1, $2, $3, $4, $5, $6, '[\"alpha\"]')",
    [id, wid, `p-${id.slice(0, 8)}`, opts.kind ?? "openai-compatible", opts.baseUrl ?? standIn.baseUrl, sealed],
  );
  return { id, baseUrl: opts.baseUrl ?? standIn.baseUrl, api: "openai-completions", models: [{ id: "alpha" }] };
}

/** Starts `wid`'s runtime outbound side (fresh credentials) listening on a fresh socket. */
async function start(wid: string, providers: GatewaySettings["providers"]) {
  const out: RuntimeOutbound = await outbound.forStart(wid, { providers, agents: [] });
  const socketPath = join(tmpdir(), `reef-out-${randomBytes(6).toString("hex")}.sock`);
  handles.push(await out.listen(socketPath));
  return { out, socketPath };
}

const chat = (text: string, stream = true) => ({ model: "alpha", stream, messages: [{ role: "user", content: text }] });

/** The text of an OpenAI chat-completions SSE answer. */
function deltas(sse: string): string {
  return sse
    .split("\n\n")
    .filter((e) => e.startsWith("data: {"))
    .map((e) => JSON.parse(e.slice(6)).choices?.[0]?.delta?.content ?? "")
    .join("");
}

async function rows(wid: string) {
  await outbound.flush();
  const { rows } = await t.owner.query(
    "select provider_id, model, endpoint, prompt_tokens, completion_tokens, first_byte_ms, latency_ms, outcome, http_status from llm_calls where workspace_id = $1 order by id",
    [wid],
  );
  return rows;
}

async function audits(wid: string) {
  const { rows } = await t.owner.query(
    "select action, outcome, details from audit_log where workspace_id = $1 order by id",
    [wid],
  );
  return rows as { action: string; outcome: string; details: Record<string, unknown> }[];
}

async function monthTokens(wid: string): Promise<{ prompt: number; completion: number }> {
  await outbound.flush();
  const { rows } = await t.owner.query(
    "select prompt_tokens as prompt, completion_tokens as completion from usage_monthly where workspace_id = $1",
    [wid],
  );
  return rows[0]
    ? { prompt: Number(rows[0].prompt), completion: Number(rows[0].completion) }
    : { prompt: 0, completion: 0 };
}

describe("the LLM proxy on a runtime's socket", () => {
  it("forwards a streamed chat completion chunk by chunk with the real key, and meters it", async () => {
    const wid = await workspace();
    const p = await provider(wid);
    const { out, socketPath } = await start(wid, [p]);
    const credential = out.credentials[p.id] as string;
    expect(credential).toMatch(/^reef-llm-[A-Za-z0-9_-]{43}$/);
    const before = standIn.requests.length;
    const words = "one two three four five six seven eight";
    const answer = await call(socketPath, { path: `/llm/${p.id}/chat/completions`, credential, body: chat(words) });
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toContain("text/event-stream");
    expect(deltas(answer.text)).toBe(`Stand-in reply to: ${words}`);
    // Streamed as it was produced: 11 words 40 ms apart arrive spread over time, not at once at the end.
    expect(answer.arrivals.length).toBeGreaterThanOrEqual(5);
    expect((answer.arrivals.at(-1) ?? 0) - (answer.arrivals[0] ?? 0)).toBeGreaterThan(250);
    // The vendor saw the real key, never the credential, and was asked for usage.
    const seen = standIn.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.authorization).toBe(`Bearer ${KEY}`);
    expect(seen[0]?.body.stream_options).toEqual({ include_usage: true });
    // Metered: the tokens the vendor reported, on the workspace's month.
    const usageChunk = answer.text
      .split("\n\n")
      .map((e) => (e.startsWith("data: {") ? JSON.parse(e.slice(6)) : undefined))
      .find((e) => e?.usage);
    const [row] = await rows(wid);
    expect(row).toMatchObject({
      provider_id: p.id,
      model: "alpha",
      endpoint: "chat.completions",
      prompt_tokens: usageChunk.usage.prompt_tokens,
      completion_tokens: usageChunk.usage.completion_tokens,
      outcome: "ok",
      http_status: 200,
    });
    expect(row.completion_tokens).toBe(11);
    expect(row.first_byte_ms).toBeLessThanOrEqual(row.latency_ms);
    expect(await monthTokens(wid)).toEqual({ prompt: usageChunk.usage.prompt_tokens, completion: 11 });
    // The key is in nothing the gateway receives, nor in the audit trail.
    expect(JSON.stringify(answer)).not.toContain(KEY);
    expect(JSON.stringify(await audits(wid))).not.toContain(KEY);
  });

  it("serves non-streamed completions and the model list; other vendor APIs are not forwarded", async () => {
    const wid = await workspace();
    const p = await provider(wid);
    const { out, socketPath } = await start(wid, [p]);
    const credential = out.credentials[p.id] as string;
    const plain = await call(socketPath, {
      path: `/llm/${p.id}/chat/completions`,
      credential,
      body: chat("hi", false),
    });
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.text).choices[0].message.content).toBe("Stand-in reply to: hi");
    const models = await call(socketPath, { path: `/llm/${p.id}/models`, credential });
    expect(JSON.parse(models.text).data.map((m: { id: string }) => m.id)).toEqual(["alpha"]);
    // A key must not buy file access, fine-tuning or a walk out of the base URL.
    for (const path of ["files", "fine_tuning/jobs", "../v1/models", "models/..%2F..%2Fadmin"]) {
      const res = await call(socketPath, { path: `/llm/${p.id}/${path}`, credential, method: "GET" });
      expect(res.status, path).toBe(404);
    }
    const metered = await rows(wid);
    // Recorded as each call ends, in whatever order the writes commit.
    expect(
      metered
        .filter((r) => r.outcome === "ok")
        .map((r) => r.endpoint)
        .sort(),
    ).toEqual(["chat.completions", "models"]);
    expect(metered.find((r) => r.endpoint === "chat.completions").completion_tokens).toBe(4);
    const refused = metered.filter((r) => r.outcome === "refused");
    expect(refused).toHaveLength(4);
    expect(refused.every((r) => r.http_status === 404)).toBe(true);
  });

  it("refuses another workspace's credential, an unknown one and a rotated one, and audits each without the credential", async () => {
    const a = await workspace();
    const b = await workspace();
    const pa = await provider(a);
    const pb = await provider(b, { key: OTHER_KEY });
    const first = await start(a, [pa]);
    const other = await start(b, [pb]);
    const credentialB = other.out.credentials[pb.id] as string;
    const oldA = first.out.credentials[pa.id] as string;
    const before = standIn.requests.length;

    // B's valid credential, presented on A's socket (for B's provider, and for A's).
    const foreign = await call(first.socketPath, {
      path: `/llm/${pb.id}/chat/completions`,
      credential: credentialB,
      body: chat("x"),
    });
    expect(foreign.status).toBe(401);
    expect(JSON.parse(foreign.text).error).toMatchObject({ code: "invalid_api_key" });
    const crossed = await call(first.socketPath, {
      path: `/llm/${pa.id}/chat/completions`,
      credential: credentialB,
      body: chat("x"),
    });
    expect(crossed.status).toBe(401);
    const unknown = await call(first.socketPath, {
      path: `/llm/${pa.id}/chat/completions`,
      credential: "reef-llm-guess",
      body: chat("x"),
    });
    expect(unknown.status).toBe(401);

    // A restart rotates A's credentials: the old one stops working at once, the new one works.
    const second = await start(a, [pa]);
    const rotated = await call(second.socketPath, {
      path: `/llm/${pa.id}/chat/completions`,
      credential: oldA,
      body: chat("x"),
    });
    expect(rotated.status).toBe(401);
    // Anthropic-shaped where the gateway speaks Anthropic.
    const rotatedAnthropic = await call(second.socketPath, {
      path: `/llm/${pa.id}/v1/messages`,
      body: { model: "alpha", max_tokens: 5, messages: [] },
      headers: { "x-api-key": oldA, "anthropic-version": "2023-06-01" },
    });
    expect(rotatedAnthropic.status).toBe(401);
    expect(JSON.parse(rotatedAnthropic.text)).toMatchObject({ type: "error", error: { type: "authentication_error" } });
    const fresh = await call(second.socketPath, {
      path: `/llm/${pa.id}/chat/completions`,
      credential: second.out.credentials[pa.id] as string,
      body: chat("again"),
    });
    expect(fresh.status).toBe(200);
    // Nothing refused reached the vendor.
    expect(standIn.requests.length - before).toBe(1);

    const refusals = (await audits(a)).filter((e) => e.action === "llm_proxy.credential_refused");
    expect(refusals.map((e) => e.details.reason)).toEqual(["foreign", "foreign", "unknown", "revoked", "revoked"]);
    expect(refusals.every((e) => e.outcome === "denied")).toBe(true);
    const trail = JSON.stringify(await audits(a)) + JSON.stringify(await audits(b));
    for (const secret of [credentialB, oldA, "reef-llm-guess", KEY, OTHER_KEY]) expect(trail).not.toContain(secret);
    // B's trail says nothing of A's attempts; A's month records the refusals as calls.
    expect((await audits(b)).filter((e) => e.action === "llm_proxy.credential_refused")).toEqual([]);
    expect((await rows(a)).filter((r) => r.outcome === "refused")).toHaveLength(5);
  });

  it("tells at once when a provider refuses the connection or the key, and not when it answers", async () => {
    const wid = await workspace();
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = await provider(wid, { baseUrl: `http://127.0.0.1:${port}/v1` });
    const badKey = await provider(wid, { key: "sk-wrong-key-0123456789" });
    const fine = await provider(wid);
    const { out, socketPath } = await start(wid, [down, badKey, fine]);
    failures.length = 0;
    const ask = (p: { id: string }) =>
      call(socketPath, {
        path: `/llm/${p.id}/chat/completions`,
        credential: out.credentials[p.id] as string,
        body: chat("hi", false),
      });
    expect((await ask(fine)).status).toBe(200);
    expect(failures).toEqual([]);
    const refused = await ask(down);
    expect(refused.status).toBe(502);
    expect(failures).toEqual([{ workspaceId: wid, providerId: down.id, kind: "unreachable" }]);
    expect((await ask(badKey)).status).toBe(401);
    expect(failures.at(-1)).toEqual({ workspaceId: wid, providerId: badKey.id, kind: "auth" });
  });

  it("stops at once when the provider or the workspace is deleted", async () => {
    const wid = await workspace();
    const p = await provider(wid);
    const { out, socketPath } = await start(wid, [p]);
    const credential = out.credentials[p.id] as string;
    const path = `/llm/${p.id}/chat/completions`;
    expect((await call(socketPath, { path, credential, body: chat("ok", false) })).status).toBe(200);
    await t.owner.query("delete from providers where id = $1", [p.id]);
    const before = standIn.requests.length;
    expect((await call(socketPath, { path, credential, body: chat("gone", false) })).status).toBe(401);

    const w2 = await workspace();
    const p2 = await provider(w2);
    const s2 = await start(w2, [p2]);
    const c2 = s2.out.credentials[p2.id] as string;
    await t.owner.query("delete from workspaces where id = $1", [w2]);
    expect((await call(s2.socketPath, { path: `/llm/${p2.id}/models`, credential: c2 })).status).toBe(401);
    expect(standIn.requests.length).toBe(before);
  });

  it("refuses a workspace at its monthly token budget with a clear 429, without calling the vendor", async () => {
    const wid = await workspace();
    const p = await provider(wid);
    const { out, socketPath } = await start(wid, [p]);
    const credential = out.credentials[p.id] as string;
    const path = `/llm/${p.id}/chat/completions`;
    await t.owner.query("update workspaces set monthly_token_budget = 20 where id = $1", [wid]);
    // Under the budget: answered, and its tokens counted.
    expect(
      (await call(socketPath, { path, credential, body: chat("a long enough question to use tokens", false) })).status,
    ).toBe(200);
    const used = await monthTokens(wid);
    expect(used.prompt + used.completion).toBeGreaterThanOrEqual(20);
    const before = standIn.requests.length;
    const refused = await call(socketPath, { path, credential, body: chat("one more") });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text).error.message).toMatch(/monthly token budget is used up/);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(standIn.requests.length).toBe(before);
    expect((await rows(wid)).at(-1)).toMatchObject({ outcome: "budget", http_status: 429, provider_id: p.id });
    // reserveMessage reads the same numbers: the next chat message is refused too.
    const next = withScope(t.database.db, { workspaceId: wid }, (tx) => quotas.reserveMessage(tx, wid));
    await expect(next).rejects.toMatchObject({ code: "QUOTA_EXCEEDED", details: { limit: "tokens", max: 20 } });
    // An operator raising the budget lets calls through again.
    await t.owner.query("update workspaces set monthly_token_budget = null where id = $1", [wid]);
    expect((await call(socketPath, { path, credential, body: chat("more", false) })).status).toBe(200);
  });

  it("aborts the vendor's stream when the gateway goes away, and records what was used", async () => {
    const wid = await workspace();
    const p = await provider(wid);
    const { out, socketPath } = await start(wid, [p]);
    const credential = out.credentials[p.id] as string;
    const cutBefore = standIn.cutShort;
    const long = Array.from({ length: 60 }, (_, i) => `w${i}`).join(" ");
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          socketPath,
          path: `/llm/${p.id}/chat/completions`,
          method: "POST",
          headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
        },
        (res) => {
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on("error", () => {});
      req.end(JSON.stringify(chat(long)));
      setTimeout(() => reject(new Error("no first chunk")), 5_000);
    });
    // The stand-in notices at its next chunk (40 ms apart) that nobody listens.
    const deadline = Date.now() + 3_000;
    while (standIn.cutShort === cutBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(standIn.cutShort).toBe(cutBefore + 1);
    const deadline2 = Date.now() + 3_000;
    while ((await rows(wid)).length === 0 && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 20));
    expect((await rows(wid))[0]).toMatchObject({ outcome: "aborted", endpoint: "chat.completions" });
  });

  it("meters every call the vendor received: usage matches the stand-in's count, concurrent calls included", async () => {
    const wid = await workspace();
    const p = await provider(wid);
    const { out, socketPath } = await start(wid, [p]);
    const credential = out.credentials[p.id] as string;
    const before = standIn.requests.length;
    const path = `/llm/${p.id}/chat/completions`;
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        call(socketPath, { path, credential, body: chat(`q${i} background`, i % 2 === 0) }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const received = standIn.requests.slice(before);
    const metered = (await rows(wid)).filter((r) => r.endpoint === "chat.completions");
    expect(metered).toHaveLength(received.length);
    // Each call's completion is one token per word of "Stand-in reply to: q<i> background".
    expect(metered.reduce((n, r) => n + r.completion_tokens, 0)).toBe(12 * 5);
    const expectedPrompt = received.reduce((n, r) => n + (JSON.stringify(r.body.messages).length >> 2), 0);
    expect(await monthTokens(wid)).toEqual({ prompt: expectedPrompt, completion: 60 });
  });

  it("speaks Anthropic: x-api-key swapped for the real key, anthropic-version kept, usage from message_start and message_delta", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const vendor = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      const ev = (type: string, data: object) =>
        res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
      ev("message_start", { message: { usage: { input_tokens: 21, output_tokens: 1 } } });
      ev("content_block_delta", { delta: { type: "text_delta", text: "Hello" } });
      ev("message_delta", { delta: { stop_reason: "end_turn" }, usage: { output_tokens: 3 } });
      ev("message_stop", {});
      res.end();
    });
    await new Promise<void>((r) => vendor.listen(0, "127.0.0.1", r));
    try {
      const port = (vendor.address() as { port: number }).port;
      const wid = await workspace();
      const p = await provider(wid, { kind: "anthropic", baseUrl: `http://127.0.0.1:${port}` });
      const { out, socketPath } = await start(wid, [p]);
      const answer = await call(socketPath, {
        path: `/llm/${p.id}/v1/messages`,
        body: { model: "alpha", max_tokens: 10, stream: true, messages: [{ role: "user", content: "hi" }] },
        headers: { "x-api-key": out.credentials[p.id] as string, "anthropic-version": "2023-06-01" },
      });
      expect(answer.status).toBe(200);
      expect(answer.text).toContain("Hello");
      expect(seen[0]?.["x-api-key"]).toBe(KEY);
      expect(seen[0]?.authorization).toBeUndefined();
      expect(seen[0]?.["anthropic-version"]).toBe("2023-06-01");
      expect((await rows(wid))[0]).toMatchObject({ endpoint: "messages", prompt_tokens: 21, completion_tokens: 3 });
    } finally {
      await new Promise((r) => vendor.close(r));
    }
  });

  it("calls providers only where the outbound address policy allows", async () => {
    const strict = createRuntimeOutbound({ db: t.database.db, vault, quotas, allowedHosts: async () => [] });
    try {
      const wid = await workspace();
      const p = await provider(wid);
      const out = await strict.forStart(wid, { providers: [p], agents: [] });
      const socketPath = join(tmpdir(), `reef-out-${randomBytes(6).toString("hex")}.sock`);
      handles.push(await out.listen(socketPath));
      const before = standIn.requests.length;
      const res = await call(socketPath, {
        path: `/llm/${p.id}/chat/completions`,
        credential: out.credentials[p.id] as string,
        body: chat("x"),
      });
      expect(res.status).toBe(502);
      expect(JSON.parse(res.text).error.message).toMatch(/not a public address/);
      expect(standIn.requests.length).toBe(before);
    } finally {
      await strict.close();
    }
  });

  it("listens on a private socket, replacing whatever was left at its path, refuses egress without a proxy, and removes it on close", async () => {
    const wid = await workspace();
    const p = await provider(wid);
    const out = await outbound.forStart(wid, { providers: [p], agents: [] });
    const socketPath = join(tmpdir(), `reef-out-${randomBytes(6).toString("hex")}.sock`);
    // Left behind by a crash (or put there by the gateway): the listen must still bind.
    await writeFile(socketPath, "stale");
    const handle = await out.listen(socketPath);
    const stat = await lstat(socketPath);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    const egress = await call(socketPath, { path: "http://example.com/", method: "GET" });
    expect(egress.status).toBe(403);
    await handle.close();
    await expect(lstat(socketPath)).rejects.toMatchObject({ code: "ENOENT" });
    // Given to the gateway's own OS user (Reef runs as root here), still 0600.
    if (process.getuid?.() === 0) {
      const owned = await out.listen(socketPath, { uid: 65534, gid: 65534 });
      const st = await lstat(socketPath);
      expect([st.uid, st.gid, st.mode & 0o777]).toEqual([65534, 65534, 0o600]);
      await owned.close();
    }
  });
});

describe("runtime starts", () => {
  it("mint fresh credentials at each start for the driver, outside the gateway's settings, and keep only their hashes", async () => {
    const wid = await workspace();
    const p = await provider(wid);
    const settings: GatewaySettings = { providers: [p], agents: [] };
    const driver = new FakeDriver({ startDelayMs: 5 });
    const manager = runtimeTestKit(() => t).manager(driver, {
      settingsFor: async () => settings,
      outbound: (w, s) => outbound.forStart(w, s),
    });
    await manager.ensureRunning(SYSTEM, wid);
    const first = driver.starts[0]?.outbound?.credentials[p.id] as string;
    expect(first).toMatch(/^reef-llm-/);
    expect(JSON.stringify(driver.starts[0]?.gateway)).not.toContain(first);
    // Credentials are not settings: the next wake finds the gateway current and starts nothing.
    await manager.ensureRunning(SYSTEM, wid);
    expect(driver.starts).toHaveLength(1);
    await manager.stop(SYSTEM, wid, "test");
    await manager.ensureRunning(SYSTEM, wid);
    const second = driver.starts[1]?.outbound?.credentials[p.id] as string;
    expect(second).toMatch(/^reef-llm-/);
    expect(second).not.toBe(first);
    const { rows } = await t.owner.query("select credential_hash from llm_credentials where workspace_id = $1", [wid]);
    expect(rows.map((r) => r.credential_hash)).toEqual([hashCredential(second)]);
    expect(JSON.stringify(rows)).not.toContain(second);
  });
});

describe("proxy overhead", () => {
  it("adds little to the time to first byte (figures for the report)", async () => {
    const fast = await startLlmStandIn({ apiKey: KEY, models: ["alpha"] });
    try {
      const wid = await workspace();
      const p = await provider(wid, { baseUrl: fast.baseUrl });
      const { out, socketPath } = await start(wid, [p]);
      const credential = out.credentials[p.id] as string;
      const body = JSON.stringify(chat("measure the overhead of the proxy"));
      const direct = new http.Agent({ keepAlive: true });
      const viaSocket = new http.Agent({ keepAlive: true });
      const url = new URL(`${fast.baseUrl}/chat/completions`);
      const ttfb = (agent: http.Agent, opts: http.RequestOptions) =>
        new Promise<number>((resolve, reject) => {
          const sent = performance.now();
          const req = http.request({ ...opts, agent, method: "POST" }, (res) => {
            let first = 0;
            res.once("data", () => {
              first = performance.now() - sent;
            });
            res.on("end", () => resolve(first));
            res.resume();
          });
          req.on("error", reject);
          req.end(body);
        });
      const n = 300;
      const times = { direct: [] as number[], proxy: [] as number[] };
      for (let i = 0; i < n; i++) {
        times.direct.push(
          await ttfb(direct, {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
          }),
        );
        times.proxy.push(
          await ttfb(viaSocket, {
            socketPath,
            path: `/llm/${p.id}/chat/completions`,
            headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
          }),
        );
      }
      const pct = (xs: number[], q: number) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) * q)] ?? 0;
      const figures = {
        calls: n,
        directMedianMs: +pct(times.direct, 0.5).toFixed(2),
        proxyMedianMs: +pct(times.proxy, 0.5).toFixed(2),
        directP95Ms: +pct(times.direct, 0.95).toFixed(2),
        proxyP95Ms: +pct(times.proxy, 0.95).toFixed(2),
      };
      console.info(`LLM proxy time to first byte: ${JSON.stringify(figures)}`);
      direct.destroy();
      viaSocket.destroy();
      // Loose (the machine may be busy): a check per call costs a database transaction, not a connection or a buffered answer.
      expect(figures.proxyMedianMs - figures.directMedianMs).toBeLessThan(100);
      expect((await rows(wid)).filter((r) => r.outcome === "ok")).toHaveLength(n);
    } finally {
      await fast.close();
    }
  }, 120_000);
});
