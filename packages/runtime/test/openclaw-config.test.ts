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
