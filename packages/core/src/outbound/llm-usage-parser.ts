import { StringDecoder } from "node:string_decoder";

/** Tokens a call used, as the vendor reported them. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * Reads token usage out of a vendor's answer as it streams past, without
 * holding the stream back or keeping it: each chunk is fed in as it is
 * forwarded, and only the events that carry usage are parsed.
 *
 * - OpenAI chat completions: the final chunk's `usage` (with
 *   `stream_options.include_usage`), or the JSON body's `usage`.
 * - OpenAI responses: `response.completed`'s `response.usage` (input/output tokens).
 * - Anthropic messages: `message_start`'s input tokens, `message_delta`'s output tokens.
 */
export interface UsageParser {
  push(chunk: Buffer): void;
  /** What was reported once the answer ended (zeros when the vendor said nothing). */
  end(): TokenUsage;
}

/** A non-streamed answer is kept for parsing up to this size; a bigger one is not metered by its body. */
const MAX_JSON_BYTES = 8 * 1024 * 1024;
/** An SSE event longer than this cannot be a usage event: dropped unparsed. */
const MAX_EVENT_CHARS = 1024 * 1024;

function int(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

/** Usage objects in the shapes vendors send: OpenAI chat (`prompt_tokens`), responses and Anthropic (`input_tokens`). */
function readUsage(u: unknown): Partial<TokenUsage> | undefined {
  if (!u || typeof u !== "object") return undefined;
  const o = u as Record<string, unknown>;
  if ("prompt_tokens" in o || "completion_tokens" in o) {
    return { promptTokens: int(o.prompt_tokens), completionTokens: int(o.completion_tokens) };
  }
  if ("input_tokens" in o || "output_tokens" in o) {
    // Anthropic counts cache reads and writes apart from input_tokens; the budget counts them all.
    const prompt = int(o.input_tokens) + int(o.cache_creation_input_tokens) + int(o.cache_read_input_tokens);
    return {
      ...("input_tokens" in o ? { promptTokens: prompt } : {}),
      ...("output_tokens" in o ? { completionTokens: int(o.output_tokens) } : {}),
    };
  }
  return undefined;
}

/** Folds one parsed SSE payload (or a whole JSON answer) into `acc`. */
function absorb(acc: TokenUsage, payload: unknown): void {
  if (!payload || typeof payload !== "object") return;
  const o = payload as Record<string, unknown>;
  const type = o.type;
  let found: Partial<TokenUsage> | undefined;
  if (type === "message_start") {
    found = readUsage((o.message as Record<string, unknown> | undefined)?.usage);
  } else if (type === "response.completed" || type === "response.incomplete" || type === "response.failed") {
    found = readUsage((o.response as Record<string, unknown> | undefined)?.usage);
  } else {
    // OpenAI's final chunk, Anthropic's message_delta, and non-streamed bodies of all three.
    found = readUsage(o.usage);
  }
  if (!found) return;
  // Anthropic sends input tokens at the start and (cumulative) output tokens later: keep the latest of each.
  if (found.promptTokens !== undefined && (found.promptTokens > 0 || type !== "message_delta")) {
    acc.promptTokens = found.promptTokens;
  }
  if (found.completionTokens !== undefined) acc.completionTokens = found.completionTokens;
}

/**
 * A parser for one answer. `contentType` picks the format: `text/event-stream`
 * is read event by event, JSON is parsed once at the end (capped), anything
 * else reports no usage.
 */
export function createUsageParser(contentType: string | undefined): UsageParser {
  const acc: TokenUsage = { promptTokens: 0, completionTokens: 0 };
  const type = (contentType ?? "").toLowerCase();
  if (type.includes("text/event-stream")) return sseParser(acc);
  if (type.includes("json")) return jsonParser(acc);
  return { push() {}, end: () => acc };
}

function jsonParser(acc: TokenUsage): UsageParser {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  return {
    push(chunk) {
      if (tooBig) return;
      size += chunk.length;
      if (size > MAX_JSON_BYTES) {
        tooBig = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    },
    end() {
      if (!tooBig && chunks.length) {
        try {
          absorb(acc, JSON.parse(Buffer.concat(chunks).toString("utf8")));
        } catch {
          // Not JSON after all (a proxy's error page): no usage to report.
        }
      }
      return acc;
    },
  };
}

function sseParser(acc: TokenUsage): UsageParser {
  const decoder = new StringDecoder("utf8");
  let buffer = "";

  function event(block: string) {
    // Cheap test first: most events (text deltas) carry no usage and are never parsed.
    if (!block.includes('"usage"')) return;
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
      .join("\n");
    if (!data || data === "[DONE]") return;
    try {
      absorb(acc, JSON.parse(data));
    } catch {
      // A malformed event is the gateway's to complain about; metering skips it.
    }
  }

  function drain(final: boolean) {
    for (;;) {
      const match = /\r?\n\r?\n/.exec(buffer);
      if (!match) break;
      event(buffer.slice(0, match.index));
      buffer = buffer.slice(match.index + match[0].length);
    }
    if (final && buffer.trim()) event(buffer);
    if (final || buffer.length > MAX_EVENT_CHARS) buffer = "";
  }

  return {
    push(chunk) {
      buffer += decoder.write(chunk);
      drain(false);
    },
    end() {
      buffer += decoder.end();
      drain(true);
      return acc;
    },
  };
}
