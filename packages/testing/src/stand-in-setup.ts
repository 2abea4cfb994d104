import type { FastifyInstance } from "fastify";
import { expect } from "vitest";
import { ApiClient, signUp } from "./api-client.ts";
import { type HttpClient, httpClient } from "./http-client.ts";
import { type ReceivedEvent, readEvents, textOf } from "./sse.ts";

/** The API a test sets a workspace up through: `app.inject()` (an ApiClient), or a real port (an HttpClient). */
export type Api = ApiClient | HttpClient;

/** Sends `body` to `path` and expects `status` (the response body in the message when it is not). @returns the parsed body. */
export async function expectStatus(
  api: Api,
  method: "POST" | "PUT" | "PATCH",
  path: string,
  body: unknown,
  status: number,
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever the API answered.
): Promise<any> {
  if (api instanceof ApiClient) {
    const res = await api.request(method, path, body);
    expect(res.statusCode, res.body).toBe(status);
    return res.json();
  }
  const res = await api.json(method, path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return res.body;
}

async function created(api: Api, path: string, body: Record<string, unknown>): Promise<string> {
  return (await expectStatus(api, "POST", path, body, 201)).id;
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

/**
 * A new account's workspace, set up through a real port at `base`: the LLM stand-in (or whatever is at `llm.baseUrl`)
 * as its provider and two agents on the stand-in's model, Ada and Bea. `onBody` sees every response body of `owner`.
 */
export async function ownerWithAgents(
  app: FastifyInstance,
  base: string,
  llm: { baseUrl: string },
  apiKey: string,
  opts: { onBody?: (text: string) => void } = {},
): Promise<{ owner: HttpClient; wid: string; ada: string; bea: string }> {
  const person = await signUp(app);
  const owner = httpClient(base, person.client, opts);
  const wid = person.workspaceId;
  const providerId = await addStandInProvider(owner, wid, llm, apiKey);
  const ada = await addAgent(owner, wid, { name: "Ada", providerId, model: "stand-in-model" });
  const bea = await addAgent(owner, wid, { name: "Bea", providerId, model: "stand-in-model" });
  return { owner, wid, ada, bea };
}

/** `owner` invites `email` to workspace `wid` with `role`, and `member` (that person's client) accepts. */
export async function joinWorkspace(owner: Api, wid: string, email: string, member: Api, role: string): Promise<void> {
  const invite = await expectStatus(owner, "POST", `/api/v1/workspaces/${wid}/invites`, { email, role }, 201);
  await expectStatus(member, "POST", `/api/v1/invites/${invite.token}/accept`, {}, 200);
}

/**
 * Opens a new session with `agentId` in workspace `wid`, sends `text` and reads the answer's stream to its end
 * (which must be `done`). @returns the answer's text, its events and the session's id.
 */
export async function chatOnce(
  h: HttpClient,
  wid: string,
  agentId: string,
  text: string,
): Promise<{ answer: string; events: ReceivedEvent[]; sid: string }> {
  const session = await h.json("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId });
  expect(session.status).toBe(201);
  const res = await h.send(wid, session.body.id, text);
  expect(res.status).toBe(200);
  const events = await readEvents(res);
  expect(events.at(-1)?.event, JSON.stringify(events.at(-1))).toBe("done");
  return { answer: textOf(events), events, sid: session.body.id };
}
