import { type JsonObject, LLM_PROXY_PATH, MCP_PROXY_PATH } from "./driver.ts";

/** An OpenAI-compatible model provider as the gateway should see it. */
export interface ProviderInput {
  /** Stable id used in model refs (`<id>/<model>`): lowercase letters, digits and dashes. */
  id: string;
  /** The vendor's base URL; replaced by Reef's LLM proxy when the gateway's outbound goes through Reef. */
  baseUrl: string;
  /**
   * The vendor key. Only for a gateway without Reef's LLM proxy (benchmarks'
   * baseline, tests of a driver alone): Reef's runtime manager never sets it.
   */
  apiKey?: string;
  api: "openai-completions" | "anthropic-messages";
  models: { id: string; name?: string }[];
}

export interface AgentInput {
  id: string;
  name: string;
  /** `<providerId>/<modelId>` */
  model: string;
  /** Tool groups beyond messaging this agent was granted (default none). */
  tools?: ("web" | "files" | "shell")[];
  /** Its sampling temperature, sent with every model call (absent: the model's own default). */
  temperature?: number | undefined;
  /**
   * What its shell commands need (see {@link agentExec}). Absent: OpenClaw's own
   * default, every command runs; Reef always sets it.
   */
  execPolicy?: ExecPolicy | undefined;
  /**
   * The connectors (by slug) this agent may use, each with the tools it may
   * call (absent: all the connector offers). Every other connector's tools are
   * denied to it.
   */
  connectors?: { slug: string; tools?: string[] | undefined }[] | undefined;
}

/**
 * An MCP server the workspace added (a Reef connector). HTTP ones are reached
 * through Reef's MCP proxy, which holds their credentials: nothing secret is
 * in these settings or in the rendered config but the runtime's own proxy
 * credential.
 */
export interface ConnectorInput {
  /** Reef's connector id: its proxy path is `<outbound>/mcp/<id>`. */
  id: string;
  /** The server's name in the gateway (its tools are `<slug>__<tool>`): a lowercase letter, then letters, digits, dashes. */
  slug: string;
  transport: "streamable-http" | "sse" | "stdio";
  /** stdio only: the operator catalogue's command, run inside the runtime. */
  command?: { command: string; args: string[] } | undefined;
  /** The only tools the gateway takes from this server; absent: all it lists. */
  include?: string[] | undefined;
}

/** Reef's per-agent policy for shell commands: none, only allowlisted, allowlisted or a person's yes, all. */
export type ExecPolicy = "deny" | "allowlist" | "ask" | "allow";

/**
 * An agent's `tools.exec` for its policy. The allowlist is Reef's to apply, not
 * the gateway's: OpenClaw keeps allowlists in its state database, which a
 * shell-enabled agent can write (it runs as the gateway's user), and an entry
 * added there would run without asking. So `allowlist` and `ask` make the
 * gateway ask about every command (`ask: "always"`, which OpenClaw's approvals
 * document can only tighten, and which its `allow-always` cannot silence), and
 * Reef answers: allowlisted commands at once, the rest (for `ask`) by a person,
 * anything else no. `deny` also takes the shell away altogether (see
 * {@link renderGatewayConfig}).
 */
export function agentExec(policy: ExecPolicy): JsonObject {
  switch (policy) {
    case "deny":
      return { mode: "deny" };
    case "allow":
      return { mode: "full" };
    default:
      // No `mode` equivalent exists for this pair: OpenClaw keeps the legacy fields as they are.
      return { security: "full", ask: "always", strictInlineEval: false };
  }
}

/** An agent entry's `tools`: its grants (the shell only when its policy lets commands run at all), its exec policy and its connector denies. */
function agentEntryTools(
  a: AgentInput,
  profile: GatewaySettings["toolProfile"],
  servers: readonly ConnectorInput[],
): JsonObject | undefined {
  const denied = a.execPolicy === "deny";
  const exec = a.execPolicy ? { exec: agentExec(a.execPolicy) } : {};
  const mcpDeny = connectorDenies(a, servers);
  if (profile === "full") {
    const deny = [...(denied ? [TOOL_GROUPS.shell] : []), ...mcpDeny];
    if (!a.execPolicy && !deny.length) return undefined;
    return { ...(deny.length ? { deny } : {}), ...exec };
  }
  const tools = agentTools(denied ? a.tools?.filter((t) => t !== "shell") : a.tools);
  const deny = [...((tools.deny as string[] | undefined) ?? []), ...mcpDeny];
  return { ...tools, ...(deny.length ? { deny } : {}), ...exec };
}

/** OpenClaw caps a tool's exposed name (`<server>__<tool>`) at this many characters, shortening longer ones. */
const MAX_TOOL_NAME = 64;

/** The deny entry for one MCP tool: its exact name, or (a name OpenClaw would shorten) every tool sharing its start. */
function mcpToolDeny(slug: string, tool: string): string {
  const name = `${slug}__${tool}`;
  // Shortened names are not predictable to the character: deny more, never less.
  return name.length <= MAX_TOOL_NAME ? name : `${name.slice(0, MAX_TOOL_NAME - 16)}*`;
}

/**
 * What an agent may not call among the rendered MCP servers: every tool of a
 * server it was not opted into, and, where it was limited to some tools, the
 * server's other known tools (its `include` list, which is also all the
 * gateway takes from it, so a tool the server adds later reaches no agent).
 * A limited agent on a server without a known tool list gets none of it.
 */
function connectorDenies(a: AgentInput, servers: readonly ConnectorInput[]): string[] {
  const deny: string[] = [];
  for (const c of servers) {
    const grant = a.connectors?.find((g) => g.slug === c.slug);
    if (!grant) {
      deny.push(`${c.slug}__*`);
      continue;
    }
    if (!grant.tools) continue;
    if (!c.include) {
      deny.push(`${c.slug}__*`);
      continue;
    }
    const allowed = new Set(grant.tools);
    for (const t of [...c.include].sort()) if (!allowed.has(t)) deny.push(mcpToolDeny(c.slug, t));
  }
  return deny;
}

/** OpenClaw's tool group for each tool Reef lets an admin grant. */
const TOOL_GROUPS = { web: "group:web", files: "group:fs", shell: "group:runtime" } as const;

function agentTools(granted: AgentInput["tools"]): JsonObject {
  const allowed = new Set(granted ?? []);
  const deny = (Object.keys(TOOL_GROUPS) as (keyof typeof TOOL_GROUPS)[])
    .filter((t) => !allowed.has(t))
    .map((t) => TOOL_GROUPS[t]);
  const alsoAllow = [...allowed].sort().map((t) => TOOL_GROUPS[t]);
  return { profile: "messaging", ...(alsoAllow.length ? { alsoAllow } : {}), ...(deny.length ? { deny } : {}) };
}

/**
 * Tools that read or write sessions other than the one running. A workspace's
 * members share its gateway but each chat is one member's: no agent may list,
 * read, search or message another session, whatever the profile.
 */
export const CROSS_SESSION_TOOLS = [
  "sessions",
  "sessions_list",
  "sessions_history",
  "sessions_search",
  "sessions_send",
  "conversations_list",
  "conversations_send",
  "conversations_turn",
] as const;

/**
 * The gateway-wide tool policy. On top of the profile: session tools see only
 * the current session (OpenClaw's default is every session of the gateway,
 * other members' included), no agent reaches another agent's sessions, and
 * the cross-session tools are denied outright.
 */
function gatewayTools(input: GatewaySettings): JsonObject {
  // Elevated mode would let a chat directive run commands past the agent's exec policy.
  const base: JsonObject = {
    sessions: { visibility: "self" },
    agentToAgent: { enabled: false },
    elevated: { enabled: false },
  };
  if (input.toolProfile === "full") return { profile: "coding", ...base, deny: [...CROSS_SESSION_TOOLS] };
  // Each agent carries its own grants; the gateway-wide policy is the narrowest
  // (it applies to the implicit agent of a workspace without agents).
  const groups = input.agents.length ? [] : ["group:runtime", "group:fs", "group:web"];
  return { profile: "messaging", ...base, deny: [...groups, ...CROSS_SESSION_TOOLS] };
}

/** What a workspace's gateway serves: the part of its config that comes from the database. */
export interface GatewaySettings {
  providers: ProviderInput[];
  agents: AgentInput[];
  /**
   * `safe` (default): messaging tools only, no shell, files or web; `full`: OpenClaw's
   * coding profile, which a workspace admin must turn on deliberately.
   */
  toolProfile?: "safe" | "full";
  /** The workspace's enabled MCP connectors (none when the operator switched connectors off). */
  connectors?: ConnectorInput[];
}

/** Tools that reach the host a gateway runs on: only offered to agents inside a sandbox. */
export const HOST_TOOLS = ["files", "shell"] as const;

/**
 * The settings without shell or file tools (for a gateway that cannot be
 * sandboxed): every agent's grants lose them, and the full profile falls back
 * to the safe one. `dropped` names the agents that lost something.
 */
export function withoutHostTools(settings: GatewaySettings): { settings: GatewaySettings; dropped: string[] } {
  const host = new Set<string>(HOST_TOOLS);
  const dropped: string[] = [];
  const agents = settings.agents.map((a) => {
    if (!a.tools?.some((t) => host.has(t))) return a;
    dropped.push(a.id);
    const tools = a.tools.filter((t) => !host.has(t));
    const { tools: _, ...rest } = a;
    return tools.length ? { ...rest, tools } : rest;
  });
  const full = settings.toolProfile === "full";
  if (full) dropped.push("(the workspace's full tool profile)");
  return { settings: { ...settings, agents, ...(full ? { toolProfile: "safe" as const } : {}) }, dropped };
}

/** Settings plus what the driver decides: port, token and private paths. */
export interface GatewayConfigInput extends GatewaySettings {
  port: number;
  token: string;
  /** Private per-runtime directories (inside the runtime's own state dir). */
  paths: { logFile: string; agentsDir: string };
  /**
   * The OpenClaw version that will read this config. Stamped as
   * `meta.lastTouchedVersion`: without it OpenClaw treats the file as a legacy
   * config and switches bundled-plugin discovery to a compatibility mode that
   * does not honour `plugins.allow` everywhere.
   */
  openclawVersion?: string | undefined;
  /**
   * Where the gateway reaches Reef's LLM proxy (`http://127.0.0.1:<port>` inside
   * a sandbox), and the credential it presents per provider id. When given,
   * every provider points at `<baseUrl>/llm/<providerId>` and no vendor key is
   * written; without it, each provider's own base URL and key are used.
   */
  outbound?: { baseUrl: string; credentials: Record<string, string>; mcpCredential?: string | undefined } | undefined;
}

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * A connector's server name: OpenClaw keeps a server prefix of up to 30
 * provider-safe characters starting with a letter as it is; anything else it
 * rewrites, and the `<slug>__*` denies would miss the tools.
 */
const SLUG = /^[a-z][a-z0-9-]{0,29}$/;

/**
 * The MCP servers the gateway connects to: each connector some agent was
 * opted into (one no agent may use is not connected at all). HTTP ones point
 * at Reef's MCP proxy with the runtime's proxy credential, and only when the
 * gateway has one; stdio ones run the operator catalogue's command.
 */
function mcpServers(input: GatewayConfigInput): { servers: ConnectorInput[]; config: JsonObject } {
  const used = new Set(input.agents.flatMap((a) => (a.connectors ?? []).map((c) => c.slug)));
  const outbound = input.outbound?.mcpCredential ? input.outbound : undefined;
  const servers: ConnectorInput[] = [];
  const config: JsonObject = {};
  for (const c of [...(input.connectors ?? [])].sort((x, y) => (x.slug < y.slug ? -1 : x.slug > y.slug ? 1 : 0))) {
    if (!SLUG.test(c.slug)) throw new Error(`invalid connector slug: ${c.slug}`);
    if (!used.has(c.slug)) continue;
    const filter = c.include ? { toolFilter: { include: [...c.include].sort() } } : {};
    if (c.transport === "stdio") {
      if (!c.command) continue;
      config[c.slug] = { command: c.command.command, args: [...c.command.args], ...filter };
    } else {
      if (!outbound) continue;
      config[c.slug] = {
        url: `${outbound.baseUrl.replace(/\/+$/, "")}${MCP_PROXY_PATH}/${c.id}`,
        transport: c.transport,
        // The runtime's own proxy credential: the connector's secrets stay in Reef, which adds them per call.
        headers: { Authorization: `Bearer ${outbound.mcpCredential}` },
        ...filter,
      };
    }
    servers.push(c);
  }
  return { servers, config };
}

/** OpenClaw plugins that implement each model API Reef configures. */
const API_PLUGINS: Record<ProviderInput["api"], string> = {
  "openai-completions": "openai",
  "anthropic-messages": "anthropic",
};

function pluginAllowlist(providers: ProviderInput[]): string[] {
  return [...new Set(["memory-core", ...providers.map((p) => API_PLUGINS[p.api])])].sort();
}

/**
 * Renders a workspace gateway's `openclaw.json`. Pure: the same input always gives
 * the same config. Defaults are Reef's, not OpenClaw's: loopback only, token auth,
 * no control UI, no update checks, no background LLM spend (heartbeat, memory
 * dreaming, autonomous skill review and cron automations off), only the
 * workspace's own model providers, a tool profile without shell, file
 * or web access unless the workspace opted in, and no agent sees a session
 * but the one it is answering in.
 */
export function renderGatewayConfig(input: GatewayConfigInput): JsonObject {
  for (const p of input.providers) if (!ID.test(p.id)) throw new Error(`invalid provider id: ${p.id}`);
  for (const a of input.agents) if (!ID.test(a.id)) throw new Error(`invalid agent id: ${a.id}`);
  const providers: JsonObject = {};
  for (const p of input.providers) {
    const viaReef = input.outbound;
    providers[p.id] = {
      baseUrl: viaReef ? `${viaReef.baseUrl.replace(/\/+$/, "")}${LLM_PROXY_PATH}/${p.id}` : p.baseUrl,
      // OpenClaw needs a key to call a provider at all: "none" where there is none to give.
      apiKey: (viaReef ? viaReef.credentials[p.id] : p.apiKey) || "none",
      api: p.api,
      models: p.models.map((m) => ({ id: m.id, name: m.name ?? m.id })),
    };
  }
  const mcp = mcpServers(input);
  const entries: JsonObject = {};
  for (const a of input.agents) {
    const tools = agentEntryTools(a, input.toolProfile, mcp.servers);
    entries[a.id] = {
      name: a.name,
      workspace: `${input.paths.agentsDir}/${a.id}`,
      model: { primary: a.model },
      // Chat runs over the gateway's own protocol, which takes no per-turn sampling settings.
      ...(a.temperature !== undefined ? { params: { temperature: a.temperature } } : {}),
      ...(tools ? { tools } : {}),
    };
  }
  const defaultModel = input.agents[0]?.model;
  return {
    ...(input.openclawVersion ? { meta: { lastTouchedVersion: input.openclawVersion } } : {}),
    gateway: {
      mode: "local",
      bind: "loopback",
      port: input.port,
      // A literal token in the file (mode 0600) keeps it out of the process environment.
      auth: { mode: "token", token: input.token },
      controlUi: { enabled: false },
      http: { endpoints: { chatCompletions: { enabled: true } } },
    },
    update: { checkOnStart: false, auto: { enabled: false } },
    logging: { file: input.paths.logFile },
    // Only the workspace's own providers: OpenClaw's built-in model catalog is not
    // offered by Reef, and merging it costs start time and memory.
    models: { mode: "replace", catalogRefresh: { enabled: false }, providers },
    agents: {
      // OpenClaw requires at least one entry under explicit ownership; a workspace
      // without agents yet gets the gateway's implicit default agent.
      ...(input.agents.length ? { ownership: "explicit" } : {}),
      defaults: {
        ...(defaultModel ? { model: { primary: defaultModel } } : {}),
        workspace: input.paths.agentsDir,
        heartbeat: { every: "0m" },
        skipBootstrap: true,
      },
      ...(input.agents.length ? { entries } : {}),
    },
    plugins: {
      // Load only what Reef offers: the model APIs in use and agent memory. The
      // rest (browser, canvas, voice, device pairing, GitHub…) costs start time
      // and memory and widens what an agent can reach.
      allow: pluginAllowlist(input.providers),
      entries: { "memory-core": { config: { dreaming: { enabled: false } } } },
    },
    skills: { workshop: { autonomous: { mode: "off" } } },
    // No gateway-side automations: nothing runs (or spends the workspace's LLM
    // money) unless a person sends a message. Scheduling is Reef's to offer.
    cron: { enabled: false },
    // Requests for approval go to operator connections only (Reef's), never forwarded to a chat channel.
    approvals: { exec: { enabled: false }, plugin: { enabled: false } },
    tools: gatewayTools(input),
    ...(mcp.servers.length ? { mcp: { servers: mcp.config } } : {}),
  };
}
