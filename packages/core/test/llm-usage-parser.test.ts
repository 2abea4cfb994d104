import { describe, expect, it } from "vitest";
import { endpointOf } from "../src/outbound/llm-metering.ts";
import { createUsageParser } from "../src/outbound/llm-usage-parser.ts";

/** Feeds `text` in pieces of `size` bytes, as a network delivers it (events and UTF-8 characters split anywhere). */
function feed(contentType: string, text: string, size: number) {
  const parser = createUsageParser(contentType);
  const bytes = Buffer.from(text, "utf8");
  for (let i = 0; i < bytes.length; i += size) parser.push(bytes.subarray(i, i + size));
  return parser.end();
}

const sse = (events: unknown[]) => events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("");

describe("usage read from a passing answer", () => {
  it("OpenAI chat completions: the final usage chunk, however the stream is cut", () => {
    const text = `${sse([
      { choices: [{ delta: { content: "Grüße, " } }], usage: null },
      { choices: [{ delta: { content: "wörld" } }], usage: null },
      { choices: [], usage: { prompt_tokens: 120, completion_tokens: 7, total_tokens: 127 } },
    ])}data: [DONE]\n\n`;
    for (const size of [1, 3, 17, 4096]) {
      expect(feed("text/event-stream; charset=utf-8", text, size)).toEqual({ promptTokens: 120, completionTokens: 7 });
    }
  });

  it("OpenAI responses: response.completed's usage, not the null usage of response.created", () => {
    const text = [
      "event: response.created",
      `data: ${JSON.stringify({ type: "response.created", response: { usage: null } })}`,
      "",
      "event: response.output_text.delta",
      `data: ${JSON.stringify({ type: "response.output_text.delta", delta: "hi" })}`,
      "",
      "event: response.completed",
      `data: ${JSON.stringify({ type: "response.completed", response: { usage: { input_tokens: 40, output_tokens: 9 } } })}`,
      "",
      "",
    ].join("\r\n");
    expect(feed("text/event-stream", text, 5)).toEqual({ promptTokens: 40, completionTokens: 9 });
  });

  it("Anthropic messages: input tokens (with cache) from message_start, output tokens from the last message_delta", () => {
    const text = [
      "event: message_start",
      `data: ${JSON.stringify({ type: "message_start", message: { usage: { input_tokens: 25, cache_read_input_tokens: 100, output_tokens: 1 } } })}`,
      "",
      "event: content_block_delta",
      `data: ${JSON.stringify({ type: "content_block_delta", delta: { type: "text_delta", text: "usage" } })}`,
      "",
      "event: message_delta",
      `data: ${JSON.stringify({ type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 15 } })}`,
      "",
      "",
    ].join("\n");
    expect(feed("text/event-stream", text, 7)).toEqual({ promptTokens: 125, completionTokens: 15 });
  });

  it("non-streamed JSON answers of each vendor", () => {
    const openai = JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } });
    expect(feed("application/json", openai, 2)).toEqual({ promptTokens: 3, completionTokens: 4 });
    const anthropic = JSON.stringify({ type: "message", usage: { input_tokens: 5, output_tokens: 6 } });
    expect(feed("application/json", anthropic, 100)).toEqual({ promptTokens: 5, completionTokens: 6 });
  });

  it("reports nothing for answers without usage, or that are not JSON or SSE", () => {
    expect(feed("application/json", "<html>bad gateway</html>", 4)).toEqual({ promptTokens: 0, completionTokens: 0 });
    expect(feed("text/plain", "usage: 5", 4)).toEqual({ promptTokens: 0, completionTokens: 0 });
    expect(feed("text/event-stream", 'data: {"usage": broken\n\n', 4)).toEqual({
      promptTokens: 0,
      completionTokens: 0,
    });
  });
});

describe("endpoint names", () => {
  it("names the vendor API a path calls", () => {
    expect(endpointOf("chat/completions")).toBe("chat.completions");
    expect(endpointOf("v1/messages?beta=true")).toBe("messages");
    expect(endpointOf("responses")).toBe("responses");
    expect(endpointOf("models")).toBe("models");
    expect(endpointOf("v1/models/gpt-4o")).toBe("models");
  });
});
