import { AppError } from "@reef/contracts";
import { AGENT_TOOLS, type AgentTool } from "@reef/db";
import { grantsHostAccess } from "./host-access-guard.ts";

/** What workspace admins may grant when neither the configuration nor the admin page says otherwise. */
export const DEFAULT_GRANTABLE_TOOLS: readonly AgentTool[] = ["web"];

/** Where the tools an agent may use are decided, outside the workspace. */
export interface ToolPolicy {
  /** The tool groups the operator lets workspace admins grant. */
  grantable: readonly AgentTool[];
  /** Whether gateways run where shell and file tools are contained (a sandbox, a container). */
  hostToolsAllowed: boolean;
}

/** A granted tool the agent cannot use now, and why (said on the agent's page). */
export interface BlockedTool {
  tool: AgentTool;
  reason: string;
}

const TOOL_NAMES: Record<AgentTool, string> = { web: "the web", files: "files", shell: "the shell" };

/** Whether a stored string (the platform setting is free text[]) names a tool. */
export function isAgentTool(tool: string): tool is AgentTool {
  return tool === "web" || tool === "files" || tool === "shell";
}

/**
 * The granted tools an agent cannot use under `policy`, with the reason. They
 * stay granted (a widened list or a sandbox brings them back) but the gateway
 * is not given them from its next start.
 */
export function blockedTools(granted: readonly AgentTool[], policy: ToolPolicy): BlockedTool[] {
  const blocked: BlockedTool[] = [];
  for (const tool of granted) {
    if (!policy.grantable.includes(tool)) {
      blocked.push({ tool, reason: `The operator no longer allows agents to use ${TOOL_NAMES[tool]}.` });
    } else if (!policy.hostToolsAllowed && grantsHostAccess([tool])) {
      blocked.push({
        tool,
        reason: `This server cannot run ${TOOL_NAMES[tool]} tools in a sandbox (bubblewrap is missing), so agents do not get them.`,
      });
    }
  }
  return blocked;
}

/**
 * Every tool a workspace admin cannot grant under `policy`, and why (for the
 * agent form): outside the operator's list, or needing a sandbox this server lacks.
 */
export function ungrantableTools(policy: ToolPolicy): BlockedTool[] {
  return AGENT_TOOLS.flatMap((tool) => {
    if (!policy.grantable.includes(tool))
      return [{ tool, reason: `The operator does not allow agents to use ${TOOL_NAMES[tool]} (Admin › Settings).` }];
    return blockedTools([tool], policy);
  });
}

/** The granted tools an agent's gateway is given under `policy` (what the runtime start path renders). */
export function usableTools(granted: readonly AgentTool[], policy: ToolPolicy): AgentTool[] {
  const blocked = new Set(blockedTools(granted, policy).map((b) => b.tool));
  return granted.filter((t) => !blocked.has(t));
}

/**
 * Refuses to grant a tool outside the operator's list (403 `TOOL_NOT_GRANTABLE`,
 * naming the first such tool). Only newly granted tools are checked: a grant
 * made before the list was tightened stays, blocked.
 */
export function assertGrantable(added: readonly AgentTool[], grantable: readonly AgentTool[]): void {
  const refused = added.filter((t) => !grantable.includes(t));
  const [first] = refused;
  if (!first) return;
  const allowed = grantable.length ? grantable.join(", ") : "none";
  throw new AppError(
    "TOOL_NOT_GRANTABLE",
    `Agents in this Reef may not be given ${TOOL_NAMES[first]} ("${first}"): the operator must allow it first (Admin › Settings, or REEF_GRANTABLE_TOOLS). Tools workspace admins may grant now: ${allowed}.`,
    { details: { field: "tools", tools: refused, grantable: [...grantable] } },
  );
}
