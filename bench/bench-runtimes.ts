import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRuntimeManager, createSealer, type RuntimeManagerDeps } from "@reef/core";
import { openDatabase } from "@reef/db";
import { type GatewaySettings, ProcessDriver } from "@reef/runtime";
import { startLlmStandIn } from "@reef/testing/llm";
import pg from "pg";
import { startBenchPostgres } from "./bench-postgres.ts";

/** Gateway settings for one agent (`main`) on the LLM stand-in at `baseUrl`, which takes `apiKey`. */
export function standInSettings(baseUrl: string, apiKey: string): GatewaySettings {
  return {
    providers: [{ id: "standin", baseUrl, apiKey, api: "openai-completions", models: [{ id: "stand-in-model" }] }],
    agents: [{ id: "main", name: "Main", model: "standin/stand-in-model" }],
  };
}

/**
 * What the runtime and wake benchmarks stand on: the LLM stand-in, a Postgres of their own, and Reef's runtime
 * manager on the process driver, unsandboxed (like gateways spawned by hand; sandbox-bench.ts measures the
 * sandbox), serving one agent on the stand-in. `close` stops every gateway and removes everything.
 */
export async function startBenchRuntimes(opts: { dirPrefix: string; manager: Partial<RuntimeManagerDeps> }) {
  const key = `sk-bench-${randomBytes(6).toString("hex")}`;
  const llm = await startLlmStandIn({ apiKey: key });
  const settings = standInSettings(llm.baseUrl, key);
  const db = await startBenchPostgres();
  const database = await openDatabase({
    databaseUrl: db.ownerUrl,
    appDatabaseUrl: db.appUrl,
    appRolePassword: db.appPassword,
    migrate: false,
  });
  const root = mkdtempSync(join(tmpdir(), opts.dirPrefix));
  execFileSync("chmod", ["755", root]);
  const driver = new ProcessDriver({ rootDir: root, sandbox: false });
  const manager = createRuntimeManager({
    db: database.db,
    driver,
    sealer: createSealer(randomBytes(32), "runtime-token"),
    settingsFor: async () => settings,
    instanceId: "bench",
    idleTimeoutMs: 3_600_000,
    startTimeoutMs: 120_000,
    limits: { memoryMb: 2048, cpus: 1, pids: 1024 },
    ...opts.manager,
  });
  const owner = new pg.Client({ connectionString: db.ownerUrl });
  await owner.connect();
  return {
    llm,
    settings,
    driver,
    manager,
    owner,
    system: { actor: { kind: "system" as const, name: "bench" } },
    async close() {
      await manager.stopAll("bench over");
      await owner.end();
      await database.close();
      await db.stop();
      await llm.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
