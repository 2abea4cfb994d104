/**
 * `npm run bench -- load` or `node bench/load.ts`: Reef held at a fixed request rate
 * (autocannon `overallRate`) for 60 s, with a realistic mix of authenticated reads and
 * writes across several workspaces and members: people on session cookies (echoing the
 * CSRF token as the web app does) and integrations on API keys. Prints requests sent,
 * the rate achieved, latency p50/p99/max, errors (non-2xx and socket errors) and
 * Reef's resident memory before, at its peak and after.
 *
 * Reef runs in a process of its own (bench/serve.ts: the real app on a real port, on a
 * throwaway embedded Postgres), so its memory is its own and the load generator does
 * not share its event loop. `LOAD_RATE` (requests/s, default 100), `LOAD_SECONDS`
 * (default 60) and `LOAD_CONNECTIONS` (default 32) change the shape.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { startBenchPostgres } from "./bench-postgres.ts";
import { mb } from "./measure.ts";

const RATE = Number(process.env.LOAD_RATE ?? 100);
const SECONDS = Number(process.env.LOAD_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 32);
const WORKSPACES = 4;
const MEMBERS_PER_WORKSPACE = 3; // besides the owner
const PASSWORD = "correct horse battery";

/** Who sends a request: a session (cookie and CSRF token) or an API key. */
interface Caller {
  kind: "owner" | "member" | "key";
  headers: Record<string, string>;
  wid: string;
  agentId: string;
  sessionIds: string[];
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return Number(m?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

function startReef(db: Awaited<ReturnType<typeof startBenchPostgres>>): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./serve.ts", import.meta.url)), "reef"], {
    env: { ...process.env, BENCH_OWNER_URL: db.ownerUrl, BENCH_APP_URL: db.appUrl, BENCH_APP_PASSWORD: db.appPassword },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (c: Buffer) => {
      const m = /LISTENING (\d+)/.exec(c.toString());
      if (m) resolve({ child, base: `http://127.0.0.1:${m[1]}` });
    });
    child.once("exit", (code) => reject(new Error(`reef exited with ${code}`)));
  });
}

/** A signed-in person against `base`: JSON in and out, cookies kept, CSRF echoed. */
function person(base: string, bearer?: string) {
  const cookies = new Map<string, string>();
  const headers = () => {
    const h: Record<string, string> = { "content-type": "application/json" };
    if (bearer) h.authorization = `Bearer ${bearer}`;
    h.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const csrf = cookies.get("__Host-reef_csrf") ?? cookies.get("reef_csrf");
    if (csrf) h["x-csrf-token"] = csrf;
    return h;
  };
  const call = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(base + path, {
      method,
      headers: headers(),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (pair && eq > 0) cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  };
  return { call, headers };
}

/** Workspaces with an owner, members, an agent, a few chat sessions each and an API key. */
async function seed(base: string): Promise<Caller[]> {
  const callers: Caller[] = [];
  for (let w = 0; w < WORKSPACES; w++) {
    const owner = person(base);
    const signup = await owner.call("POST", "/api/v1/auth/signup", {
      email: `owner${w}@load.test`,
      password: PASSWORD,
      name: `Owner ${w}`,
    });
    const wid: string = signup.workspace.id;
    const provider = await owner.call("POST", `/api/v1/workspaces/${wid}/providers`, {
      name: "Nowhere",
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: "sk-load-0123456789",
      models: ["m"],
    });
    const agent = await owner.call("POST", `/api/v1/workspaces/${wid}/agents`, {
      name: "Load",
      providerId: provider.id,
      model: "m",
      instructions: "Answer briefly.",
    });
    const people = [owner];
    for (let m = 0; m < MEMBERS_PER_WORKSPACE; m++) {
      const p = person(base);
      const email = `member${w}-${m}@load.test`;
      await p.call("POST", "/api/v1/auth/signup", { email, password: PASSWORD, name: `Member ${w}.${m}` });
      const invite = await owner.call("POST", `/api/v1/workspaces/${wid}/invites`, { email, role: "member" });
      await p.call("POST", `/api/v1/invites/${invite.token}/accept`);
      people.push(p);
    }
    for (const p of people) {
      const sessionIds: string[] = [];
      for (let s = 0; s < 3; s++)
        sessionIds.push((await p.call("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id })).id);
      callers.push({
        kind: p === owner ? "owner" : "member",
        headers: p.headers(),
        wid,
        agentId: agent.id,
        sessionIds,
      });
    }
    const key = await owner.call("POST", `/api/v1/workspaces/${wid}/api-keys`, { name: "integration", role: "member" });
    const integration = person(base, key.key);
    const sessionIds = [
      (await integration.call("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id })).id,
    ];
    callers.push({ kind: "key", headers: integration.headers(), wid, agentId: agent.id, sessionIds });
  }
  return callers;
}

type Shape = { method: "GET" | "POST" | "PATCH"; path: string; body?: unknown };
type Make = (c: Caller, n: number) => Shape | undefined;

/** The mix, weighted like a day of use: mostly reading lists and chats, some renames, new chats and settings. */
const MIX: [number, Make][] = [
  // An API key acts in its workspace only: the person-shaped routes are for sessions.
  [14, (c) => (c.kind === "key" ? undefined : { method: "GET", path: "/api/v1/me" })],
  [8, (c) => (c.kind === "key" ? undefined : { method: "GET", path: "/api/v1/workspaces" })],
  [8, (c) => ({ method: "GET", path: `/api/v1/workspaces/${c.wid}` })],
  [12, (c) => ({ method: "GET", path: `/api/v1/workspaces/${c.wid}/sessions?limit=20` })],
  [
    12,
    (c, n) => ({
      method: "GET",
      path: `/api/v1/workspaces/${c.wid}/sessions/${c.sessionIds[n % c.sessionIds.length]}/messages?limit=50`,
    }),
  ],
  [8, (c) => ({ method: "GET", path: `/api/v1/workspaces/${c.wid}/agents` })],
  [5, (c) => ({ method: "GET", path: `/api/v1/workspaces/${c.wid}/members` })],
  [5, (c) => ({ method: "GET", path: `/api/v1/workspaces/${c.wid}/usage` })],
  [5, (c) => ({ method: "GET", path: `/api/v1/workspaces/${c.wid}/schedules` })],
  [4, (c) => ({ method: "GET", path: `/api/v1/workspaces/${c.wid}/runtime` })],
  // The audit trail is for owners and admins.
  [3, (c) => (c.kind === "owner" ? { method: "GET", path: `/api/v1/workspaces/${c.wid}/audit?limit=50` } : undefined)],
  [
    6,
    (c, n) => ({
      method: "PATCH",
      path: `/api/v1/workspaces/${c.wid}/sessions/${c.sessionIds[n % c.sessionIds.length]}`,
      body: { title: `Chat ${n}`, pinned: n % 2 === 0 },
    }),
  ],
  [4, (c) => ({ method: "POST", path: `/api/v1/workspaces/${c.wid}/sessions`, body: { agentId: c.agentId } })],
  [
    3,
    (c, n) => (c.kind === "key" ? undefined : { method: "PATCH", path: "/api/v1/me", body: { name: `Person ${n}` } }),
  ],
  [
    3,
    (c, n) => ({
      method: "GET",
      path: `/api/v1/workspaces/${c.wid}/schedules/preview?cron=${encodeURIComponent(`${n % 60} 9 * * 1-5`)}&timezone=UTC`,
    }),
  ],
];
const TOTAL_WEIGHT = MIX.reduce((s, [w]) => s + w, 0);

/** The `n`th request of `caller`: a multiplicative hash spreads consecutive numbers over the mix. */
function shapeOf(caller: Caller, n: number): Shape {
  let r = (n * 2654435761) % TOTAL_WEIGHT;
  for (const [w, make] of MIX) {
    if (r < w) return make(caller, n) ?? { method: "GET", path: `/api/v1/workspaces/${caller.wid}/agents` };
    r -= w;
  }
  return { method: "GET", path: `/api/v1/workspaces/${caller.wid}` };
}

/** A request's route and caller kind, ids left out, for counting what failed. */
const labelOf = (caller: Caller, s: Shape) =>
  `${caller.kind} ${s.method} ${s.path.replace(/[0-9a-f-]{36}/g, ":id").replace(/\?.*/, "")}`;

/** Holds `RATE` requests/s for `SECONDS` against a fresh Reef and prints what it achieved. */
export async function loadBench(): Promise<void> {
  const db = await startBenchPostgres();
  let reef: { child: ChildProcess; base: string } | undefined;
  const stop = async () => {
    reef?.child.kill();
    await db.stop();
  };
  const onSignal = () => {
    void stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    reef = await startReef(db);
    const pid = reef.child.pid ?? 0;
    const t0 = performance.now();
    const callers = await seed(reef.base);
    console.log(
      `load: seeded ${WORKSPACES} workspaces, ${callers.length} callers (sessions and API keys) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const rssBefore = rssOf(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssOf(pid));
    }, 1000);
    let n = 0;
    const statuses = new Map<number, number>();
    const failed = new Map<string, number>();
    const url = new URL(reef.base);
    const result = await autocannon({
      url: reef.base,
      connections: CONNECTIONS,
      overallRate: RATE,
      duration: SECONDS,
      requests: [
        {
          setupRequest: (req, context) => {
            n += 1;
            const caller = callers[(n * 7) % callers.length] as Caller;
            const shape = shapeOf(caller, n);
            // One request at a time per connection: the context says which one is answered next.
            (context as { label?: string }).label = labelOf(caller, shape);
            return {
              ...req,
              method: shape.method,
              path: shape.path,
              headers: { ...caller.headers, host: url.host },
              ...(shape.body === undefined ? { body: undefined } : { body: JSON.stringify(shape.body) }),
            };
          },
          onResponse: (status, _body, context) => {
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            if (status >= 300) {
              const key = `${status} ${(context as { label?: string }).label}`;
              failed.set(key, (failed.get(key) ?? 0) + 1);
            }
          },
        },
      ],
    });
    clearInterval(sampler);
    // Give a collector a moment, as a quiet server would, before reading memory after.
    await new Promise((r) => setTimeout(r, 2000));
    const rssAfter = rssOf(pid);
    const sent = result.requests.sent;
    const codes = [...statuses].sort(([a], [b]) => a - b).map(([code, count]) => `${code}×${count}`);
    console.log(
      `load: ${RATE} req/s asked for ${SECONDS} s over ${CONNECTIONS} connections, ${callers.length} callers in ${WORKSPACES} workspaces`,
    );
    console.log(
      `load: requests sent ${sent}, answered ${result.requests.total}, rate achieved ${(result.requests.total / result.duration).toFixed(1)} req/s`,
    );
    console.log(
      `load: latency p50 ${result.latency.p50} ms  p99 ${result.latency.p99} ms  max ${result.latency.max} ms`,
    );
    console.log(
      `load: errors: non-2xx ${result.non2xx}, socket errors ${result.errors}, timeouts ${result.timeouts}  (status codes ${codes.join(" ")})`,
    );
    for (const [what, count] of failed) console.log(`load:   ${count}× ${what}`);
    console.log(`load: Reef RSS before ${mb(rssBefore)}, peak ${mb(rssPeak)}, after ${mb(rssAfter)}`);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await stop();
  }
}

if (import.meta.main) await loadBench();
