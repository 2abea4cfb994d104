/**
 * Time to first token, side by side in one run on one warm gateway (process
 * driver), with the LLM stand-in in its own process as the vendor: the same
 * prompt sent
 *  - straight to the gateway (`streamGatewayTurn` on its shared connection, as Reef sends it),
 *  - through Reef's own chat stream (POST …/sessions/:id/messages, a person's cookie session),
 *  - through the OpenAI-compatible API (POST …/openai/v1/chat/completions with
 *    `stream: true` and an API key; each request a new conversation, so the
 *    session it creates is inside the clock, as for a client's first message),
 * in rounds whose order rotates, a fresh session on every side every turn.
 * Prints p50/p95 per path and the ratios OpenAI:Reef and OpenAI:gateway.
 * `BENCH_ONLY=openai` runs only this; `BENCH_OPENAI_TURNS` sets the rounds (default 30).
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { RuntimeConnection } from "@reef/core";
import { streamGatewayTurn } from "@reef/runtime";
import { listenLocal, readEvents, signUp } from "@reef/testing";
import { addBenchAgent, apiJson, benchCleanups, startBenchApp } from "./bench-app.ts";
import { benchAppConfig } from "./bench-postgres.ts";
import { INSTRUCTIONS, replyTo, startStandInAndPostgres } from "./chat-bench.ts";
import { percentile } from "./measure.ts";

const TURNS = Math.max(20, Number(process.env.BENCH_OPENAI_TURNS ?? 30));
const WARM_TURNS = 2;
const SYSTEM = { actor: { kind: "system" as const, name: "openai-bench" } };

const p = (xs: number[], q: number) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    q,
  );
const ms = (x: number) => `${Math.round(x)} ms`.padStart(7);

/** One measured turn: when the first text arrived (from sending), the text, what went wrong. */
interface Turn {
  ttftMs: number;
  text: string;
  error?: string;
}

/** Reads an OpenAI `chat.completion.chunk` stream to `[DONE]`, timing the first piece of text. */
async function readOpenAiStream(res: Response, started: number): Promise<Turn> {
  const turn: Turn = { ttftMs: Number.NaN, text: "" };
  if (!res.body) return { ...turn, error: "no body" };
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let done = false;
  while (!done) {
    const { done: end, value } = await reader.read();
    if (end) break;
    buf += decoder.decode(value, { stream: true });
    for (let at = buf.indexOf("\n\n"); at >= 0; at = buf.indexOf("\n\n")) {
      const event = buf.slice(0, at);
      buf = buf.slice(at + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const payload = line.slice(6);
        if (payload === "[DONE]") {
          done = true;
          continue;
        }
        const chunk = JSON.parse(payload) as { error?: unknown; choices?: { delta?: { content?: string } }[] };
        if (chunk.error) return { ...turn, error: `error chunk: ${JSON.stringify(chunk.error)}` };
        const piece = chunk.choices?.[0]?.delta?.content;
        if (piece) {
          if (!turn.text) turn.ttftMs = performance.now() - started;
          turn.text += piece;
        }
      }
    }
  }
  return done ? turn : { ...turn, error: "stream ended without [DONE]" };
}

export async function openaiBench(): Promise<void> {
  const vendorKey = `sk-bench-${randomBytes(8).toString("hex")}`;
  const cleanups = benchCleanups("openai bench");
  try {
    const { llm, db } = await startStandInAndPostgres(cleanups, vendorKey);
    const config = {
      ...benchAppConfig(),
      rateLimitOpenai: { points: 10_000_000, durationSec: 60 },
      runtimeStartTimeoutSeconds: 300,
      runtimeIdleTimeoutMinutes: 600,
    };
    const { app, manager, workspaceIds } = await startBenchApp(cleanups, db, config);
    const base = await listenLocal(app);

    const owner = await signUp(app, { email: "openai-owner@bench.test", name: "Owner" });
    const wid = owner.workspaceId;
    workspaceIds.push(wid);
    const agentId = await addBenchAgent(owner.client, wid, llm, vendorKey, INSTRUCTIONS);
    const apiKey = (
      await apiJson(owner.client, "POST", `/api/v1/workspaces/${wid}/api-keys`, { name: "bench", role: "member" })
    ).key as string;
    const cookieHeaders: Record<string, string> = {
      "content-type": "application/json",
      cookie: [...owner.client.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
      "x-csrf-token": owner.client.cookies.get("reef_csrf") ?? "",
    };

    const t0 = performance.now();
    const conn: RuntimeConnection = await manager.ensureRunning(SYSTEM, wid);
    console.log(`openai bench: gateway cold start ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const direct = async (text: string): Promise<Turn> => {
      const turn: Turn = { ttftMs: Number.NaN, text: "" };
      const started = performance.now();
      try {
        for await (const ev of streamGatewayTurn({
          endpoint: conn.endpoint,
          token: conn.token,
          agentId,
          sessionKey: `bench-direct-${randomUUID()}`,
          text,
          instructions: INSTRUCTIONS,
          signal: AbortSignal.timeout(300_000),
          connection: "shared",
        })) {
          if (ev.type === "delta") {
            if (!turn.text) turn.ttftMs = performance.now() - started;
            turn.text = ev.replace ? ev.text : turn.text + ev.text;
          } else if (ev.type === "error") turn.error = ev.message;
        }
      } catch (err) {
        turn.error = String(err);
      }
      return turn;
    };

    const viaReef = async (text: string): Promise<Turn> => {
      // The session is made outside the clock: Reef's web app makes it before the first message.
      const sid = (await apiJson(owner.client, "POST", `/api/v1/workspaces/${wid}/sessions`, { agentId })).id as string;
      const started = performance.now();
      const res = await fetch(`${base}/api/v1/workspaces/${wid}/sessions/${sid}/messages`, {
        method: "POST",
        headers: cookieHeaders,
        body: JSON.stringify({ text }),
      });
      if (res.status !== 200) return { ttftMs: Number.NaN, text: "", error: `HTTP ${res.status}` };
      const readFrom = performance.now() - started;
      const events = await readEvents(res);
      const deltas = events.filter((e) => e.event === "delta");
      const turn: Turn = {
        ttftMs: deltas[0] ? readFrom + deltas[0].atMs : Number.NaN,
        text: deltas.map((e) => String(e.data.text)).join(""),
      };
      if (events.at(-1)?.event !== "done") turn.error = `ended with ${JSON.stringify(events.at(-1))}`;
      return turn;
    };

    const viaOpenAi = async (text: string): Promise<Turn> => {
      const started = performance.now();
      const res = await fetch(`${base}/api/v1/workspaces/${wid}/openai/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ model: agentId, messages: [{ role: "user", content: text }], stream: true }),
      });
      if (res.status !== 200) {
        return { ttftMs: Number.NaN, text: "", error: `HTTP ${res.status} ${(await res.text()).slice(0, 200)}` };
      }
      return readOpenAiStream(res, started);
    };

    const sides = { gateway: direct, reef: viaReef, openai: viaOpenAi } as const;
    type Side = keyof typeof sides;
    const order: Side[] = ["gateway", "reef", "openai"];
    const times: Record<Side, number[]> = { gateway: [], reef: [], openai: [] };
    for (let i = 0; i < WARM_TURNS + TURNS; i++) {
      // Rotate who goes first, so no side always runs right after the same other one.
      const round = [...order.slice(i % 3), ...order.slice(0, i % 3)];
      for (const side of round) {
        const text = `openai bench ${side} turn ${i}`;
        const turn = await sides[side](text);
        if (turn.error) throw new Error(`${side} turn ${i}: ${turn.error}`);
        if (turn.text !== replyTo(text))
          throw new Error(`${side} turn ${i}: unexpected answer ${turn.text.slice(0, 120)}`);
        if (i >= WARM_TURNS) times[side].push(turn.ttftMs);
      }
    }
    console.log(
      `time to first token, one warm gateway, ${TURNS} rounds after ${WARM_TURNS} warm-up rounds, same agent and prompt shape, order rotating each round; a new session per turn on every side (the OpenAI path creates its session inside the clock)`,
    );
    for (const side of order) {
      const label = { gateway: "straight to the gateway", reef: "Reef chat stream", openai: "OpenAI-compatible API" }[
        side
      ];
      console.log(`  ${label.padEnd(24)} p50 ${ms(p(times[side], 50))}  p95 ${ms(p(times[side], 95))}`);
    }
    const ratio = (a: Side, b: Side, q: number) => (p(times[a], q) / p(times[b], q)).toFixed(2);
    console.log(
      `  OpenAI:Reef     p50 ${ratio("openai", "reef", 50)}  p95 ${ratio("openai", "reef", 95)}\n  OpenAI:gateway  p50 ${ratio("openai", "gateway", 50)}  p95 ${ratio("openai", "gateway", 95)}\n  Reef:gateway    p50 ${ratio("reef", "gateway", 50)}  p95 ${ratio("reef", "gateway", 95)}`,
    );
  } finally {
    await cleanups.done();
  }
}

if (import.meta.main) await openaiBench();
