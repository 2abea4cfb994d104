/**
 * Waking a workspace, measured side by side in one run (process driver, unsandboxed as in runtime-bench.ts, the
 * LLM stand-in as vendor), each round on a fresh workspace:
 *  - stopped → first token: the first message to a workspace with no gateway (today's path: a cold start);
 *  - warm turn → first token (the gateway active);
 *  - paused → first token: the first message after the pause sweep froze an idle gateway (resume + turn);
 *  - swapped out → first token: the same after the swap-out sweep moved the paused gateway's memory to swap (only
 *    where the host has swap);
 *  - resident memory of the gateway's whole process tree, active and idle versus paused and swapped out.
 * Each turn opens its own connection to the gateway, as Reef's first turn after a wake does. The machine's swap
 * state is printed: a paused gateway only gives memory back where the kernel can swap it out.
 */

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { streamGatewayTurn } from "@reef/runtime";
import { startBenchRuntimes } from "./bench-runtimes.ts";
import { mb } from "./measure.ts";

const ROUNDS = Number(process.env.BENCH_WAKE_ROUNDS ?? 3);
const PAUSED_FOR_MS = Number(process.env.BENCH_WAKE_PAUSED_MS ?? 5_000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const list = (xs: number[]) => xs.map(Math.round).join(", ");

function swapState(): string {
  const lines = readFileSync("/proc/swaps", "utf8").trim().split("\n").slice(1);
  if (!lines.length) return "no swap enabled";
  return lines.map((l) => l.split(/\s+/).slice(0, 3).join(" ")).join("; ");
}

export async function wakeBench(): Promise<void> {
  const { driver, manager, owner, system, close } = await startBenchRuntimes({
    dirPrefix: "reef-bench-wake-",
    manager: {
      // Any idle gateway is paused, and any paused one swapped out, at the next sweep: the sweeps are called below.
      pauseAfterMs: 1,
      swapOutAfterMs: 0,
      limits: { memoryMb: 4096, cpus: 2, pids: 1024 },
    },
  });

  /** Wakes (or finds) the workspace's gateway and sends one turn: ms from asking to the first text. */
  async function firstToken(wid: string, text: string): Promise<number> {
    const t0 = performance.now();
    const conn = await manager.ensureRunning(system, wid);
    let first = Number.NaN;
    for await (const ev of streamGatewayTurn({
      endpoint: conn.endpoint,
      token: conn.token,
      agentId: "main",
      sessionKey: `agent:main:bench-${randomUUID()}`,
      text,
      signal: AbortSignal.timeout(300_000),
      connection: "own",
    })) {
      if (ev.type === "delta" && Number.isNaN(first)) first = performance.now() - t0;
      if (ev.type === "error") throw new Error(`the turn failed in the gateway: ${ev.message}`);
    }
    if (Number.isNaN(first)) throw new Error("the turn sent no text");
    return first;
  }

  const rss = async (wid: string) => {
    const handle = await manager.handle(wid);
    return (handle && (await driver.stats?.(handle))?.rssBytes) || 0;
  };

  try {
    const stopped: number[] = [];
    const warm: number[] = [];
    const paused: number[] = [];
    const activeRss: number[] = [];
    const pausedRss: number[] = [];
    const swapped: number[] = [];
    const swappedRss: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const wid = randomUUID();
      await owner.query("insert into workspaces (id, name) values ($1, 'bench')", [wid]);
      stopped.push(await firstToken(wid, `cold ${round}`));
      for (let i = 0; i < 3; i++) warm.push(await firstToken(wid, `warm ${round}.${i}`));
      await new Promise((r) => setTimeout(r, 3_000));
      activeRss.push(await rss(wid));
      const froze = await manager.pauseIdle();
      if (!froze.includes(wid)) throw new Error("the pause sweep did not pause the idle gateway");
      await new Promise((r) => setTimeout(r, PAUSED_FOR_MS));
      pausedRss.push(await rss(wid));
      paused.push(await firstToken(wid, `after pause ${round}`));
      await firstToken(wid, `warm again ${round}`);
      await new Promise((r) => setTimeout(r, 3_000));
      await manager.pauseIdle();
      await new Promise((r) => setTimeout(r, 10));
      if ((await manager.swapOutIdle()).includes(wid)) {
        await new Promise((r) => setTimeout(r, PAUSED_FOR_MS));
        swappedRss.push(await rss(wid));
        swapped.push(await firstToken(wid, `after swap-out ${round}`));
      }
      await manager.stop(system, wid, "bench");
    }
    const sw = median(stopped);
    console.log(`waking a workspace (${ROUNDS} rounds, process driver, unsandboxed; swap: ${swapState()})`);
    console.log(`  stopped → first token  median ${Math.round(sw)} ms  (${list(stopped)})`);
    console.log(`  warm turn → first token median ${Math.round(median(warm))} ms  (${list(warm)})`);
    console.log(
      `  paused → first token   median ${Math.round(median(paused))} ms  (${list(paused)})  = ${(median(paused) / sw).toFixed(3)} × stopped`,
    );
    if (swapped.length) {
      console.log(
        `  swapped out → first token median ${Math.round(median(swapped))} ms  (${list(swapped)})  = ${(median(swapped) / sw).toFixed(3)} × stopped`,
      );
    } else console.log("  swapped out: not measured (no swap on this host: paused gateways keep their memory)");
    const active = median(activeRss);
    console.log(
      `  gateway tree RSS: active idle ${mb(active)}, paused ${PAUSED_FOR_MS / 1000} s ${mb(median(pausedRss))}  = ${(median(pausedRss) / active).toFixed(2)} × active${swappedRss.length ? `, swapped out ${mb(median(swappedRss))} = ${(median(swappedRss) / active).toFixed(2)} × active` : ""}`,
    );
  } finally {
    await close();
  }
}
