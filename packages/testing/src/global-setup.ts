import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { installJobQueue } from "@reef/core";
import { APP_LOGIN_ROLE, EmbeddedPostgres, runMigrations } from "@reef/db";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { ensureAppLoginForTests, TEMPLATE_DB, TEST_APP_PASSWORD } from "./test-postgres.ts";

/**
 * One embedded Postgres for the whole test run. Migrations are applied once, to
 * a template database; each test file clones it (see `createTestDatabase`), which
 * takes milliseconds and gives every file a database of its own.
 */
export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), "reef-test-pg-"));
  const server = new EmbeddedPostgres({ dir, port: 0 });
  await server.start();
  const conn = server.connection;
  try {
    const admin = new pg.Client({ ...conn, database: "postgres" });
    await admin.connect();
    await admin.query(`create database ${TEMPLATE_DB}`);
    await admin.end();
    const owner = new pg.Client({ ...conn, database: TEMPLATE_DB });
    await owner.connect();
    try {
      await runMigrations(owner);
      await ensureAppLoginForTests(owner);
    } finally {
      await owner.end();
    }
    // The job queue's tables too (as the app role, as Reef installs them), instead of once per test app.
    await installJobQueue(
      `postgres://${APP_LOGIN_ROLE}:${encodeURIComponent(TEST_APP_PASSWORD)}@${conn.host}:${conn.port}/${TEMPLATE_DB}`,
    );
  } catch (err) {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  project.provide("reefPostgres", { ...conn, appPassword: TEST_APP_PASSWORD });
  return async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
