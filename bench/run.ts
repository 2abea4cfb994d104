/**
 * `npm run bench`: measured side by side in one run on this machine.
 *  1. Audit query latency (p50/p99) on 1,000,000 audit rows across 1,000
 *     workspaces: one workspace, filtered by action, first page and a deep page,
 *     through the real app (auth, permission check, RLS).
 *  2. Authenticated GET /api/v1/me throughput as a ratio to bare Fastify hello world.
 *  3. Runtime: gateway cold start, config and memory (runtime-bench.ts).
 *  4. Sandbox and LLM proxy: cold start, RSS, time to first token and tokens/s
 *     with both versus neither (sandbox-bench.ts).
 *  5. Chat: time to first token and tokens/s through Reef versus straight to the
 *     same gateway, and 100 people chatting at once across 10 workspaces (chat-bench.ts).
 *  6. Web app: first-screen JavaScript per screen, gzipped, against its 250 KB
 *     budget (web-bundle-bench.ts; builds the web app first).
 *  7. Schedules: firing latency (scheduled time to the prompt reaching a running
 *     gateway) p50/p99 over 100 firings across 10 workspaces, and when the
 *     runtime must wake first (schedules-bench.ts).
 *  8. Time to first token straight to the gateway, through Reef's chat stream and
 *     through the OpenAI-compatible API, side by side (openai-bench.ts).
 *  9. Waking a workspace: stopped, warm and paused to first token, and a paused gateway's memory (wake-bench.ts).
 * `BENCH_ONLY=api|runtime|wake|sandbox|chat|openai|web|schedules` runs one part.
 * `npm run bench -- load` runs only the 60 s fixed-rate load instead (load.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { openDatabase } from "@reef/db";
import { buildApp } from "@reef/server";
import autocannon from "autocannon";
import pg from "pg";
import pino from "pino";
import { benchAppConfig, startBenchPostgres } from "./bench-postgres.ts";
import { chatBench } from "./chat-bench.ts";
import { loadBench } from "./load.ts";
import { percentile } from "./measure.ts";
import { openaiBench } from "./openai-bench.ts";
import { runtimeBench } from "./runtime-bench.ts";
import { sandboxBench } from "./sandbox-bench.ts";
import { schedulesBench } from "./schedules-bench.ts";
import { wakeBench } from "./wake-bench.ts";
import { webBundleBench } from "./web-bundle-bench.ts";

const WORKSPACES = 1_000;
const ROWS = 1_000_000;
const ACTIONS = [
  "workspace.rename",
  "member.role_change",
  "api_key.create",
  "invite.create",
  "access.denied",
  "agent.update",
  "chat.message",
  "session.revoke",
  "api_key.revoke",
  "member.remove",
];
const SAMPLES = 300;
const LOAD_SECONDS = Number(process.env.BENCH_SECONDS ?? 8);

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

async function seed(ownerUrl: string) {
  const owner = new pg.Client({ connectionString: ownerUrl });
  await owner.connect();
  const t0 = performance.now();
  await owner.query(
    `insert into workspaces (id, name) select gen_random_uuid(), 'bench ' || g from generate_series(1, ${WORKSPACES}) g`,
  );
  await owner.query(`
    insert into audit_log (workspace_id, occurred_at, actor_type, actor_id, action, target_type, target_id, outcome, ip, prev_hash, hash)
    select w.id, now() - (g || ' seconds')::interval, 'user', 'bench', (array['${ACTIONS.join("','")}'])[1 + (g % ${ACTIONS.length})],
           'workspace', w.id::text, 'success', '127.0.0.1', md5(g::text), md5((g + 1)::text)
      from (select id, row_number() over (order by id) as n from workspaces) w
      cross join generate_series(1, ${ROWS / WORKSPACES}) g`);
  await owner.query("analyze audit_log");
  const { rows } = await owner.query(
    "select count(*)::int as n, count(distinct workspace_id)::int as w from audit_log",
  );
  await owner.end();
  console.log(
    `seeded ${rows[0].n.toLocaleString()} audit rows across ${rows[0].w} workspaces in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

async function auditLatency(urls: { ownerUrl: string; appUrl: string; appPassword: string }) {
  const database = await openDatabase({
    databaseUrl: urls.ownerUrl,
    appDatabaseUrl: urls.appUrl,
    appRolePassword: urls.appPassword,
    migrate: false,
  });
  const app = await buildApp({
    config: benchAppConfig(),
    database,
    logger: pino({ level: "silent" }),
  });
  await app.ready();
  const signup = await app.inject({
    method: "POST",
    url: "/api/v1/auth/signup",
    payload: { email: "bench@example.test", password: "correct horse battery", name: "Bench" },
  });
  const cookie = signup.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
  const userId = signup.json().user.id;
  // The bench user owns every seeded workspace, so each query passes the real permission check.
  const owner = new pg.Client({ connectionString: urls.ownerUrl });
  await owner.connect();
  await owner.query(
    `insert into workspace_members (workspace_id, user_id, role) select id, $1, 'owner' from workspaces where name like 'bench %'`,
    [userId],
  );
  const { rows: targets } = await owner.query(
    "select id from workspaces where name like 'bench %' order by random() limit 50",
  );
  await owner.end();

  const measure = async (label: string, url: (wid: string) => Promise<string>) => {
    const times: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const wid = targets[i % targets.length].id as string;
      const u = await url(wid);
      const t0 = performance.now();
      const res = await app.inject({ method: "GET", url: u, headers: { cookie } });
      times.push(performance.now() - t0);
      if (res.statusCode !== 200 || res.json().items.length === 0)
        throw new Error(`${label}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    }
    times.sort((a, b) => a - b);
    console.log(
      `audit ${label.padEnd(34)} p50 ${fmt(percentile(times, 50))}  p99 ${fmt(percentile(times, 99))}  (${SAMPLES} requests)`,
    );
  };
  const action = ACTIONS[3];
  await measure(
    "first page (action filter, 50)",
    async (wid) => `/api/v1/workspaces/${wid}/audit?action=${action}&limit=50`,
  );
  // A deep page: the cursor of the 80th filtered entry, found once per workspace.
  const deepCursor = new Map<string, string>();
  await measure("deep page (action filter, 50)", async (wid) => {
    let cursor = deepCursor.get(wid);
    if (!cursor) {
      const page = await app.inject({
        method: "GET",
        url: `/api/v1/workspaces/${wid}/audit?action=${action}&limit=80`,
        headers: { cookie },
      });
      cursor = page.json().nextCursor as string;
      deepCursor.set(wid, cursor);
    }
    return `/api/v1/workspaces/${wid}/audit?action=${action}&limit=50&cursor=${cursor}`;
  });
  await measure("first page (no filter, 50)", async (wid) => `/api/v1/workspaces/${wid}/audit?limit=50`);
  await app.close();
  await database.close();
}

function startServer(
  kind: "hello" | "reef",
  env: Record<string, string>,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./serve.ts", import.meta.url)), kind], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (c: Buffer) => {
      const m = /LISTENING (\d+)/.exec(c.toString());
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

async function load(url: string, headers: Record<string, string>) {
  const result = await autocannon({ url, connections: 32, duration: LOAD_SECONDS, headers });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result;
}

async function meThroughput(urls: { ownerUrl: string; appUrl: string; appPassword: string }) {
  const hello = await startServer("hello", {});
  const reef = await startServer("reef", {
    BENCH_OWNER_URL: urls.ownerUrl,
    BENCH_APP_URL: urls.appUrl,
    BENCH_APP_PASSWORD: urls.appPassword,
  });
  try {
    const signup = await fetch(`http://127.0.0.1:${reef.port}/api/v1/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "throughput@example.test", password: "correct horse battery", name: "Load" }),
    });
    const cookie = signup.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");
    await load(`http://127.0.0.1:${hello.port}/`, {}); // warm-up
    const base = await load(`http://127.0.0.1:${hello.port}/`, {});
    await load(`http://127.0.0.1:${reef.port}/api/v1/me`, { cookie });
    const me = await load(`http://127.0.0.1:${reef.port}/api/v1/me`, { cookie });
    const ratio = me.requests.average / base.requests.average;
    console.log(
      `fastify hello world            ${base.requests.average.toFixed(0).padStart(7)} req/s  p50 ${base.latency.p50} ms  p99 ${base.latency.p99} ms`,
    );
    console.log(
      `reef GET /api/v1/me (session)  ${me.requests.average.toFixed(0).padStart(7)} req/s  p50 ${me.latency.p50} ms  p99 ${me.latency.p99} ms`,
    );
    console.log(
      `ratio /me : hello world = ${ratio.toFixed(3)}  (32 connections, ${LOAD_SECONDS} s each, servers in their own processes)`,
    );
  } finally {
    hello.child.kill();
    reef.child.kill();
  }
}

// `npm run bench -- load`: only the 60 s fixed-rate load (load.ts), never part of the default run.
if (process.argv[2] === "load") {
  await loadBench();
  process.exit(0);
}
const PARTS = ["api", "runtime", "wake", "sandbox", "chat", "openai", "web", "schedules"] as const;
const only = process.env.BENCH_ONLY; // one of PARTS; unset: all
const wants = (part: (typeof PARTS)[number]) => !only || only === part;
if (only && !(PARTS as readonly string[]).includes(only))
  throw new Error("BENCH_ONLY must be api, runtime, wake, sandbox, chat, openai, web or schedules");
if (wants("api")) {
  const db = await startBenchPostgres();
  // Ctrl-C must not leave the benchmark's Postgres running.
  const onSignal = () => {
    void db.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await seed(db.ownerUrl);
    await auditLatency(db);
    await meThroughput(db);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await db.stop();
  }
}
// The runtime, chat and schedules parts start (and stop) Postgres servers of their own.
if (wants("runtime")) await runtimeBench();
if (wants("wake")) await wakeBench();
if (wants("sandbox")) await sandboxBench();
if (wants("chat")) await chatBench();
if (wants("openai")) await openaiBench();
if (wants("schedules")) await schedulesBench();
if (wants("web")) webBundleBench();
