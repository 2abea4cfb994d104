/**
 * What the sandbox and the LLM proxy cost, measured side by side in one run:
 * the same gateway settings started (a) the way Reef runs them, inside
 * bubblewrap with every LLM call through Reef's proxy over the runtime's Unix
 * socket, and (b) as before, unsandboxed on a loopback port with the vendor key
 * in its config. For each: cold start, resident memory once idle, and time to
 * first token and tokens/s of turns sent straight to the gateway (what Reef
 * itself sends), alternating (a) and (b).
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeConnection } from "@reef/core";
import { openDatabase } from "@reef/db";
import { ProcessDriver, type RuntimeHandle, streamChatTurn } from "@reef/runtime";
import { buildApp, servicesOf } from "@reef/server";
import { signUp } from "@reef/testing";
import pino from "pino";
import { benchAppConfig, startBenchPostgres } from "./bench-postgres.ts";
import { standInSettings } from "./bench-runtimes.ts";
import { INSTRUCTIONS, replyTo, startStandInProcess } from "./chat-bench.ts";
import { mb, percentile } from "./measure.ts";

const ROUNDS = Number(process.env.BENCH_SANDBOX_ROUNDS ?? 5);
const TURNS = Number(process.env.BENCH_SANDBOX_TURNS ?? 20);
const SYSTEM = { actor: { kind: "system" as const, name: "sandbox-bench" } };

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const ratio = (a: number, b: number) => (a / b).toFixed(2);

interface Measured {
  startMs: number[];
  rss: number[];
  ttftMs: number[];
  tokensPerSecond: number[];
}
const empty = (): Measured => ({ startMs: [], rss: [], ttftMs: [], tokensPerSecond: [] });

/** One turn straight to a gateway; throws unless the whole expected answer arrived. */
async function turn(conn: RuntimeConnection, agentId: string, out: Measured): Promise<void> {
  const text = `bench ${randomUUID()}`;
  const started = performance.now();
  let first = 0;
  let last = 0;
  let answer = "";
  let tokens = 0;
  for await (const ev of streamChatTurn({
    endpoint: conn.endpoint,
    token: conn.token,
    agentId,
    sessionKey: `bench-${randomUUID()}`,
    text,
    instructions: INSTRUCTIONS,
    signal: AbortSignal.timeout(120_000),
  })) {
    if (ev.type === "delta") {
      last = performance.now();
      if (!first) first = last;
      answer += ev.text;
    } else if (ev.type === "usage") tokens = ev.completionTokens;
    else throw new Error(ev.message);
  }
  if (answer !== replyTo(text)) throw new Error(`unexpected answer: ${answer.slice(0, 200)}`);
  out.ttftMs.push(first - started);
  if (last > first) out.tokensPerSecond.push(tokens / ((last - first) / 1000));
}

export async function sandboxBench(): Promise<void> {
  const key = `sk-bench-${randomBytes(8).toString("hex")}`;
  const llm = await startStandInProcess(key);
  const db = await startBenchPostgres();
  const database = await openDatabase({
    databaseUrl: db.ownerUrl,
    appDatabaseUrl: db.appUrl,
    appRolePassword: db.appPassword,
    migrate: false,
  });
  const config = {
    ...benchAppConfig(),
    runtimeStartTimeoutSeconds: 300,
    runtimeIdleTimeoutMinutes: 600,
  };
  const app = await buildApp({ config, database, logger: pino({ level: "silent" }) });
  await app.ready();
  const services = servicesOf(app);
  const manager = services.runtimeManager;
  const plainRoot = mkdtempSync(join(tmpdir(), "reef-bench-plain-"));
  execFileSync("chmod", ["755", plainRoot]);
  const plain = new ProcessDriver({ rootDir: plainRoot, sandbox: false });
  const sandboxed = empty();
  const unsandboxed = empty();
  const handles: RuntimeHandle[] = [];
  try {
    if (!(services.driver instanceof ProcessDriver) || !services.driver.sandboxed) {
      console.log(`sandbox: not measured, gateways cannot be sandboxed here (${services.sandbox?.reason ?? "?"})`);
      return;
    }
    const owner = await signUp(app, { email: "sandbox-bench@bench.test", name: "Bench" });
    const json = async (method: "POST", url: string, body: unknown) => {
      const res = await owner.client.request(method, url, body);
      if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
      return res.json();
    };
    const provider = await json("POST", `/api/v1/workspaces/${owner.workspaceId}/providers`, {
      name: "Stand-in",
      kind: "openai-compatible",
      baseUrl: llm.baseUrl,
      apiKey: key,
    });
    const agent = await json("POST", `/api/v1/workspaces/${owner.workspaceId}/agents`, {
      name: "Bench",
      providerId: provider.id,
      model: "stand-in-model",
      instructions: INSTRUCTIONS,
    });
    const settings = standInSettings(llm.baseUrl, key);

    const settle = () => new Promise((r) => setTimeout(r, 5_000));
    let sandboxConn: RuntimeConnection | undefined;
    let plainConn: RuntimeConnection | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      const last = round === ROUNDS - 1;
      // (a) through Reef's manager: sandbox, outbound socket, minted proxy credentials.
      const t0 = performance.now();
      const conn = await manager.ensureRunning(SYSTEM, owner.workspaceId);
      sandboxed.startMs.push(performance.now() - t0);
      await settle();
      const handle = await manager.handle(owner.workspaceId);
      sandboxed.rss.push((handle && (await services.driver.stats?.(handle))?.rssBytes) || 0);
      if (last) sandboxConn = conn;
      else await manager.stop(SYSTEM, owner.workspaceId, "bench round");
      // (b) the same gateway as before the sandbox: loopback port, the vendor key in its config.
      const wid = randomUUID();
      const token = randomBytes(24).toString("base64url");
      const t1 = performance.now();
      const started = await plain.start(
        { workspaceId: wid, token, gateway: settings, limits: { memoryMb: 2048, cpus: 2, pids: 1024 } },
        AbortSignal.timeout(300_000),
      );
      unsandboxed.startMs.push(performance.now() - t1);
      const plainHandle = { workspaceId: wid, state: started.state };
      handles.push(plainHandle);
      await settle();
      unsandboxed.rss.push((await plain.stats(plainHandle))?.rssBytes ?? 0);
      if (last) plainConn = { endpoint: started.endpoint, token };
      else await plain.destroy(plainHandle);
    }
    if (!sandboxConn || !plainConn) throw new Error("no gateways left running for the turns");
    // Two warm-up turns each (the gateway's first turns load the agent), then alternate.
    const warm = empty();
    for (let i = 0; i < 2; i++) {
      await turn(sandboxConn, agent.id, warm);
      await turn(plainConn, "main", warm);
    }
    for (let i = 0; i < TURNS; i++) {
      if (i % 2) {
        await turn(sandboxConn, agent.id, sandboxed);
        await turn(plainConn, "main", unsandboxed);
      } else {
        await turn(plainConn, "main", unsandboxed);
        await turn(sandboxConn, agent.id, sandboxed);
      }
    }
    const line = (label: string, m: Measured) =>
      `  ${label.padEnd(28)} cold start ${(median(m.startMs) / 1000).toFixed(1)} s (${m.startMs.map((x) => (x / 1000).toFixed(1)).join(", ")}), idle RSS ${mb(median(m.rss))}, TTFT p50 ${Math.round(median(m.ttftMs))} ms, ${median(m.tokensPerSecond).toFixed(0)} tok/s`;
    console.log(
      `sandbox + LLM proxy versus neither (${ROUNDS} cold starts each, alternating; ${TURNS} warm turns each straight to the gateway, alternating):`,
    );
    console.log(line("sandbox + proxy (Reef's way)", sandboxed));
    console.log(line("no sandbox, key in config", unsandboxed));
    console.log(
      `  ratio sandboxed : unsandboxed = cold start ${ratio(median(sandboxed.startMs), median(unsandboxed.startMs))}, RSS ${ratio(median(sandboxed.rss), median(unsandboxed.rss))}, TTFT ${ratio(median(sandboxed.ttftMs), median(unsandboxed.ttftMs))}, tokens/s ${ratio(median(sandboxed.tokensPerSecond), median(unsandboxed.tokensPerSecond))}`,
    );
  } finally {
    await manager.stopAll("bench over");
    for (const h of handles) await plain.destroy(h).catch(() => {});
    await app.close();
    await database.close();
    await db.stop();
    llm.child.kill();
    rmSync(plainRoot, { recursive: true, force: true });
    rmSync(config.dataDir, { recursive: true, force: true });
  }
}
