import { expect } from "vitest";
import { callNamedTool, type LlmStandIn, startLlmStandIn } from "./llm-stand-in.ts";
import { type Api, expectStatus } from "./stand-in-setup.ts";
import type { TestDatabase } from "./test-postgres.ts";

/**
 * The LLM stand-in (model `stand-in-model`, taking `apiKey`) for "call <tool>" messages: the model calls that tool
 * (as OpenClaw names it), then answers with what it returned.
 */
export function startToolCallingStandIn(apiKey: string): Promise<LlmStandIn> {
  return startLlmStandIn({ apiKey, models: ["stand-in-model"], chunkDelayMs: 5, toolCalls: callNamedTool });
}

/** Adds a connector to workspace `wid` (the body as the API takes it). @returns its id and slug. */
export async function addConnector(
  api: Api,
  wid: string,
  connector: Record<string, unknown>,
): Promise<{ id: string; slug: string }> {
  const body = await expectStatus(api, "POST", `/api/v1/workspaces/${wid}/connectors`, connector, 201);
  return { id: body.id, slug: body.slug };
}

/**
 * Sets which agents of workspace `wid` may use connector `connectorId` (replacing the list): an agent id alone gets
 * every tool, `{ agentId, tools }` only those tools. @returns the agents as the API stored them.
 */
export async function optIn(
  api: Api,
  wid: string,
  connectorId: string,
  agents: (string | { agentId: string; tools: string[] | null })[],
): Promise<{ agentId: string; tools: string[] | null }[]> {
  const body = await expectStatus(
    api,
    "PUT",
    `/api/v1/workspaces/${wid}/connectors/${connectorId}/agents`,
    { agents: agents.map((a) => (typeof a === "string" ? { agentId: a, tools: null } : a)) },
    200,
  );
  return body.agents;
}

/**
 * The operator's platform setting for the hosts connectors may reach on private addresses, written straight to the
 * database (as an operator's earlier save would have). Replicas cache platform settings for a few seconds.
 */
export async function allowConnectorHosts(db: TestDatabase, hosts: string[]): Promise<void> {
  const res = await db.owner.query(
    `insert into platform_settings (id, connector_allowed_hosts) values (1, $1)
     on conflict (id) do update set connector_allowed_hosts = excluded.connector_allowed_hosts`,
    [hosts],
  );
  expect(res.rowCount).toBe(1);
}

/** The host (`name:port`) of a URL: what the connector host allowlists hold. */
export const hostOf = (url: string): string => new URL(url).host;

/** An MCP tool's name as OpenClaw offers it: `<server>__<tool>`, the server keyed by the connector's slug. */
export const toolOf = (slug: string, tool: string): string => `${slug}__${tool}`;
