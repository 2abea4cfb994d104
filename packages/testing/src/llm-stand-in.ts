import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** A chat request as the stand-in received it, for assertions. */
export interface RecordedRequest {
  path: string;
  authorization: string | undefined;
  body: { model?: string; messages?: { role: string; content: unknown }[]; stream?: boolean; [k: string]: unknown };
}

/** A tool call the stand-in makes instead of answering, as a model asking the agent to run a tool would. */
export interface StandInToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

export interface LlmStandIn {
  /** Base URL to configure as an OpenAI-compatible provider (ends in /v1). */
  baseUrl: string;
  requests: RecordedRequest[];
  /** Streams the caller closed before the answer ended (an abort that reached the vendor). */
  readonly cutShort: number;
  close(): Promise<void>;
}

export interface LlmStandInOptions {
  /** The API key callers must present; any other gets 401 like a real vendor. */
  apiKey: string;
  /** The model ids it serves. */
  models?: string[];
  /** Delay between streamed chunks, to observe streaming. */
  chunkDelayMs?: number;
  /**
   * Builds the reply from the last user message and, when the request carries the
   * results of the stand-in's own tool calls, those results' text.
   */
  reply?: (lastUserText: string, toolResults: string[]) => string;
  /**
   * Tool calls to make for a person's message instead of answering it (none or
   * an empty list: answer). The agent runs them and sends the results in its
   * next request, which the stand-in answers with `reply`.
   */
  toolCalls?: (lastUserText: string) => StandInToolCall[] | undefined;
  /**
   * Words streamed before the tool calls, in the same response (as models often
   * say what they are about to do): none by default.
   */
  toolPreamble?: (lastUserText: string) => string | undefined;
  /**
   * An HTTP error to answer a person's message with instead (status and the
   * vendor's message), as a vendor having a bad day does: none by default.
   */
  fail?: (lastUserText: string) => { status: number; message: string } | undefined;
  /** The address to listen on (default 127.0.0.1; a docker bridge's gateway for callers in containers). */
  host?: string;
}

/** A `reply` for agents with tools: what the tools answered (`Saw: a | b`), or else the person's text echoed. */
export function echoReply(lastUserText: string, toolResults: string[]): string {
  return toolResults.length ? `Saw: ${toolResults.join(" | ")}` : `Stand-in reply to: ${lastUserText}`;
}

/** A `toolCalls` that has the agent run, with OpenClaw's `exec` tool, whatever follows `run:` in the message. */
export function execAfterRun(lastUserText: string): StandInToolCall[] | undefined {
  const at = lastUserText.indexOf("run:");
  return at < 0 ? undefined : [{ name: "exec", arguments: { command: lastUserText.slice(at + 4).trim() } }];
}

/** A `toolCalls` for "call <tool>": the agent calls that tool (as OpenClaw names it) with no arguments. */
export function callNamedTool(lastUserText: string): StandInToolCall[] | undefined {
  const m = /call (\S+)/.exec(lastUserText);
  return m?.[1] ? [{ name: m[1], arguments: {} }] : undefined;
}

const INTERNAL_CONTEXT = /<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>[\s\S]*?<<<END_OPENCLAW_INTERNAL_CONTEXT>>>/g;

/**
 * The text of the tool results a request carries for the person's last message
 * (every tool message after it; OpenClaw appends its internal context blocks as
 * further user messages, which do not count): what the agent's tools answered.
 */
export function toolResultsOf(messages: RecordedRequest["body"]["messages"]): string[] {
  const all = messages ?? [];
  const lastUser = all.findLastIndex(
    (m) => m.role === "user" && textOf(m.content).replace(INTERNAL_CONTEXT, "").trim(),
  );
  return all
    .slice(lastUser + 1)
    .filter((m) => m.role === "tool")
    .map((m) => textOf(m.content));
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === "object" && p && "text" in p ? String((p as { text: unknown }).text) : ""))
      .join("");
  }
  return "";
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * A local server speaking the OpenAI chat-completions API (streaming and not),
 * standing in for an LLM vendor so gateway tests run real agent turns offline.
 * Replies are deterministic: "Stand-in reply to: <last user message>", or
 * "Stand-in saw tool results: …" after tool calls it was told to make.
 */
export async function startLlmStandIn(opts: LlmStandInOptions): Promise<LlmStandIn> {
  const models = opts.models ?? ["stand-in-model"];
  const reply =
    opts.reply ??
    ((text: string, toolResults: string[]) =>
      toolResults.length ? `Stand-in saw tool results: ${toolResults.join(" | ")}` : `Stand-in reply to: ${text}`);
  let callSeq = 0;
  // Each message gets tool calls once: whatever the agent sends back next is answered in words, so a turn always ends.
  const calledFor = new Set<string>();
  const requests: RecordedRequest[] = [];
  let cutShort = 0;

  const server: Server = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const authorization = req.headers.authorization;
    if (authorization !== `Bearer ${opts.apiKey}`) {
      return json(res, 401, {
        error: { message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key" },
      });
    }
    if (req.method === "GET" && path === "/v1/models") {
      return json(res, 200, {
        object: "list",
        data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "stand-in" })),
      });
    }
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      return json(res, 404, { error: { message: `No route ${req.method} ${path}`, type: "invalid_request_error" } });
    }
    let body: RecordedRequest["body"];
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      return json(res, 400, { error: { message: "Invalid JSON body", type: "invalid_request_error" } });
    }
    requests.push({ path, authorization, body });
    if (!body.model || !models.includes(body.model)) {
      return json(res, 404, {
        error: {
          message: `The model ${body.model} does not exist`,
          type: "invalid_request_error",
          code: "model_not_found",
        },
      });
    }
    // OpenClaw sends the user's words with a timestamp and a runtime footer, plus
    // internal context blocks as further user messages; answer the words.
    const userTexts = (body.messages ?? [])
      .filter((m) => m.role === "user")
      .map((m) =>
        textOf(m.content)
          .replace(INTERNAL_CONTEXT, "")
          .replace(/\n\nRuntime: [\s\S]*$/, "")
          .replace(/^\[[^\]]*\]\s*/, "")
          // A turn cut short is replayed before the next one as context; answer the active prompt.
          .replace(/^\[Queued user message[^\]]*\][\s\S]*\n\n/, "")
          .trim(),
      )
      .filter(Boolean)
      // OpenClaw's own retry prompt after a failed attempt: answer the person's last words instead.
      .filter((t) => !t.startsWith("Continue the current task from the existing transcript"));
    const userText = userTexts.at(-1) ?? "";
    const failure = opts.fail?.(userText);
    if (failure) return json(res, failure.status, { error: { message: failure.message, type: "server_error" } });
    const toolResults = toolResultsOf(body.messages);
    // Tool calls answer a person's message; once their results are back, the stand-in answers in words.
    const calls = toolResults.length || calledFor.has(userText) ? [] : (opts.toolCalls?.(userText) ?? []);
    if (calls.length) calledFor.add(userText);
    const offered = new Set(
      ((body.tools as { function?: { name?: string } }[] | undefined) ?? []).map((t) => t.function?.name),
    );
    // OpenClaw may put its tools behind a search surface: a tool it does not offer
    // directly is called through its `tool_call` dispatcher, as a model would.
    const viaDispatcher = (c: StandInToolCall): StandInToolCall =>
      offered.has(c.name) || !offered.has("tool_call")
        ? c
        : { name: "tool_call", arguments: { id: c.name, args: c.arguments } };
    const toolCalls = calls.map(viaDispatcher).map((c) => ({
      id: `call_standin_${++callSeq}`,
      type: "function" as const,
      function: { name: c.name, arguments: JSON.stringify(c.arguments) },
    }));
    const text = toolCalls.length ? (opts.toolPreamble?.(userText) ?? "") : reply(userText, toolResults);
    const promptTokens = JSON.stringify(body.messages ?? []).length >> 2;
    const pieces = text ? (text.match(/\S+\s*/g) ?? [text]) : [];
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: pieces.length,
      total_tokens: promptTokens + pieces.length,
    };
    const id = `chatcmpl-standin-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    if (!body.stream) {
      return json(res, 200, {
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [
          toolCalls.length
            ? {
                index: 0,
                message: { role: "assistant", content: text || null, tool_calls: toolCalls },
                finish_reason: "tool_calls",
              }
            : { index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" },
        ],
        usage,
      });
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model: body.model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    send(chunk({ role: "assistant", content: "" }, null));
    for (const piece of pieces) {
      if (res.destroyed) {
        cutShort += 1;
        return;
      }
      send(chunk({ content: piece }, null));
      if (opts.chunkDelayMs) await new Promise((r) => setTimeout(r, opts.chunkDelayMs));
    }
    // OpenAI streams a tool call as its id and name first, then its arguments.
    toolCalls.forEach((c, index) => {
      send(
        chunk(
          { tool_calls: [{ index, id: c.id, type: "function", function: { name: c.function.name, arguments: "" } }] },
          null,
        ),
      );
      send(chunk({ tool_calls: [{ index, function: { arguments: c.function.arguments } }] }, null));
    });
    send(chunk({}, toolCalls.length ? "tool_calls" : "stop"));
    const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
    if (streamOptions?.include_usage)
      send({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage });
    res.end("data: [DONE]\n\n");
  });
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    baseUrl: `http://${host}:${port}/v1`,
    requests,
    get cutShort() {
      return cutShort;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
