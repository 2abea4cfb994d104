import { expect } from "vitest";
import { ApiClient } from "./api-client.ts";
import type { HttpClient } from "./http-client.ts";

/** The API a test sets a workspace up through: `app.inject()` (an ApiClient), or a real port (an HttpClient). */
type Api = ApiClient | HttpClient;

async function created(api: Api, path: string, body: Record<string, unknown>): Promise<string> {
  if (api instanceof ApiClient) {
    const res = await api.post(path, body);
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id;
  }
  const res = await api.json("POST", path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

/** Adds the LLM stand-in (or whatever is at `llm.baseUrl`) to workspace `wid` as an OpenAI-compatible provider named "Stand-in". @returns its id. */
export function addStandInProvider(api: Api, wid: string, llm: { baseUrl: string }, apiKey: string): Promise<string> {
  return created(api, `/api/v1/workspaces/${wid}/providers`, {
    name: "Stand-in",
    kind: "openai-compatible",
    baseUrl: llm.baseUrl,
    apiKey,
  });
}

/** Creates an agent in workspace `wid` (the body as the API takes it). @returns its id. */
export function addAgent(api: Api, wid: string, agent: Record<string, unknown>): Promise<string> {
  return created(api, `/api/v1/workspaces/${wid}/agents`, agent);
}
