/**
 * Runtime figures, measured side by side in one run:
 *  - cold start (stopped workspace → gateway ready) through Reef's manager versus
 *    spawning the same gateway by hand with the same config;
 *  - Reef's trimmed gateway config versus OpenClaw's defaults: start time and RSS;
 *  - idle and active RSS of one gateway, and how many such workspaces fit in this
 *    machine's memory.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  EMBEDDING_ENV,
  GATEWAY_NODE_ENV,
  type GatewaySettings,
  gatewayFetch,
  installedOpenclawVersion,
  renderGatewayConfig,
} from "@reef/runtime";
import { startBenchRuntimes } from "./bench-runtimes.ts";
import { groupRss, mb } from "./measure.ts";

const ROUNDS = Number(process.env.BENCH_RUNTIME_ROUNDS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function waitReady(port: number, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Spawns a gateway by hand, as an operator following OpenClaw's embedding guide would. */
async function byHand(config: Record<string, unknown>, port: number, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "reef-bench-gw-"));
  for (const d of ["home", "tmp", "state"]) mkdirSync(join(dir, d));
  writeFileSync(join(dir, "state", "openclaw.json"), JSON.stringify(config), { mode: 0o600 });
  const entry = join(dirname(fileURLToPath(import.meta.resolve("openclaw"))), "..", "openclaw.mjs");
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [entry, "gateway", "run", "--port", String(port), "--bind", "loopback", "--auth", "token"],
    {
      detached: true,
      stdio: "ignore",
      env: {
        PATH: "/usr/local/bin:/usr/bin:/bin",
        HOME: join(dir, "home"),
        TMPDIR: join(dir, "tmp"),
        OPENCLAW_CONFIG_PATH: join(dir, "state", "openclaw.json"),
        OPENCLAW_STATE_DIR: join(dir, "state"),
        ...EMBEDDING_ENV,
        ...env,
      },
    },
  );
  await waitReady(port, child);
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 3000));
  const rss = groupRss(child.pid ?? 0);
  process.kill(-(child.pid ?? 0), "SIGKILL");
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
  return { ms, rss };
}

/** OpenClaw's own defaults: only what a headless gateway needs to start at all. */
function defaultConfig(port: number, token: string, settings: GatewaySettings) {
  const rendered = renderGatewayConfig({
    ...settings,
    port,
    token,
    paths: {
      logFile: join(tmpdir(), `reef-bench-default-${port}.log`),
      agentsDir: join(tmpdir(), "reef-bench-agents"),
    },
  }) as Record<string, any>;
  return {
    gateway: {
      mode: "local",
      bind: "loopback",
      port,
      auth: { mode: "token", token },
      http: { endpoints: { chatCompletions: { enabled: true } } },
    },
    models: { providers: rendered.models.providers },
    agents: { defaults: { model: rendered.agents.defaults.model } },
  };
}

export async function runtimeBench(): Promise<void> {
  const { settings, driver, manager, owner, system, close } = await startBenchRuntimes({
    dirPrefix: "reef-bench-rt-",
    manager: {},
  });
  try {
    const reef: number[] = [];
    const wakes: number[] = [];
    const hand: number[] = [];
    const defaults: { ms: number; rss: number }[] = [];
    const trimmed: { ms: number; rss: number }[] = [];
    let port = 30_000;
    for (let round = 0; round < ROUNDS; round++) {
      const wid = randomUUID();
      await owner.query("insert into workspaces (id, name) values ($1, 'bench')", [wid]);
      const t0 = performance.now();
      await manager.ensureRunning(system, wid);
      reef.push(performance.now() - t0);
      await manager.stop(system, wid, "bench");
      // The common case: a workspace waking again after an idle stop (its state and compile cache kept).
      const t1 = performance.now();
      await manager.ensureRunning(system, wid);
      wakes.push(performance.now() - t1);
      await manager.stop(system, wid, "bench");
      const token = randomBytes(24).toString("base64url");
      port += 120;
      const ours = renderGatewayConfig({
        ...settings,
        openclawVersion: installedOpenclawVersion(),
        port,
        token,
        paths: { logFile: join(tmpdir(), `reef-bench-${port}.log`), agentsDir: join(tmpdir(), "reef-bench-agents") },
      });
      const trimmedRun = await byHand(ours, port, GATEWAY_NODE_ENV);
      hand.push(trimmedRun.ms);
      trimmed.push(trimmedRun);
      port += 120;
      defaults.push(await byHand(defaultConfig(port, token, settings), port));
    }
    console.log(
      `gateway cold start through Reef     median ${Math.round(median(reef))} ms  (${reef.map(Math.round).join(", ")})`,
    );
    console.log(
      `same gateway spawned by hand         median ${Math.round(median(hand))} ms  (${hand.map(Math.round).join(", ")})`,
    );
    console.log(`ratio Reef : by hand = ${(median(reef) / median(hand)).toFixed(2)}  (${ROUNDS} rounds, alternating)`);
    console.log(
      `wake after an idle stop via Reef    median ${Math.round(median(wakes))} ms  (${wakes.map(Math.round).join(", ")})`,
    );
    console.log(
      `Reef's gateway config  start median ${Math.round(median(trimmed.map((r) => r.ms)))} ms, RSS ${mb(median(trimmed.map((r) => r.rss)))}`,
    );
    console.log(
      `OpenClaw default config start median ${Math.round(median(defaults.map((r) => r.ms)))} ms, RSS ${mb(median(defaults.map((r) => r.rss)))}`,
    );
    console.log(
      `ratio Reef : default = start ${(median(trimmed.map((r) => r.ms)) / median(defaults.map((r) => r.ms))).toFixed(2)}, RSS ${(median(trimmed.map((r) => r.rss)) / median(defaults.map((r) => r.rss))).toFixed(2)}`,
    );

    // Idle, then active RSS of one gateway run by Reef.
    const wid = randomUUID();
    await owner.query("insert into workspaces (id, name) values ($1, 'bench')", [wid]);
    const conn = await manager.ensureRunning(system, wid);
    await new Promise((r) => setTimeout(r, 5000));
    const handle = await manager.handle(wid);
    const idle = handle && driver.stats ? ((await driver.stats(handle))?.rssBytes ?? 0) : 0;
    for (let i = 0; i < 5; i++) {
      const res = await gatewayFetch(conn.endpoint, "/v1/chat/completions", {
        method: "POST",
        headers: {
          authorization: `Bearer ${conn.token}`,
          "content-type": "application/json",
          "x-openclaw-session-key": "bench",
        },
        body: JSON.stringify({ model: "openclaw/main", messages: [{ role: "user", content: `turn ${i}` }] }),
      });
      if (!res.ok) throw new Error(`chat turn failed: ${res.status}`);
      await res.json();
    }
    const active = handle && driver.stats ? ((await driver.stats(handle))?.rssBytes ?? 0) : 0;
    await manager.stop(system, wid, "bench");
    const memAvailable = Number(/MemAvailable:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) * 1024;
    const reserve = 1.5 * 1024 ** 3; // Reef, Postgres and the OS
    console.log(`one gateway RSS: idle ${mb(idle)}, after 5 chat turns ${mb(active)}`);
    console.log(
      `capacity estimate: ${Math.floor((totalmem() - reserve) / active)} active workspaces in ${mb(totalmem())} (${Math.floor((memAvailable - reserve) / active)} with the memory free now), from measured RSS, not launched`,
    );
  } finally {
    await close();
  }
}
