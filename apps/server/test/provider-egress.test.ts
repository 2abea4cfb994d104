import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { buildTestApp, type LlmStandIn, signUp, startLlmStandIn, type TestApp, testPostgres } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Attacks on what Reef fetches for members: a provider's base URL is called
 * for its model list (on create and on "test connection"). An attacker uses it
 * to reach Reef's own network, or to make Reef hand a stored key to them.
 */

const KEY = "sk-egress-victim-key-0123456789";

interface Recorder {
  server: Server;
  port: number;
  hits: { url: string; authorization: string | undefined; apiKey: string | undefined }[];
  close(): Promise<void>;
}

/** A local HTTP server that records every request: the attacker's endpoint, or a canary that must stay silent. */
async function recorder(
  host: string,
  handle?: (req: IncomingMessage) => { status: number; headers?: Record<string, string>; body?: string },
): Promise<Recorder> {
  const hits: Recorder["hits"] = [];
  const server = createServer((req, res) => {
    hits.push({
      url: req.url ?? "",
      authorization: req.headers.authorization,
      apiKey: req.headers["x-api-key"] as string | undefined,
    });
    const answer = handle?.(req) ?? { status: 200, body: JSON.stringify({ data: [{ id: "stolen" }] }) };
    res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
    res.end(answer.body ?? "");
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function join(t: TestApp, owner: Awaited<ReturnType<typeof signUp>>, role: string) {
  const p = await signUp(t.app);
  const { token } = (
    await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/invites`, { email: p.email, role })
  ).json();
  expect((await p.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
  return p;
}

describe("a workspace admin cannot extract a shared provider's key (issue 11, item 5)", () => {
  let t: TestApp;
  let llm: LlmStandIn;
  let attacker: Recorder;
  let owner: Awaited<ReturnType<typeof signUp>>;
  let admin: Awaited<ReturnType<typeof signUp>>;
  let wid: string;
  let providerId: string;

  beforeAll(async () => {
    llm = await startLlmStandIn({ apiKey: KEY, models: ["alpha"] });
    attacker = await recorder("127.0.0.1");
    // The harness allows 127.0.0.1, so the attacker's server is reachable: this is about the key, not the address.
    t = await buildTestApp();
    owner = await signUp(t.app);
    wid = owner.workspaceId;
    admin = await join(t, owner, "admin");
    const created = await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "Shared",
      kind: "openai-compatible",
      baseUrl: llm.baseUrl,
      apiKey: KEY,
    });
    expect(created.statusCode, created.body).toBe(201);
    providerId = created.json().id;
  });
  afterAll(async () => {
    await t.close();
    await llm.close();
    await attacker.close();
  });

  it("refuses a new base URL without the key, and the test never sends the stored key anywhere new", async () => {
    const evil = `http://127.0.0.1:${attacker.port}/v1`;
    // The attack as the reviewer ran it: point the shared provider at their server, press "test connection".
    const moved = await admin.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, { baseUrl: evil });
    await admin.client.post(`/api/v1/workspaces/${wid}/providers/${providerId}/test`);
    expect(JSON.stringify(attacker.hits)).not.toContain(KEY);
    expect(moved.statusCode, moved.body).toBe(400);
    expect(moved.json()).toMatchObject({ code: "API_KEY_REQUIRED", details: { field: "apiKey" } });
    expect(moved.json().message).toMatch(/API key again/);
    const stillThere = (await owner.client.get(`/api/v1/workspaces/${wid}/providers/${providerId}`)).json();
    expect(stillThere.baseUrl).toBe(llm.baseUrl);
  });

  it("lets the admin move it with a key of their own, which is all the new URL ever sees", async () => {
    const evil = `http://127.0.0.1:${attacker.port}/v1`;
    const ownKey = "sk-attackers-own-key-99999";
    const moved = await admin.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, {
      baseUrl: evil,
      apiKey: ownKey,
    });
    expect(moved.statusCode, moved.body).toBe(200);
    expect((await admin.client.post(`/api/v1/workspaces/${wid}/providers/${providerId}/test`)).json()).toMatchObject({
      ok: true,
    });
    expect(attacker.hits.at(-1)?.authorization).toBe(`Bearer ${ownKey}`);
    expect(JSON.stringify(attacker.hits)).not.toContain(KEY);
    // Renaming, or re-sending the same URL, needs no key.
    const renamed = await owner.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, {
      name: "Renamed",
      baseUrl: evil,
    });
    expect(renamed.statusCode, renamed.body).toBe(200);
  });

  it("does not carry the key along a redirect to another origin", async () => {
    const hop = await recorder("127.0.0.1", () => ({
      status: 307,
      headers: { location: `http://127.0.0.1:${attacker.port}/v1/models` },
    }));
    try {
      const before = attacker.hits.length;
      const created = await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
        name: "Redirecting",
        kind: "openai-compatible",
        baseUrl: `http://127.0.0.1:${hop.port}/v1`,
        apiKey: KEY,
      });
      expect(created.statusCode, created.body).toBe(201);
      expect(hop.hits[0]?.authorization).toBe(`Bearer ${KEY}`);
      expect(attacker.hits.length).toBe(before + 1);
      expect(JSON.stringify(attacker.hits)).not.toContain(KEY);
    } finally {
      await hop.close();
    }
  });
});

describe("Reef calls no private address a member gives it (issue 11, item 6)", () => {
  let t: TestApp;
  let llm: LlmStandIn;
  let canary: Recorder;
  let reefPort: number;
  let operator: Awaited<ReturnType<typeof signUp>>;
  let member: Awaited<ReturnType<typeof signUp>>;
  let wid: string;

  beforeAll(async () => {
    llm = await startLlmStandIn({ apiKey: KEY, models: ["alpha"] });
    // Listens on IPv6 and IPv4 at once, so every loopback spelling would reach it.
    canary = await recorder("::");
    // Reef's shipped default: nothing non-public allowed.
    t = await buildTestApp({ config: { providerAllowedHosts: [] } });
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    reefPort = (t.app.server.address() as AddressInfo).port;
    operator = await signUp(t.app, { email: "operator@example.test" });
    wid = operator.workspaceId;
    member = await join(t, operator, "member");
  });
  afterAll(async () => {
    await t.close();
    await llm.close();
    await canary.close();
  });

  const personal = (baseUrl: string, name = "Probe") => ({
    name,
    kind: "openai-compatible",
    baseUrl,
    apiKey: KEY,
    personal: true,
  });

  it("refuses loopback, private and local targets with one neutral message, before connecting", async () => {
    const pg = testPostgres();
    const targets = [
      `http://127.0.0.1:${pg.port}/v1`,
      `http://127.0.0.1:${reefPort}/v1`,
      `http://127.0.0.1:${canary.port}/v1`,
      "http://10.0.0.1/v1",
      "http://192.168.1.1:11434/v1",
      "http://169.254.169.254/latest",
      `http://[::1]:${canary.port}/v1`,
      `http://[::ffff:127.0.0.1]:${canary.port}/v1`,
      "http://[fd00::1]/v1",
      `http://localhost:${canary.port}/v1`,
      `http://0.0.0.0:${canary.port}/v1`,
      "http://no-such-host.invalid/v1",
    ];
    const answers = new Set<string>();
    for (const [i, baseUrl] of targets.entries()) {
      const res = await member.client.post(`/api/v1/workspaces/${wid}/providers`, personal(baseUrl, `P${i}`));
      expect(res.statusCode, `${baseUrl}: ${res.body}`).toBe(400);
      const body = res.json();
      expect(body.code, baseUrl).toBe("PROVIDER_URL_NOT_ALLOWED");
      expect(body.details).toEqual({ field: "baseUrl" });
      answers.add(body.message);
    }
    // One answer for a database, Reef itself, a closed port, an unroutable address and a name that does not resolve.
    expect([...answers]).toHaveLength(1);
    expect([...answers][0]).toMatch(/ask the operator/);
    expect(canary.hits).toEqual([]);
    const list = (await member.client.get(`/api/v1/workspaces/${wid}/providers`)).json();
    expect(list.items).toEqual([]);
  });

  it("checks every redirect: an allowed host that redirects to loopback is refused the same way", async () => {
    const hop = await recorder("127.0.0.1", () => ({
      status: 302,
      headers: { location: `http://127.0.0.1:${canary.port}/v1/models` },
    }));
    try {
      const allow = await operator.client.patch("/api/v1/admin/settings", {
        providerAllowedHosts: [`127.0.0.1:${hop.port}`],
      });
      expect(allow.statusCode, allow.body).toBe(200);
      const res = await member.client.post(
        `/api/v1/workspaces/${wid}/providers`,
        personal(`http://127.0.0.1:${hop.port}/v1`),
      );
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().code).toBe("PROVIDER_URL_NOT_ALLOWED");
      expect(hop.hits).toHaveLength(1);
      expect(canary.hits).toEqual([]);

      // A provider saved with the models given (no probe) is refused at "test connection" just the same.
      const saved = await member.client.post(`/api/v1/workspaces/${wid}/providers`, {
        ...personal(`http://127.0.0.1:${hop.port}/v1`, "Saved"),
        models: ["alpha"],
      });
      expect(saved.statusCode, saved.body).toBe(201);
      const test = await member.client.post(`/api/v1/workspaces/${wid}/providers/${saved.json().id}/test`);
      expect(test.json()).toMatchObject({ ok: false, reason: "not_allowed", message: res.json().message });
      expect(canary.hits).toEqual([]);
      await member.client.delete(`/api/v1/workspaces/${wid}/providers/${saved.json().id}`);
    } finally {
      await operator.client.patch("/api/v1/admin/settings", { providerAllowedHosts: null });
      await hop.close();
    }
  });

  it("calls a local provider once the operator allows its host and port, and only that", async () => {
    const port = new URL(llm.baseUrl).port;
    const refused = await member.client.post(`/api/v1/workspaces/${wid}/providers`, personal(llm.baseUrl));
    expect(refused.statusCode).toBe(400);
    expect((await member.client.patch("/api/v1/admin/settings", { providerAllowedHosts: [] })).statusCode).toBe(403);
    const allow = await operator.client.patch("/api/v1/admin/settings", {
      providerAllowedHosts: [`127.0.0.1:${port}`],
    });
    expect(allow.json().providerAllowedHosts).toEqual({ value: [`127.0.0.1:${port}`], source: "settings" });
    const ok = await member.client.post(`/api/v1/workspaces/${wid}/providers`, personal(llm.baseUrl, "Local"));
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json().models).toEqual(["alpha"]);
    const pid = ok.json().id;
    expect((await member.client.post(`/api/v1/workspaces/${wid}/providers/${pid}/test`)).json()).toMatchObject({
      ok: true,
    });
    // Another port on the same host stays refused.
    const other = await member.client.post(
      `/api/v1/workspaces/${wid}/providers`,
      personal(`http://127.0.0.1:${reefPort}/v1`, "Other"),
    );
    expect(other.json().code).toBe("PROVIDER_URL_NOT_ALLOWED");
    // Withdrawn: the saved provider's test is refused again, without calling it.
    await operator.client.patch("/api/v1/admin/settings", { providerAllowedHosts: null });
    const before = llm.requests.length;
    const test = (await member.client.post(`/api/v1/workspaces/${wid}/providers/${pid}/test`)).json();
    expect(test).toMatchObject({ ok: false, reason: "not_allowed" });
    expect(llm.requests.length).toBe(before);
    const audit = await operator.client.get("/api/v1/admin/audit?action=platform.settings_update");
    expect(audit.statusCode).toBe(200);
    expect(audit.body).toContain("providerAllowedHosts");
  });

  it("takes the allow-list from the configuration (REEF_PROVIDER_ALLOWED_HOSTS) too", async () => {
    const port = new URL(llm.baseUrl).port;
    const c = await buildTestApp({
      config: { providerAllowedHosts: [`127.0.0.1:${port}`], explicitKeys: ["providerAllowedHosts"] },
    });
    try {
      const op = await signUp(c.app);
      const settings = (await op.client.get("/api/v1/admin/settings")).json();
      expect(settings.providerAllowedHosts).toEqual({ value: [`127.0.0.1:${port}`], source: "config" });
      expect((await op.client.patch("/api/v1/admin/settings", { providerAllowedHosts: [] })).statusCode).toBe(409);
      const ok = await op.client.post(`/api/v1/workspaces/${op.workspaceId}/providers`, personal(llm.baseUrl));
      expect(ok.statusCode, ok.body).toBe(201);
    } finally {
      await c.close();
    }
  });
});
