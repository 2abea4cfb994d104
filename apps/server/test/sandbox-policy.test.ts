import { buildApp, servicesOf } from "@reef/server";
import {
  createTestDatabase,
  type LlmStandIn,
  signUp,
  silentLogger,
  startLlmStandIn,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const KEY = "sk-test-sandbox-policy-0123456789";
let llm: LlmStandIn;
let db: TestDatabase;
let app: FastifyInstance;

/** Reef on a host where gateways cannot be sandboxed (the test switch stands in for a missing bubblewrap). */
beforeAll(async () => {
  llm = await startLlmStandIn({ apiKey: KEY, models: ["alpha"] });
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig(),
    database: db.database,
    logger: silentLogger,
    sandboxUnavailableForTests: true,
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
  await llm?.close();
});

describe("without a sandbox", () => {
  it("reports runtimes as unsandboxed", () => {
    expect(servicesOf(app).sandbox).toMatchObject({
      driver: "process",
      sandboxed: false,
      hostToolsAllowed: false,
    });
  });

  it("refuses shell and file tools with a stable code naming the fix, and still grants web", async () => {
    const o = await signUp(app);
    const w = o.workspaceId;
    const provider = await o.client.post(`/api/v1/workspaces/${w}/providers`, {
      name: "Stand-in",
      kind: "openai-compatible",
      baseUrl: llm.baseUrl,
      apiKey: KEY,
      models: ["alpha"],
    });
    expect(provider.statusCode, provider.body).toBe(201);
    const providerId = provider.json().id;

    const created = await o.client.post(`/api/v1/workspaces/${w}/agents`, {
      name: "Coder",
      providerId,
      model: "alpha",
      tools: ["shell"],
    });
    expect(created.statusCode, created.body).toBe(409);
    expect(created.json()).toMatchObject({ code: "SANDBOX_REQUIRED", details: { field: "tools" } });
    expect(created.json().message).toMatch(/apt-get install bubblewrap/);

    const web = await o.client.post(`/api/v1/workspaces/${w}/agents`, {
      name: "Browser",
      providerId,
      model: "alpha",
      tools: ["web"],
    });
    expect(web.statusCode, web.body).toBe(201);
    const patched = await o.client.patch(`/api/v1/workspaces/${w}/agents/${web.json().id}`, {
      tools: ["web", "files"],
    });
    expect(patched.statusCode, patched.body).toBe(409);
    expect(patched.json().code).toBe("SANDBOX_REQUIRED");
    expect((await o.client.get(`/api/v1/workspaces/${w}/agents/${web.json().id}`)).json().tools).toEqual(["web"]);
  });
});
