import { describe, expect, it } from "vitest";
import { type AgentInput, type ExecPolicy, renderGatewayConfig, withoutHostTools } from "../src/openclaw-config.ts";
import { sandboxArgs } from "../src/process/sandbox.ts";

const base = {
  port: 20_120,
  token: "gw-token",
  paths: { logFile: "/data/rt/logs/gateway.log", agentsDir: "/data/rt/agents" },
  providers: [
    { id: "openai", baseUrl: "https://api.example/v1", api: "openai-completions" as const, models: [{ id: "gpt-x" }] },
  ],
};

type Json = Record<string, any>;

function agentEntry(agent: Partial<AgentInput>, extra: { toolProfile?: "safe" | "full" } = {}): Json {
  const c = renderGatewayConfig({
    ...base,
    ...extra,
    agents: [{ id: "helper", name: "Helper", model: "openai/gpt-x", tools: ["shell", "web"], ...agent }],
  }) as Json;
  return c.agents.entries.helper;
}

describe("exec policy in the gateway's config", () => {
  it("deny: no shell at all, and exec denied should anything still reach it", () => {
    const e = agentEntry({ execPolicy: "deny" });
    expect(e.tools.exec).toEqual({ mode: "deny" });
    expect(e.tools.alsoAllow).toEqual(["group:web"]);
    expect(e.tools.deny).toContain("group:runtime");
    // The workspace-wide coding profile too.
    const full = agentEntry({ execPolicy: "deny" }, { toolProfile: "full" });
    expect(full.tools).toEqual({ deny: ["group:runtime"], exec: { mode: "deny" } });
  });

  it("allowlist and ask: the gateway asks about every command, so Reef (not its writable state) applies the allowlist", () => {
    for (const policy of ["allowlist", "ask"] as ExecPolicy[]) {
      const e = agentEntry({ execPolicy: policy });
      // ask "always" cannot be loosened by OpenClaw's approvals document, nor silenced by its allow-always.
      expect(e.tools.exec).toEqual({ security: "full", ask: "always", strictInlineEval: false });
      expect(e.tools.exec).not.toHaveProperty("mode");
      expect(e.tools.alsoAllow).toContain("group:runtime");
    }
  });

  it("allow: every command runs", () => {
    expect(agentEntry({ execPolicy: "allow" }).tools.exec).toEqual({ mode: "full" });
  });

  it("each agent carries its own policy", () => {
    const c = renderGatewayConfig({
      ...base,
      agents: [
        { id: "a", name: "A", model: "openai/gpt-x", tools: ["shell"], execPolicy: "allow" },
        { id: "b", name: "B", model: "openai/gpt-x", tools: ["shell"], execPolicy: "ask" },
      ],
    }) as Json;
    expect(c.agents.entries.a.tools.exec).toEqual({ mode: "full" });
    expect(c.agents.entries.b.tools.exec.ask).toBe("always");
  });

  it("requests go to operator connections only, and no directive lifts the policy", () => {
    const c = renderGatewayConfig({ ...base, agents: [{ id: "a", name: "A", model: "openai/gpt-x" }] }) as Json;
    expect(c.approvals).toEqual({ exec: { enabled: false }, plugin: { enabled: false } });
    expect(c.gateway.controlUi).toEqual({ enabled: false });
    expect(c.tools.elevated).toEqual({ enabled: false });
    expect(renderGatewayConfig({ ...base, agents: [], toolProfile: "full" }).tools).toMatchObject({
      elevated: { enabled: false },
    });
  });

  it("a gateway that cannot be sandboxed loses the shell whatever the policy", () => {
    const { settings } = withoutHostTools({
      providers: base.providers,
      agents: [{ id: "a", name: "A", model: "openai/gpt-x", tools: ["shell"], execPolicy: "allow" }],
    });
    const c = renderGatewayConfig({ ...base, ...settings }) as Json;
    expect(c.agents.entries.a.tools.deny).toContain("group:runtime");
  });
});

describe("the config a sandboxed gateway reads", () => {
  it("is a read-only copy outside its runtime directory, readable by its user", () => {
    const args = sandboxArgs({
      runtimeDir: "/data/rt/w1",
      home: "/data/rt/w1/home",
      readOnly: ["/opt/openclaw/node_modules"],
      host: { rootEntries: { bin: "link", lib: "link" }, etc: [] },
      files: [{ path: "/run/reef/openclaw.json", fd: 7, mode: "0444" }],
    });
    const i = args.indexOf("--ro-bind-data");
    expect(args.slice(i - 2, i + 3)).toEqual(["--perms", "0444", "--ro-bind-data", "7", "/run/reef/openclaw.json"]);
    // Nothing writable is mounted over or around it.
    const writable = args.flatMap((a, j) => (a === "--bind" ? [args[j + 2]] : []));
    expect(writable).toEqual(["/data/rt/w1"]);
  });
});
