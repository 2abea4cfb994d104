import { describe, expect, it } from "vitest";
import { type ChatEvent, createTurnRegistry } from "../src/chat/turn-registry.ts";
import { classifyProviderError, gatewayErrorSentence } from "../src/chat/turn-runner.ts";

/** A turn whose events are released by hand, ending `done` unless stopped. */
function scripted() {
  const pending: ChatEvent[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  const run = async function* (signal: AbortSignal): AsyncGenerator<ChatEvent> {
    for (;;) {
      const ev = pending.shift();
      if (ev) {
        yield ev;
        continue;
      }
      if (finished) break;
      if (signal.aborted) {
        yield { type: "done", messageId: 2, status: signal.reason === "interrupt" ? "complete" : "aborted" };
        return;
      }
      await new Promise<void>((r) => {
        wake = r;
        signal.addEventListener("abort", () => r(), { once: true });
      });
    }
    yield { type: "done", messageId: 2, status: "complete" };
  };
  return {
    run,
    emit(ev: ChatEvent) {
      pending.push(ev);
      wake?.();
    },
    finish() {
      finished = true;
      wake?.();
    },
  };
}

async function collect(events: AsyncIterable<ChatEvent> | undefined): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  if (!events) throw new Error("nothing to follow");
  for await (const ev of events) out.push(ev);
  return out;
}

const tick = () => new Promise((r) => setTimeout(r, 5));
const step = (id: string, status: "running" | "ok") => ({ id, name: "exec", args: "{}", status, startedAt: "t" });

describe("the turn registry", () => {
  it("keeps a turn going when its first follower leaves, and a late follower gets the state so far then the rest", async () => {
    const reg = createTurnRegistry();
    const t = scripted();
    const first = reg.start("s1", { userMessageId: 1, assistantMessageId: 2 }, t.run);
    t.emit({ type: "runtime", state: "starting", expectedSeconds: 12 });
    t.emit({ type: "delta", text: "Hel" });
    t.emit({ type: "tool", step: step("a", "running") });
    t.emit({ type: "delta", text: "lo" });
    t.emit({ type: "tool", step: step("a", "ok") });
    await tick();
    first.close();
    expect(reg.has("s1")).toBe(true);

    const late = reg.attach("s1");
    expect(late).toMatchObject({ userMessageId: 1, assistantMessageId: 2 });
    t.emit({ type: "delta", text: " world" });
    await tick();
    t.finish();
    const seen = await collect(late?.events);
    expect(seen).toEqual([
      { type: "delta", text: "Hello", replace: true },
      { type: "tool", step: step("a", "ok") },
      { type: "delta", text: " world" },
      { type: "done", messageId: 2, status: "complete" },
    ]);
    expect(reg.has("s1")).toBe(false);
    expect(reg.attach("s1")).toBeUndefined();
  });

  it("shows a runtime still waking to a late follower", async () => {
    const reg = createTurnRegistry();
    const t = scripted();
    reg.start("s2", { userMessageId: 1, assistantMessageId: 2 }, t.run).close();
    t.emit({ type: "runtime", state: "starting", expectedSeconds: 12 });
    await tick();
    const late = reg.attach("s2");
    t.finish();
    expect((await collect(late?.events))[0]).toEqual({ type: "runtime", state: "starting", expectedSeconds: 12 });
  });

  it("stop reaches only the session's turn, with its reason; interruptAll waits for every turn to end", async () => {
    const reg = createTurnRegistry();
    const a = scripted();
    const b = scripted();
    const subA = reg.start("a", { userMessageId: 1, assistantMessageId: 2 }, a.run);
    const subB = reg.start("b", { userMessageId: 3, assistantMessageId: 4 }, b.run);
    expect(reg.stop("nope", "stop")).toBe(false);
    expect(reg.stop("a", "stop")).toBe(true);
    expect((await collect(subA.events)).at(-1)).toEqual({ type: "done", messageId: 2, status: "aborted" });
    expect(reg.has("b")).toBe(true);
    await reg.interruptAll();
    expect(reg.running()).toBe(0);
    expect((await collect(subB.events)).at(-1)).toEqual({ type: "done", messageId: 2, status: "complete" });
  });
});

describe("provider errors from the gateway", () => {
  it("are classified into stable codes", () => {
    expect(classifyProviderError("401 Incorrect API key provided")).toBe("PROVIDER_AUTH");
    expect(classifyProviderError("upstream provider timeout")).toBe("PROVIDER_TIMEOUT");
    expect(classifyProviderError("429 rate limit reached")).toBe("RATE_LIMITED");
    expect(classifyProviderError("insufficient_quota: budget used up")).toBe("QUOTA_EXCEEDED");
    expect(classifyProviderError("upstream provider error")).toBe("PROVIDER_ERROR");
  });

  it("tells a gateway's provider error as one plain sentence, naming the provider instead of its id", () => {
    // What OpenClaw 2026.9.6 says after giving up on a provider's HTTP 500.
    const id = "0b6c7a3e-1111-4222-8333-444455556666";
    const said = `⚠️ ${id}/stand-in-model request failed (provider internal error, HTTP 500). This is usually temporary — try again shortly.`;
    const sentence = gatewayErrorSentence(said, { id, name: "Team OpenAI" });
    expect(sentence).toBe(
      "The agent could not answer: Team OpenAI/stand-in-model request failed (provider internal error, HTTP 500). This is usually temporary — try again shortly.",
    );
    expect(gatewayErrorSentence("the agent run ended", null)).toBe("The agent could not answer: the agent run ended.");
  });
});
