import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** A chat request as the stand-in received it, for assertions. */
export interface RecordedRequest {
  path: string;
  authorization: string | undefined;
  body: { model?: string; messages?: { role: string; content: unknown }[]; stream?: boolean; [k: string]: unknown };
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
  /** Builds the reply from the last user message. */
  reply?: (lastUserText: string) => string;
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
 * Replies are deterministic: "Stand-in reply to: <last user message>".
 */
export async function startLlmStandIn(opts: LlmStandInOptions): Promise<LlmStandIn> {
  const models = opts.models ?? ["stand-in-model"];
  const reply = opts.reply ?? ((text: string) => `Stand-in reply to: ${text}`);
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
          .replace(/<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>[\s\S]*?<<<END_OPENCLAW_INTERNAL_CONTEXT>>>/g, "")
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
    const text = reply(userText);
    const promptTokens = JSON.stringify(body.messages ?? []).length >> 2;
    const pieces = text.match(/\S+\s*/g) ?? [text];
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
        choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
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
    send(chunk({}, "stop"));
    const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
    if (streamOptions?.include_usage)
      send({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage });
    res.end("data: [DONE]\n\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
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
