/**
 * The OpenAI-compatible API end to end: the official `openai` npm package,
 * pointed at Reef with Reef API keys, against real gateways (process driver)
 * with the local LLM stand-in as the vendor. Agents are models (a member's
 * personal agent is not one), answers stream from the workspace's own gateway,
 * a conversation resent with its history continues its Reef session (which the
 * key sees in its history), and refusals come back in OpenAI's error shape with
 * the status the SDK turns into its own error classes.
 */
import { buildApp } from "@reef/server";
import {
  addAgent,
  addStandInProvider,
  createTestDatabase,
  expectStatus,
  httpClient,
  joinWorkspace,
  type LlmStandIn,
  listenLocal,
  signUp,
  silentLogger,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const VENDOR_KEY = "sk-openai-api-test-0123456789";
/** Long enough to still be streaming when a second request arrives. */
const LONG = Array.from({ length: 50 }, (_, i) => `word${i}`).join(" ");

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;

type Person = Awaited<ReturnType<typeof signUp>> & { http: ReturnType<typeof httpClient> };
let alice: Person;
let bob: Person;
let carol: Person;
/** Workspace A (Alice's, Carol a member) and B (Bob's). */
const A = { wid: "", ada: "", bea: "", personal: "", key: "", keyId: "" };
const B = { wid: "", agent: "", key: "" };

async function person(): Promise<Person> {
  const p = await signUp(app);
  return { ...p, http: httpClient(base, p.client) };
}

const baseUrlOf = (wid: string) => `${base}/api/v1/workspaces/${wid}/openai/v1`;
/** The SDK as a client would configure it; no retries, so each refusal is seen as it was sent. */
const openaiFor = (key: string, wid: string) => new OpenAI({ apiKey: key, baseURL: baseUrlOf(wid), maxRetries: 0 });

/** A Reef API call made with an API key (the key's own view of Reef). */
async function withKey(key: string, path: string) {
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
}

const created = (p: Person, path: string, body: unknown) => expectStatus(p.http, "POST", path, body, 201);

/** The error a call is refused with, as the SDK raises it. */
async function refusal(call: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have been refused").toBeInstanceOf(OpenAI.APIError);
  const apiErr = err as InstanceType<typeof OpenAI.APIError>;
  // OpenAI's error shape: clients read these four fields.
  expect(Object.keys(apiErr.error as object).sort()).toEqual(["code", "message", "param", "type"]);
  return apiErr;
}

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: VENDOR_KEY,
    models: ["stand-in-model"],
    chunkDelayMs: 30,
    reply: (text) => (text.includes("long answer") ? LONG : `Stand-in reply to: ${text}`),
  });
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig({ runtimeIdleTimeoutMinutes: 60 }),
    database: db.database,
    logger: silentLogger,
  });
  base = await listenLocal(app);
  // The first account is the platform operator (who sets a workspace's token budget below).
  alice = await person();
  bob = await person();
  carol = await person();
  A.wid = alice.workspaceId;
  B.wid = bob.workspaceId;
  const providerId = await addStandInProvider(alice.http, A.wid, llm, VENDOR_KEY);
  const agent = (name: string) => ({ name, providerId, model: "stand-in-model", instructions: `You are ${name}.` });
  A.ada = await addAgent(alice.http, A.wid, agent("Ada"));
  A.bea = await addAgent(alice.http, A.wid, agent("Bea"));
  // Carol joins A and makes a personal agent on her own provider.
  await joinWorkspace(alice.http, A.wid, carol.email, carol.http, "member");
  const mine = await created(carol, `/api/v1/workspaces/${A.wid}/providers`, {
    name: "Carol's",
    kind: "openai-compatible",
    baseUrl: llm.baseUrl,
    apiKey: VENDOR_KEY,
    personal: true,
  });
  A.personal = await addAgent(carol.http, A.wid, { name: "Carol's own", providerId: mine.id, model: "stand-in-model" });
  const key = await created(alice, `/api/v1/workspaces/${A.wid}/api-keys`, { name: "chat client", role: "member" });
  A.key = key.key;
  A.keyId = key.apiKey.id;
  const bProvider = await addStandInProvider(bob.http, B.wid, llm, VENDOR_KEY);
  B.agent = await addAgent(bob.http, B.wid, { name: "Ada", providerId: bProvider, model: "stand-in-model" });
  B.key = (await created(bob, `/api/v1/workspaces/${B.wid}/api-keys`, { name: "b client", role: "member" })).key;
}, 60_000);

afterAll(async () => {
  await stopTestApp(app, db);
  await llm.close();
}, 120_000);

describe("the OpenAI-compatible API, with the official SDK and real gateways", () => {
  it("lists the agents the key may chat with as models, not a member's personal agent", async () => {
    const models = await openaiFor(A.key, A.wid).models.list();
    const data = models.data as unknown as { id: string; object: string; owned_by: string; name: string }[];
    expect(data.map((m) => m.id).sort()).toEqual([A.ada, A.bea].sort());
    for (const m of data) expect(m).toMatchObject({ object: "model", owned_by: "reef" });
    expect(data.find((m) => m.id === A.ada)?.name).toBe("Ada");
    expect(JSON.stringify(data)).not.toContain(A.personal);
  });

  it("refuses a person's session cookie in OpenAI's shape (keys only, no CSRF path)", async () => {
    for (const [method, path, body] of [
      ["GET", "/models", undefined],
      ["POST", "/chat/completions", { model: A.ada, messages: [{ role: "user", content: "hi" }] }],
    ] as const) {
      const res = await alice.http.json(method, `/api/v1/workspaces/${A.wid}/openai/v1${path}`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(401);
      expect(res.body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
      expect(res.body.error.message).toMatch(/API keys only/);
    }
  });

  it("streams an answer from the workspace's gateway in several chunks, then usage and [DONE]", async () => {
    const stream = await openaiFor(A.key, A.wid).chat.completions.create({
      model: A.ada,
      messages: [{ role: "user", content: "hello over the OpenAI API" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const pieces: string[] = [];
    const finishes: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      expect(chunk.model).toBe(A.ada);
      const choice = chunk.choices[0];
      if (choice?.delta.content) pieces.push(choice.delta.content);
      if (choice?.finish_reason) finishes.push(choice.finish_reason);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(pieces.join("")).toBe("Stand-in reply to: hello over the OpenAI API");
    expect(pieces.length).toBeGreaterThan(1);
    expect(finishes).toEqual(["stop"]);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
  }, 180_000);

  it("answers at once without streaming, with usage, naming the agent by its name", async () => {
    const done = await openaiFor(A.key, A.wid).chat.completions.create({
      model: "Bea",
      messages: [{ role: "user", content: "hello Bea" }],
    });
    expect(done.object).toBe("chat.completion");
    expect(done.model).toBe(A.bea);
    expect(done.choices[0]?.message).toMatchObject({ role: "assistant", content: "Stand-in reply to: hello Bea" });
    expect(done.choices[0]?.finish_reason).toBe("stop");
    expect(done.usage?.completion_tokens).toBeGreaterThan(0);
    // It ran as Bea: her instructions reached the model.
    const request = llm.requests.find((r) => JSON.stringify(r.body.messages).includes("hello Bea"));
    expect(JSON.stringify(request?.body.messages)).toContain("You are Bea.");
  }, 120_000);

  it("continues the key's Reef session when the history is resent; another history starts a new one", async () => {
    const client = openaiFor(A.key, A.wid);
    const sessions = async () => {
      const res = await withKey(A.key, `/api/v1/workspaces/${A.wid}/sessions?limit=100`);
      expect(res.status).toBe(200);
      return res.body.items as { id: string; agentId: string; title: string }[];
    };
    const messagesOf = async (sid: string) => {
      const res = await withKey(A.key, `/api/v1/workspaces/${A.wid}/sessions/${sid}/messages`);
      expect(res.status).toBe(200);
      return (res.body.items as { role: string; content: string }[]).map((m) => [m.role, m.content]);
    };
    const before = (await sessions()).length;
    const first = await client.chat.completions
      .create({ model: A.ada, messages: [{ role: "user", content: "what is a reef?" }] })
      .withResponse();
    const sid = first.response.headers.get("x-reef-session-id") ?? "";
    const answer = first.data.choices[0]?.message.content ?? "";
    expect(answer).toBe("Stand-in reply to: what is a reef?");

    // The client resends the conversation with its next message (streamed this time).
    const history = [
      { role: "user" as const, content: "what is a reef?" },
      { role: "assistant" as const, content: answer },
    ];
    const next = await client.chat.completions
      .create({ model: A.ada, messages: [...history, { role: "user", content: "and a lagoon?" }], stream: true })
      .withResponse();
    expect(next.response.headers.get("x-reef-session-id")).toBe(sid);
    let second = "";
    for await (const chunk of next.data) second += chunk.choices[0]?.delta.content ?? "";
    expect(second).toBe("Stand-in reply to: and a lagoon?");
    // One session more in the key's history, holding the whole conversation.
    const listed = await sessions();
    expect(listed.length).toBe(before + 1);
    expect(listed.find((s) => s.id === sid)).toMatchObject({ agentId: A.ada, title: "what is a reef?" });
    expect(await messagesOf(sid)).toEqual([
      ["user", "what is a reef?"],
      ["assistant", answer],
      ["user", "and a lagoon?"],
      ["assistant", second],
    ]);

    // A history Reef never answered (and the client's instructions) start a new session that is told them.
    const other = await client.chat.completions
      .create({
        model: A.ada,
        messages: [
          { role: "system", content: "Speak like a pirate." },
          { role: "user", content: "what is a reef?" },
          { role: "assistant", content: "An answer from somewhere else." },
          { role: "user", content: "and an atoll?" },
        ],
      })
      .withResponse();
    const otherSid = other.response.headers.get("x-reef-session-id") ?? "";
    expect(otherSid).not.toBe(sid);
    expect((await sessions()).length).toBe(before + 2);
    // The session shows the person's message; the agent was told the rest.
    expect(await messagesOf(otherSid)).toEqual([
      ["user", "and an atoll?"],
      ["assistant", other.data.choices[0]?.message.content],
    ]);
    const told = JSON.stringify(
      llm.requests.find((r) => JSON.stringify(r.body.messages).includes("and an atoll?"))?.body.messages,
    );
    expect(told).toContain("Speak like a pirate.");
    expect(told).toContain("An answer from somewhere else.");
    // The first session still holds its own four messages.
    expect((await messagesOf(sid)).length).toBe(4);
  }, 120_000);

  it("refuses a second request on a conversation whose answer is still streaming (409)", async () => {
    const client = openaiFor(A.key, A.wid);
    const first = await client.chat.completions.create({
      model: A.ada,
      messages: [{ role: "user", content: "ping" }],
    });
    const history = [
      { role: "user" as const, content: "ping" },
      { role: "assistant" as const, content: first.choices[0]?.message.content ?? "" },
      { role: "user" as const, content: "now a long answer please" },
    ];
    const stream = await client.chat.completions.create({ model: A.ada, messages: history, stream: true });
    const reader = stream[Symbol.asyncIterator]();
    // Streaming has begun: the same conversation again is busy.
    let head = "";
    while (!head) head = (await reader.next()).value?.choices[0]?.delta.content ?? "";
    const busy = await refusal(client.chat.completions.create({ model: A.ada, messages: history }));
    expect(busy.status).toBe(409);
    expect(busy.code).toBe("conversation_busy");
    let rest = head;
    for (let r = await reader.next(); !r.done; r = await reader.next()) rest += r.value.choices[0]?.delta.content ?? "";
    expect(rest).toBe(LONG);
  }, 120_000);

  it("refuses images, unknown models and another workspace's agents in OpenAI's shape", async () => {
    const client = openaiFor(A.key, A.wid);
    const image = await refusal(
      client.chat.completions.create({
        model: A.ada,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "what is this?" },
              { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
            ],
          },
        ],
      }),
    );
    expect(image).toBeInstanceOf(OpenAI.BadRequestError);
    expect(image.param).toBe("messages[0].content");
    expect(image.message).toMatch(/Images are not supported/);

    const invalid = await refusal(client.chat.completions.create({ model: A.ada, messages: [] }));
    expect(invalid).toBeInstanceOf(OpenAI.BadRequestError);
    expect(invalid.param).toBe("messages");

    for (const model of ["no-such-agent", "00000000-0000-4000-8000-000000000000", A.personal]) {
      const unknown = await refusal(
        client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] }),
      );
      expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
      expect(unknown).toMatchObject({ code: "model_not_found", param: "model", type: "invalid_request_error" });
    }

    // B's key on A's base URL sees nothing of A; on its own URL, A's agent is no model of B's.
    const fromB = await refusal(openaiFor(B.key, A.wid).models.list());
    expect([401, 403, 404]).toContain(fromB.status);
    expect(fromB.message).not.toContain(A.ada);
    const crossChat = await refusal(
      openaiFor(B.key, A.wid).chat.completions.create({ model: A.ada, messages: [{ role: "user", content: "hi" }] }),
    );
    expect([401, 403, 404]).toContain(crossChat.status);
    const ownUrl = await refusal(
      openaiFor(B.key, B.wid).chat.completions.create({ model: A.ada, messages: [{ role: "user", content: "hi" }] }),
    );
    expect(ownUrl).toBeInstanceOf(OpenAI.NotFoundError);
    expect(ownUrl.code).toBe("model_not_found");
    const bModels = await openaiFor(B.key, B.wid).models.list();
    expect(bModels.data.map((m) => m.id)).toEqual([B.agent]);
  });

  it("answers 429 insufficient_quota once the workspace's allowance is spent, and leaves no empty session", async () => {
    const usage = await alice.http.json("GET", `/api/v1/workspaces/${A.wid}/usage`);
    const used = usage.body.promptTokens + usage.body.completionTokens;
    expect(used).toBeGreaterThan(0);
    const budget = await alice.http.json("PATCH", `/api/v1/admin/workspaces/${A.wid}`, { monthlyTokenBudget: used });
    expect(budget.status, JSON.stringify(budget.body)).toBe(200);
    const before = (await withKey(A.key, `/api/v1/workspaces/${A.wid}/sessions?limit=100`)).body.items.length;
    try {
      const spent = await refusal(
        openaiFor(A.key, A.wid).chat.completions.create({
          model: A.ada,
          messages: [{ role: "user", content: "one more?" }],
        }),
      );
      expect(spent).toBeInstanceOf(OpenAI.RateLimitError);
      expect(spent).toMatchObject({ status: 429, code: "insufficient_quota", type: "insufficient_quota" });
      expect(spent.headers?.get("x-should-retry")).toBe("false");
      const after = (await withKey(A.key, `/api/v1/workspaces/${A.wid}/sessions?limit=100`)).body.items.length;
      expect(after).toBe(before);
    } finally {
      await alice.http.json("PATCH", `/api/v1/admin/workspaces/${A.wid}`, { monthlyTokenBudget: null });
    }
  });

  it("answers a revoked key with 401 invalid_api_key (AuthenticationError)", async () => {
    const made = await created(alice, `/api/v1/workspaces/${A.wid}/api-keys`, { name: "short-lived", role: "member" });
    const client = openaiFor(made.key, A.wid);
    expect((await client.models.list()).data.length).toBe(2);
    expect((await alice.http.json("DELETE", `/api/v1/workspaces/${A.wid}/api-keys/${made.apiKey.id}`)).status).toBe(
      204,
    );
    const revoked = await refusal(client.models.list());
    expect(revoked).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(revoked).toMatchObject({ status: 401, code: "invalid_api_key", type: "invalid_request_error" });
    const garbage = await refusal(openaiFor("reef_not-a-real-key", A.wid).models.list());
    expect(garbage.status).toBe(401);
  });
});
