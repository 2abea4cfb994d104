import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "@reef/config";
import { openDatabase } from "@reef/db";
import { runtimeUserName } from "@reef/runtime";
import { type AppConfig, buildApp, servicesOf } from "@reef/server";
import type { ApiClient } from "@reef/testing";
import pino from "pino";
import type { startBenchPostgres } from "./bench-postgres.ts";

/**
 * A bench's clean-ups, run last first by `done()`, or on Ctrl-C: a bench must not
 * leave gateways, the stand-in or its Postgres running.
 */
export function benchCleanups(label: string) {
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanUp = async () => {
    while (cleanups.length) {
      const fn = cleanups.pop();
      await fn?.().catch((err: unknown) => console.error(`${label} cleanup:`, err));
    }
  };
  const onSignal = () => {
    void cleanUp().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    push(fn: () => Promise<unknown>) {
      cleanups.push(fn);
    },
    async done() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      await cleanUp();
    },
  };
}

/**
 * Runs the LLM stand-in in a child process (`script` run with `stand-in`, which prints
 * `LISTENING <base url>`); every line it prints goes to `onLine`. Resolves with its base URL.
 */
export function startStandInChild(
  script: string,
  apiKey: string,
  onLine: (line: string) => void = () => {},
): Promise<{ baseUrl: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [script, "stand-in"], {
    env: { ...process.env, BENCH_STANDIN_KEY: apiKey },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout?.on("data", (c: Buffer) => {
      buf += c.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(line);
        const listening = /^LISTENING (\S+)$/.exec(line);
        if (listening?.[1]) resolve({ baseUrl: listening[1], child });
      }
    });
    child.once("exit", (code) => reject(new Error(`LLM stand-in exited with ${code}`)));
  });
}

/**
 * The real app (silent) on the bench's Postgres, with the shipped pool size. Registers its
 * clean-ups: gateways stopped, the app and its pool closed, the data directory removed and
 * (as root) the OS user the process driver made for each workspace in `workspaceIds`.
 */
export async function startBenchApp(
  cleanups: ReturnType<typeof benchCleanups>,
  db: Awaited<ReturnType<typeof startBenchPostgres>>,
  config: AppConfig,
) {
  const database = await openDatabase({
    databaseUrl: db.ownerUrl,
    appDatabaseUrl: db.appUrl,
    appRolePassword: db.appPassword,
    migrate: false,
    poolSize: configSchema.parse({}).databasePoolSize, // the shipped default
  });
  cleanups.push(() => database.close());
  const workspaceIds: string[] = [];
  cleanups.push(async () => {
    await rm(config.dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    if (process.getuid?.() !== 0) return;
    for (const wid of workspaceIds) {
      try {
        const uid = execFileSync("id", ["-u", runtimeUserName(wid)])
          .toString()
          .trim();
        execFileSync("userdel", [runtimeUserName(wid)], { stdio: "ignore" });
        // OpenClaw keeps lock files in /tmp/openclaw-state-locks-<uid>, outside the runtime's directory.
        await rm(join(tmpdir(), `openclaw-state-locks-${uid}`), { recursive: true, force: true });
      } catch {}
    }
  });
  const app = await buildApp({ config, database, logger: pino({ level: "silent" }) });
  cleanups.push(() => app.close());
  const manager = servicesOf(app).runtimeManager;
  // Registered after `app.close`, so it runs before it: no gateway outlives the run.
  cleanups.push(() => manager.stopAll("bench over"));
  return { app, manager, workspaceIds };
}

/**
 * Adds the LLM stand-in (at `llm.baseUrl`, taking `apiKey`) to workspace `wid` as its provider, and the agent
 * "Bench" on its model with `instructions`. @returns the agent's id.
 */
export async function addBenchAgent(
  client: ApiClient,
  wid: string,
  llm: { baseUrl: string },
  apiKey: string,
  instructions: string,
): Promise<string> {
  const provider = await apiJson(client, "POST", `/api/v1/workspaces/${wid}/providers`, {
    name: "Stand-in",
    kind: "openai-compatible",
    baseUrl: llm.baseUrl,
    apiKey,
  });
  const agent = await apiJson(client, "POST", `/api/v1/workspaces/${wid}/agents`, {
    name: "Bench",
    providerId: provider.id,
    model: "stand-in-model",
    instructions,
  });
  return agent.id;
}

/** A request through `client` that must succeed (any status from 300 throws); @returns its JSON body. */
export async function apiJson(client: ApiClient, method: "POST" | "GET", url: string, body?: unknown) {
  const res = await client.request(method, url, body);
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
  return res.json();
}
