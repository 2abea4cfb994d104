/**
 * One benchmark server per process, so the load generator does not share a
 * core with it: `hello` is bare Fastify, `reef` is the real app on the bench database.
 */
import { openDatabase } from "@reef/db";
import { buildApp } from "@reef/server";
import Fastify from "fastify";
import pino from "pino";
import { benchAppConfig } from "./bench-postgres.ts";

const kind = process.argv[2];
let app: ReturnType<typeof Fastify> | Awaited<ReturnType<typeof buildApp>>;
if (kind === "hello") {
  app = Fastify();
  app.get("/", async () => ({ hello: "world" }));
} else {
  const database = await openDatabase({
    databaseUrl: process.env.BENCH_OWNER_URL,
    appDatabaseUrl: process.env.BENCH_APP_URL,
    appRolePassword: process.env.BENCH_APP_PASSWORD ?? "",
    migrate: false,
    poolSize: 10,
  });
  app = await buildApp({
    config: benchAppConfig(),
    database,
    logger: pino({ level: "silent" }),
  });
}
await app.listen({ port: 0, host: "127.0.0.1" });
const address = app.server.address();
process.stdout.write(`LISTENING ${typeof address === "object" && address ? address.port : 0}\n`);
