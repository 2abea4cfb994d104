import { describe, expect, it } from "vitest";
import { imageOpenclawVersion } from "../src/container-profile.ts";
import { renderGatewayConfig } from "../src/openclaw-config.ts";

const base = {
  port: 20_120,
  token: "gw-token",
  paths: { logFile: "/data/rt/logs/gateway.log", agentsDir: "/data/rt/agents" },
  providers: [
    {
      id: "openai",
      baseUrl: "https://api.example/v1",
      apiKey: "sk-1",
      api: "openai-completions" as const,
      models: [{ id: "gpt-x" }],
    },
  ],
  agents: [{ id: "helper", name: "Helper", model: "openai/gpt-x" }],
};

describe("renderGatewayConfig", () => {
  it("binds to loopback with token auth and the chat completions endpoint, nothing else exposed", () => {
    const c = renderGatewayConfig(base) as Record<string, any>;
    expect(c.gateway).toEqual({
      mode: "local",
      bind: "loopback",
      port: 20_120,
      auth: { mode: "token", token: "gw-token" },
      controlUi: { enabled: false },
      http: { endpoints: { chatCompletions: { enabled: true } } },
    });
    expect(c.update).toEqual({ checkOnStart: false, auto: { enabled: false } });
    expect(c.logging.file).toBe("/data/rt/logs/gateway.log");
  });

  it("stamps the OpenClaw version that reads it, so the plugin allowlist is honoured (not a legacy config)", () => {
    expect((renderGatewayConfig(base) as Record<string, any>).meta).toBeUndefined();
    const c = renderGatewayConfig({ ...base, openclawVersion: "2026.9.6" }) as Record<string, any>;
    expect(c.meta).toEqual({ lastTouchedVersion: "2026.9.6" });
    expect(imageOpenclawVersion("ghcr.io/openclaw/openclaw:2026.9.6")).toBe("2026.9.6");
    expect(imageOpenclawVersion("registry.local/openclaw@sha256:abc")).toBeUndefined();
  });

  it("spends no LLM money in the background", () => {
    const c = renderGatewayConfig(base) as Record<string, any>;
    expect(c.agents.defaults.heartbeat).toEqual({ every: "0m" });
    expect(c.plugins.entries["memory-core"].config.dreaming.enabled).toBe(false);
    expect(c.skills.workshop.autonomous.mode).toBe("off");
    expect(c.models.catalogRefresh.enabled).toBe(false);
    // Only the workspace's providers, and no gateway-side automations.
    expect(c.models.mode).toBe("replace");
    expect(c.cron.enabled).toBe(false);
  });

  it("gives agents no shell, file or web tools unless granted one by one, or the workspace chose the full profile", () => {
    const c = renderGatewayConfig(base) as Record<string, any>;
    expect(c.tools.profile).toBe("messaging");
    expect(c.agents.entries.helper.tools).toEqual({
      profile: "messaging",
      deny: ["group:web", "group:fs", "group:runtime"],
    });
    const granted = renderGatewayConfig({
      ...base,
      agents: [{ id: "helper", name: "Helper", model: "openai/gpt-x", tools: ["web" as const] }],
    }) as Record<string, any>;
    expect(granted.agents.entries.helper.tools).toEqual({
      profile: "messaging",
      alsoAllow: ["group:web"],
      deny: ["group:fs", "group:runtime"],
    });
    // Without agents the gateway's implicit agent gets the narrowest policy.
    const implicit = (renderGatewayConfig({ ...base, agents: [] }) as Record<string, any>).tools;
    expect(implicit.profile).toBe("messaging");
    expect(implicit.deny).toEqual(expect.arrayContaining(["group:runtime", "group:fs", "group:web"]));
    const full = renderGatewayConfig({ ...base, toolProfile: "full" }) as Record<string, any>;
    expect(full.tools.profile).toBe("coding");
    expect(full.tools.deny).not.toContain("group:runtime");
    expect(full.agents.entries.helper.tools).toBeUndefined();
  });

  it("lets no agent see another member's session: session tools see only the current one, whatever the profile", () => {
    for (const input of [base, { ...base, agents: [] }, { ...base, toolProfile: "full" as const }]) {
      const tools = (renderGatewayConfig(input) as Record<string, any>).tools;
      // OpenClaw's default is "all": every session of the gateway, other members' included.
      expect(tools.sessions).toEqual({ visibility: "self" });
      expect(tools.agentToAgent).toEqual({ enabled: false });
      expect(tools.deny).toEqual(
        expect.arrayContaining(["sessions_list", "sessions_history", "sessions_search", "sessions_send"]),
      );
    }
  });

  it("loads only the plugins Reef offers: agent memory and the model APIs in use", () => {
    const c = renderGatewayConfig(base) as Record<string, any>;
    expect(c.plugins.allow).toEqual(["memory-core", "openai"]);
    const both = renderGatewayConfig({
      ...base,
      providers: [
        ...base.providers,
        { id: "claude", baseUrl: "https://a.example", apiKey: "k", api: "anthropic-messages", models: [] },
      ],
    }) as Record<string, any>;
    expect(both.plugins.allow).toEqual(["anthropic", "memory-core", "openai"]);
  });

  it("maps providers and agents, each agent in its own directory", () => {
    const c = renderGatewayConfig(base) as Record<string, any>;
    expect(c.models.providers.openai).toEqual({
      baseUrl: "https://api.example/v1",
      apiKey: "sk-1",
      api: "openai-completions",
      models: [{ id: "gpt-x", name: "gpt-x" }],
    });
    expect(c.agents.entries.helper).toMatchObject({
      name: "Helper",
      workspace: "/data/rt/agents/helper",
      model: { primary: "openai/gpt-x" },
    });
    expect(c.agents.defaults.model).toEqual({ primary: "openai/gpt-x" });
  });

  it("behind Reef's LLM proxy, points every provider at it with the minted credential, and writes no vendor key", () => {
    const c = renderGatewayConfig({
      ...base,
      providers: [
        ...base.providers,
        { id: "claude", baseUrl: "https://a.example", apiKey: "sk-2", api: "anthropic-messages", models: [] },
      ],
      outbound: { baseUrl: "http://127.0.0.1:3128/", credentials: { openai: "reef-cred-1" } },
    }) as Record<string, any>;
    expect(c.models.providers.openai).toMatchObject({
      baseUrl: "http://127.0.0.1:3128/llm/openai",
      apiKey: "reef-cred-1",
    });
    // No credential minted for it: a placeholder the proxy refuses, never the vendor's key.
    expect(c.models.providers.claude).toMatchObject({ baseUrl: "http://127.0.0.1:3128/llm/claude", apiKey: "none" });
    expect(JSON.stringify(c)).not.toMatch(/sk-1|sk-2|api\.example|a\.example/);
  });

  it("without Reef's proxy, gives a provider without a key a placeholder", () => {
    const c = renderGatewayConfig({
      ...base,
      providers: [{ id: "openai", baseUrl: "https://api.example/v1", api: "openai-completions", models: [] }],
    }) as Record<string, any>;
    expect(c.models.providers.openai.apiKey).toBe("none");
    expect(c.models.providers.openai.baseUrl).toBe("https://api.example/v1");
  });

  it("a workspace without agents gets the gateway's implicit default agent (explicit ownership needs one)", () => {
    const c = renderGatewayConfig({ ...base, agents: [] }) as Record<string, any>;
    expect(c.agents.ownership).toBeUndefined();
    expect(c.agents.entries).toBeUndefined();
    expect(c.agents.defaults.heartbeat).toEqual({ every: "0m" });
  });

  it("is deterministic and rejects ids that could escape a path or a model ref", () => {
    expect(JSON.stringify(renderGatewayConfig(base))).toBe(JSON.stringify(renderGatewayConfig(base)));
    expect(() => renderGatewayConfig({ ...base, agents: [{ id: "../x", name: "x", model: "openai/gpt-x" }] })).toThrow(
      /invalid agent id/,
    );
    expect(() =>
      renderGatewayConfig({
        ...base,
        providers: [{ id: "A/B", baseUrl: "https://x/v1", apiKey: "k", api: "openai-completions", models: [] }],
      }),
    ).toThrow(/invalid provider id/);
  });
});

describe("renderGatewayConfig: MCP connectors", () => {
  const CID = "0b0e4c1e-6f5a-4d39-9f8e-2c1f4b1d7a11";
  const outbound = { baseUrl: "http://127.0.0.1:20230/", credentials: {}, mcpCredential: "reef-mcp-abc" };
  const withConnectors = {
    ...base,
    outbound,
    agents: [
      {
        id: "ada",
        name: "Ada",
        model: "openai/gpt-x",
        connectors: [{ slug: "docs" }, { slug: "tools", tools: ["b"] }],
      },
      { id: "bea", name: "Bea", model: "openai/gpt-x" },
    ],
    connectors: [
      { id: CID, slug: "docs", transport: "streamable-http" as const },
      { id: "c2", slug: "tools", transport: "sse" as const, include: ["c", "a", "b"] },
      { id: "c3", slug: "local", transport: "stdio" as const, command: { command: "uvx", args: ["mcp-time"] } },
      { id: "c4", slug: "unused", transport: "streamable-http" as const },
    ],
  };

  it("points HTTP connectors at Reef's MCP proxy with the runtime's credential, and connects none no agent uses", () => {
    const c = renderGatewayConfig(withConnectors) as Record<string, any>;
    expect(Object.keys(c.mcp.servers)).toEqual(["docs", "tools"]);
    expect(c.mcp.servers.docs).toEqual({
      url: `http://127.0.0.1:20230/mcp/${CID}`,
      transport: "streamable-http",
      headers: { Authorization: "Bearer reef-mcp-abc" },
    });
    // A server's tools are only those known (sorted): one the server adds later reaches nobody.
    expect(c.mcp.servers.tools.toolFilter).toEqual({ include: ["a", "b", "c"] });
  });

  it("denies every tool of a connector to an agent not opted in, and the other known tools to one limited to some", () => {
    const c = renderGatewayConfig(withConnectors) as Record<string, any>;
    expect(c.agents.entries.bea.tools.deny).toEqual(["group:web", "group:fs", "group:runtime", "docs__*", "tools__*"]);
    expect(c.agents.entries.ada.tools.deny).toEqual(["group:web", "group:fs", "group:runtime", "tools__a", "tools__c"]);
    // The full profile keeps the denies.
    const full = renderGatewayConfig({ ...withConnectors, toolProfile: "full" }) as Record<string, any>;
    expect(full.agents.entries.bea.tools).toEqual({ deny: ["docs__*", "tools__*"] });
  });

  it("fails closed: a limited agent on a server with no known tool list gets none of it; long names are denied by prefix", () => {
    const c = renderGatewayConfig({
      ...withConnectors,
      agents: [{ id: "ada", name: "Ada", model: "openai/gpt-x", connectors: [{ slug: "docs", tools: ["x"] }] }],
      connectors: [
        { id: CID, slug: "docs", transport: "streamable-http" as const },
        { id: "c2", slug: "tools", transport: "sse" as const, include: ["x".repeat(70)] },
      ],
    }) as Record<string, any>;
    expect(c.agents.entries.ada.tools.deny).toContain("docs__*");
    const long = renderGatewayConfig({
      ...withConnectors,
      agents: [{ id: "ada", name: "Ada", model: "openai/gpt-x", connectors: [{ slug: "tools", tools: [] }] }],
      connectors: [{ id: "c2", slug: "tools", transport: "sse" as const, include: ["x".repeat(70)] }],
    }) as Record<string, any>;
    expect(long.agents.entries.ada.tools.deny).toContain(`tools__${"x".repeat(41)}*`);
  });

  it("renders no HTTP connector without an MCP credential, stdio ones from their catalogue command, and refuses unsafe slugs", () => {
    const c = renderGatewayConfig({
      ...withConnectors,
      outbound: { baseUrl: "http://127.0.0.1:1", credentials: {} },
      agents: [{ id: "ada", name: "Ada", model: "openai/gpt-x", connectors: [{ slug: "docs" }, { slug: "local" }] }],
    }) as Record<string, any>;
    expect(c.mcp.servers).toEqual({ local: { command: "uvx", args: ["mcp-time"] } });
    expect(JSON.stringify(c)).not.toContain("reef-mcp-");
    expect(renderGatewayConfig(base)).not.toHaveProperty("mcp");
    for (const slug of ["Docs", "9docs", "a".repeat(31), "docs__x"]) {
      expect(() =>
        renderGatewayConfig({
          ...withConnectors,
          connectors: [{ id: CID, slug, transport: "streamable-http" as const }],
        }),
      ).toThrow(/invalid connector slug/);
    }
  });
});
