import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "@reef/config";
import { APP_LOGIN_ROLE, EmbeddedPostgres, runMigrations } from "@reef/db";
import { ensureAppLogin } from "@reef/db/app-role";
import type { AppConfig } from "@reef/server";
import pg from "pg";

const APP_PASSWORD = "reef-bench-app-password";

/** A throwaway embedded Postgres with a migrated `reef` database, for benchmarks. */
export async function startBenchPostgres() {
  const dir = await mkdtemp(join(tmpdir(), "reef-bench-pg-"));
  const server = new EmbeddedPostgres({ dir, port: 0 });
  await server.start();
  const c = server.connection;
  const admin = new pg.Client({ ...c, database: "postgres" });
  await admin.connect();
  await admin.query("create database reef");
  await admin.end();
  const ownerUrl = `postgres://${c.user}:${encodeURIComponent(c.password)}@${c.host}:${c.port}/reef`;
  const owner = new pg.Client({ connectionString: ownerUrl });
  await owner.connect();
  await runMigrations(owner);
  await ensureAppLogin(owner, APP_PASSWORD, "reef");
  await owner.end();
  return {
    ownerUrl,
    appUrl: `postgres://${APP_LOGIN_ROLE}:${APP_PASSWORD}@${c.host}:${c.port}/reef`,
    appPassword: APP_PASSWORD,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The app's shipped defaults, with rate limits out of the way of the load. */
export function benchAppConfig(): AppConfig {
  const generous = { points: 10_000_000, durationSec: 60 };
  return {
    ...configSchema.parse({}),
    publicUrl: "http://127.0.0.1",
    secretKey: randomBytes(32),
    dataDir: join(tmpdir(), `reef-bench-${process.pid}`),
    rateLimitSignupIp: generous,
    rateLimitLoginIp: generous,
    rateLimitLoginAccount: generous,
    rateLimitInviteAccept: generous,
    rateLimitApiRead: generous,
    rateLimitApiWrite: generous,
    // The LLM stand-in listens on loopback, which providers may use only when the operator allows it.
    providerAllowedHosts: ["127.0.0.1"],
  };
}
