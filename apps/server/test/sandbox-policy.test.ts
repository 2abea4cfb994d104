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

  it("tells operators that allowing files or shell would not take effect", async () => {
    // The first to sign up on a fresh Reef is its operator.
    const operator = await signUp(app);
    const settings = await operator.client.get("/api/v1/admin/settings");
    expect(settings.json().grantableTools).toMatchObject({ value: ["web", "files", "shell"], sandboxed: false });
    // Workspace admins see why, next to the tool.
    const tools = (await operator.client.get(`/api/v1/workspaces/${operator.workspaceId}/agent-tools`)).json();
    expect(tools.grantable).toEqual(["web"]);
    expect(tools.unavailable.map((u: { tool: string }) => u.tool)).toEqual(["files", "shell"]);
    expect(tools.unavailable[1].reason).toMatch(/cannot run the shell tools in a sandbox/);
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
