/**
 * Chat figures, measured in one run against real OpenClaw gateways (process
 * driver), with the local OpenAI-compatible stand-in as the LLM vendor, running
 * in its own process so the app's event loop does not pace the vendor's stream:
 *  1. One warm gateway: time to first token and streaming tokens/s of a turn sent
 *     through Reef (HTTP POST, server-sent events) versus the same turn sent
 *     straight to the same gateway (`streamGatewayTurn` on its shared WebSocket
 *     connection, what Reef itself sends), interleaved, and their ratio; plus the
 *     same direct turn on a connection of its own, which prices the connect.
 *  2. 100 people (10 workspaces × the owner and 9 invited members, each in their
 *     own session) sending a message at the same moment, for a few rounds, each
 *     round also sent straight to the gateways as a baseline: time to first token,
 *     whole-turn time and errors, plus the gateways' warm-up time and memory.
 * Both parts say where the CPU went: gateways, this process (Reef and the load
 * generator), Postgres, the stand-in, and anything else on the machine (a busy
 * machine makes the figures noisy; that column shows it).
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import { availableParallelism } from "node:os";
import { text as bodyText } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import type { RuntimeConnection } from "@reef/core";
import { streamGatewayTurn } from "@reef/runtime";
import { type ApiClient, listenLocal, readEvents, signUp } from "@reef/testing";
import { startLlmStandIn } from "@reef/testing/llm";
import pg from "pg";
import { addBenchAgent, apiJson, benchCleanups, startBenchApp, startStandInChild } from "./bench-app.ts";
import { benchAppConfig, startBenchPostgres } from "./bench-postgres.ts";
import {
  groupPids,
  groupRss,
  machineBusyMs,
  mb,
  pairedMedian,
  parentOf,
  percentile,
  pool,
  processCpuMs,
  treeCpuMs,
} from "./measure.ts";

// Per side, interleaved: the 5% target is ~15 ms on a ~300 ms turn, so enough turns to see past the noise.
const TURNS = Number(process.env.BENCH_CHAT_TURNS ?? 60);
const WARM_TURNS = 2;
const WORKSPACES = Number(process.env.BENCH_CHAT_WORKSPACES ?? 10);
const USERS_PER_WORKSPACE = 10;
const ROUNDS = Number(process.env.BENCH_CHAT_ROUNDS ?? 3);
const START_PARALLEL = 3;
const REPLY_WORDS = Number(process.env.BENCH_CHAT_WORDS ?? 200);
const CHUNK_DELAY_MS = 3;
/**
 * Time before each turn of part 1, as a person reading the last answer leaves: 0 sends
 * back to back, while the gateway may still be busy after the previous turn.
 */
const PAUSE_MS = Number(process.env.BENCH_CHAT_PAUSE_MS ?? 0);
export const INSTRUCTIONS = "You are the benchmark agent. Answer briefly.";

/** The stand-in's answer: deterministic, so every answer can be checked word for word. */
const WORDS = Array.from({ length: REPLY_WORDS }, (_, i) => `word${i}`).join(" ");
export const replyTo = (text: string) => `Answer to ${text}: ${WORDS}`;

const SYSTEM = { actor: { kind: "system" as const, name: "chat-bench" } };

const p = (xs: number[], q: number) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    q,
  );
const ms = (x: number) => `${Math.round(x)} ms`.padStart(8);
const rate = (x: number) => `${x.toFixed(0)} tok/s`.padStart(10);
const secs = (x: number) => `${(x / 1000).toFixed(1)} s`;
const ratio = (a: number, b: number) => (a / b).toFixed(2);

/** One measured turn: when the first text arrived, how long streaming took, what was said. */
interface Turn {
  ttftMs: number;
  totalMs: number;
  /** From the first to the last piece of text. */
  streamMs: number;
  deltas: number;
  completionTokens: number;
  text: string;
  error: string | undefined;
}

const newTurn = (): Turn => ({
  ttftMs: Number.NaN,
  totalMs: Number.NaN,
  streamMs: Number.NaN,
  deltas: 0,
  completionTokens: 0,
  text: "",
  error: undefined,
});

/** Names what differs in a wrong answer: the stand-in echoes the prompt it saw before the fixed words. */
function unexpected(got: string, sent: string): string {
  const echoed = got.endsWith(`: ${WORDS}`) ? got.slice(0, -WORDS.length - 2) : got.slice(0, 300);
  return `unexpected answer to ${JSON.stringify(sent)}: ${JSON.stringify(echoed)}${got.endsWith(`: ${WORDS}`) ? ` + the ${REPLY_WORDS} words` : "…"} (${got.length} chars)`;
}

const tokensPerSecond = (t: Turn) => (t.streamMs > 0 ? t.completionTokens / (t.streamMs / 1000) : Number.NaN);

/** Runs the stand-in in a child process (this file, run with `stand-in`); resolves with its base URL. */
export function startStandInProcess(apiKey: string): Promise<{ baseUrl: string; child: ChildProcess }> {
  return startStandInChild(fileURLToPath(import.meta.url), apiKey);
}

/** The stand-in (taking `apiKey`) and the bench's Postgres, each stopped by `cleanups` at the end. */
export async function startStandInAndPostgres(cleanups: ReturnType<typeof benchCleanups>, apiKey: string) {
  const llm = await startStandInProcess(apiKey);
  cleanups.push(async () => {
    llm.child.kill();
  });
  const db = await startBenchPostgres();
  cleanups.push(() => db.stop());
  return { llm, db };
}

interface CpuSnapshot {
  machine: number;
  gateways: number;
  reef: number;
  standIn: number;
  postgres: number;
}

export async function chatBench(): Promise<void> {
  const key = `sk-bench-${randomBytes(8).toString("hex")}`;
  const cleanups = benchCleanups("chat bench");
  try {
    const { llm, db } = await startStandInAndPostgres(cleanups, key);
    // Postgres' postmaster (the parent of any backend), for CPU accounting.
    const probe = new pg.Client({ connectionString: db.ownerUrl });
    await probe.connect();
    const postmaster = parentOf(Number((await probe.query("select pg_backend_pid() as pid")).rows[0].pid));
    await probe.end();
    const config = { ...benchAppConfig(), runtimeStartTimeoutSeconds: 300, runtimeIdleTimeoutMinutes: 600 };
    const { app, manager, workspaceIds } = await startBenchApp(cleanups, db, config);
    const base = await listenLocal(app);

    // ---- Fixtures: workspaces, each with a provider, an agent, the owner and 9 members.
    const t0 = performance.now();
    interface Person {
      client: ApiClient;
      wid: string;
      sid: string;
    }
    interface Space {
      wid: string;
      agentId: string;
      people: Person[];
    }
    const spaces: Space[] = [];
    for (let w = 0; w < WORKSPACES; w++) {
      const owner = await signUp(app, { email: `owner${w}@bench.test`, name: `Owner ${w}` });
      const wid = owner.workspaceId;
      workspaceIds.push(wid);
      const agentId = await addBenchAgent(owner.client, wid, llm, key, INSTRUCTIONS);
      const clients = [owner.client];
      for (let m = 1; m < USERS_PER_WORKSPACE; m++) {
        const member = await signUp(app, { email: `member${m}-ws${w}@bench.test`, name: `Member ${m}` });
        const invite = await apiJson(owner.client, "POST", `/api/v1/workspaces/${wid}/invites`, {
          email: member.email,
          role: "member",
        });
        await apiJson(member.client, "POST", `/api/v1/invites/${invite.token}/accept`);
        clients.push(member.client);
      }
      const people: Person[] = [];
      for (const client of clients) {
        const session = await apiJson(client, "POST", `/api/v1/workspaces/${wid}/sessions`, { agentId });
        people.push({ client, wid, sid: session.id });
      }
      spaces.push({ wid, agentId, people });
    }
    console.log(
      `chat fixtures: ${WORKSPACES} workspaces × ${USERS_PER_WORKSPACE} people (owner + ${USERS_PER_WORKSPACE - 1} invited members), one session each, made in ${secs(performance.now() - t0)}`,
    );
    console.log(
      `LLM stand-in (own process): "Answer to <message>: " + ${REPLY_WORDS} words, one word per chunk, ${CHUNK_DELAY_MS} ms between chunks (≥ ${(REPLY_WORDS * CHUNK_DELAY_MS) / 1000} s of streaming per answer). Reef runs in this process with the load generator; Reef, the stand-in, Postgres and the gateways share this machine's ${availableParallelism()} cores`,
    );

    /** Browser-like headers for a person talking to the real port. */
    const headersOf = (client: ApiClient) => {
      const h: Record<string, string> = { "content-type": "application/json" };
      h.cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
      const csrf = client.cookies.get("reef_csrf");
      if (csrf) h["x-csrf-token"] = csrf;
      return h;
    };

    // The load generator's own HTTP client is node:http on kept-alive connections: Node's fetch adds about
    // 0.6 ms per request on this machine (measured against node:http), the client's cost and not Reef's
    // (a browser's fetch is native code), while the direct side sends on an open WebSocket.
    const agent = new http.Agent({ keepAlive: true });
    cleanups.push(async () => agent.destroy());
    const post = (path: string, headers: Record<string, string>, body: string) =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request(`${base}${path}`, { method: "POST", headers, agent }, resolve);
        req.on("error", reject);
        req.end(body);
      });

    /** One turn through Reef: POST the message, read the event stream to its end. */
    const viaReef = async (person: Person, text: string): Promise<Turn> => {
      const turn = newTurn();
      const started = performance.now();
      try {
        const res = await post(
          `/api/v1/workspaces/${person.wid}/sessions/${person.sid}/messages`,
          headersOf(person.client),
          JSON.stringify({ text }),
        );
        if (res.statusCode !== 200) {
          turn.error = `HTTP ${res.statusCode}: ${(await bodyText(res)).slice(0, 200)}`;
          return turn;
        }
        const readFrom = performance.now() - started;
        const events = await readEvents(res);
        turn.totalMs = performance.now() - started;
        const deltas = events.filter((e) => e.event === "delta");
        turn.deltas = deltas.length;
        turn.text = deltas.map((e) => String(e.data.text)).join("");
        if (deltas[0]) turn.ttftMs = readFrom + deltas[0].atMs;
        turn.streamMs = (deltas.at(-1)?.atMs ?? 0) - (deltas[0]?.atMs ?? 0);
        turn.completionTokens = Number(events.find((e) => e.event === "usage")?.data.completionTokens ?? 0);
        const last = events.at(-1);
        if (last?.event === "error") turn.error = `error event: ${JSON.stringify(last.data)}`;
        else if (last?.event !== "done") turn.error = `stream ended with ${last?.event ?? "nothing"}`;
        else if (last.data.status !== "complete") turn.error = `done with status ${String(last.data.status)}`;
      } catch (err) {
        turn.error = err instanceof Error ? err.message : String(err);
      }
      if (!turn.error && turn.text !== replyTo(text)) turn.error = unexpected(turn.text, text);
      return turn;
    };

    /** The same turn straight to the gateway, as Reef itself sends it. */
    const direct = async (
      conn: RuntimeConnection,
      agentId: string,
      sessionKey: string,
      text: string,
      connection: "shared" | "own" = "shared",
    ) => {
      const turn = newTurn();
      const started = performance.now();
      let first = 0;
      let last = 0;
      try {
        for await (const ev of streamGatewayTurn({
          endpoint: conn.endpoint,
          token: conn.token,
          agentId,
          sessionKey,
          text,
          instructions: INSTRUCTIONS,
          signal: AbortSignal.timeout(300_000),
          connection,
        })) {
          if (ev.type === "delta") {
            last = performance.now();
            if (!turn.deltas) first = last;
            turn.deltas += 1;
            turn.text = ev.replace ? ev.text : turn.text + ev.text;
          } else if (ev.type === "usage") turn.completionTokens = ev.completionTokens;
          else if (ev.type === "error") turn.error = ev.message;
          else if (ev.type === "aborted") turn.error = "aborted in the gateway";
        }
        turn.totalMs = performance.now() - started;
        if (turn.deltas) {
          turn.ttftMs = first - started;
          turn.streamMs = last - first;
        }
      } catch (err) {
        turn.error = err instanceof Error ? err.message : String(err);
      }
      if (!turn.error && turn.text !== replyTo(text)) turn.error = unexpected(turn.text, text);
      return turn;
    };

    const must = (turn: Turn, label: string) => {
      if (turn.error) throw new Error(`${label}: ${turn.error}`);
      return turn;
    };

    // CPU accounting: which process groups are gateways is read from the runtime handles.
    const gatewayPgids = new Map<string, number>();
    const trackGateway = async (wid: string) => {
      const pid = Number((((await manager.handle(wid))?.state ?? {}) as { pid?: number }).pid);
      if (pid) gatewayPgids.set(wid, pid);
    };
    const cpu = (): CpuSnapshot => {
      const usage = process.cpuUsage();
      let gateways = 0;
      for (const pgid of gatewayPgids.values()) for (const pid of groupPids(pgid)) gateways += processCpuMs(pid);
      return {
        machine: machineBusyMs(),
        gateways,
        reef: (usage.user + usage.system) / 1000,
        standIn: llm.child.pid ? processCpuMs(llm.child.pid) : 0,
        postgres: treeCpuMs(postmaster),
      };
    };
    const cpuSpent = () => ({ machine: 0, gateways: 0, reef: 0, standIn: 0, postgres: 0 });
    const addCpu = (into: CpuSnapshot, before: CpuSnapshot, after: CpuSnapshot) => {
      for (const k of ["machine", "gateways", "reef", "standIn", "postgres"] as const) into[k] += after[k] - before[k];
    };
    const cpuLine = (label: string, spent: CpuSnapshot, turns: number) => {
      const per = (x: number) => `${Math.round(x / turns)}`;
      const other = spent.machine - spent.gateways - spent.reef - spent.standIn - spent.postgres;
      return `${label} CPU per turn: gateway ${per(spent.gateways)} ms, this process ${per(spent.reef)} ms, Postgres ${per(spent.postgres)} ms, stand-in ${per(spent.standIn)} ms, anything else on the machine ${per(Math.max(0, other))} ms`;
    };

    /**
     * Starts a workspace's gateway, retrying a failed start twice as a person would
     * by sending again (e.g. another process on this host took its port meanwhile).
     */
    const startFailures: string[] = [];
    const start = async (wid: string): Promise<RuntimeConnection> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await manager.ensureRunning(SYSTEM, wid);
        } catch (err) {
          const why = String((err as { cause?: unknown }).cause ?? err);
          startFailures.push(/Gateway failed to start: [^|]*/.exec(why)?.[0]?.trim() ?? why.slice(0, 200));
          if (attempt === 3) throw err;
        }
      }
    };

    // ---- 1. One warm gateway, through Reef versus straight to it.
    const first = spaces[0] as Space;
    const firstOwner = first.people[0] as Person;
    const newSession = async () =>
      (
        await apiJson(firstOwner.client, "POST", `/api/v1/workspaces/${first.wid}/sessions`, {
          agentId: first.agentId,
        })
      ).id as string;
    let t = performance.now();
    const conn = await start(first.wid);
    const coldStartMs = performance.now() - t;
    await trackGateway(first.wid);
    const reefTurns: Turn[] = [];
    const directTurns: Turn[] = [];
    const ownConnectionTurns: Turn[] = [];
    const reefCpu = cpuSpent();
    const directCpu = cpuSpent();
    const firstTurns: { reef?: Turn; direct?: Turn } = {};
    for (let i = 0; i < WARM_TURNS + TURNS; i++) {
      // A fresh session per turn on both sides (made outside the clock), so every turn carries the same context.
      const sid = await newSession();
      const text = `single turn ${i}`;
      const sides = [
        async () => {
          const before = cpu();
          const turn = must(await viaReef({ ...firstOwner, sid }, text), `Reef turn ${i}`);
          if (i >= WARM_TURNS) addCpu(reefCpu, before, cpu());
          if (i === 0) firstTurns.reef = turn;
          else if (i >= WARM_TURNS) reefTurns.push(turn);
        },
        async () => {
          const before = cpu();
          const turn = must(
            await direct(conn, first.agentId, `bench-direct-${randomUUID()}`, text),
            `direct turn ${i}`,
          );
          if (i >= WARM_TURNS) addCpu(directCpu, before, cpu());
          if (i === 0) firstTurns.direct = turn;
          else if (i >= WARM_TURNS) directTurns.push(turn);
        },
        async () => {
          const turn = must(
            await direct(conn, first.agentId, `bench-own-${randomUUID()}`, text, "own"),
            `direct turn ${i} on its own connection`,
          );
          if (i >= WARM_TURNS) ownConnectionTurns.push(turn);
        },
      ];
      // Alternate who goes first, so neither side always runs right after the other.
      if (i % 2) sides.reverse();
      for (const side of sides) {
        if (PAUSE_MS > 0) await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
        await side();
      }
    }
    const row = (label: string, reef: number[], straight: number[], unit: (x: number) => string, tail: number) => {
      const [r50, rt, d50, dt] = [p(reef, 50), p(reef, tail), p(straight, 50), p(straight, tail)];
      console.log(
        `${label.padEnd(22)} Reef p50 ${unit(r50)} p${tail} ${unit(rt)} | direct p50 ${unit(d50)} p${tail} ${unit(dt)} | Reef:direct p50 ${ratio(r50, d50)} p${tail} ${ratio(rt, dt)}`,
      );
    };
    console.log(
      `one warm gateway: cold start ${secs(coldStartMs)}; its first turn (excluded, as is one more per side) had TTFT ${Math.round(firstTurns.reef?.ttftMs ?? Number.NaN)} ms through Reef (the gateway's first ever), then ${Math.round(firstTurns.direct?.ttftMs ?? Number.NaN)} ms direct`,
    );
    console.log(
      `  ${TURNS} turns each side, one at a time, interleaved in alternating order${PAUSE_MS > 0 ? `, ${PAUSE_MS} ms before each` : " back to back"}; a fresh Reef session / gateway session key per turn; same agent, instructions and gateway`,
    );
    const field = (turns: Turn[], f: (t: Turn) => number) => turns.map(f);
    const reefTtft = field(reefTurns, (x) => x.ttftMs);
    const directTtft = field(directTurns, (x) => x.ttftMs);
    const direct50 = p(directTtft, 50);
    row("  time to first token", reefTtft, directTtft, ms, 99);
    // The same iteration's two turns share the machine's state: their difference is the steadier figure.
    const paired = pairedMedian(reefTtft, directTtft);
    const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)} ms`;
    console.log(
      `  paired TTFT (Reef − direct, same iteration, ${paired.n} pairs): median ${signed(paired.median)}, 95% interval ${signed(paired.low)} … ${signed(paired.high)}; as a ratio on the direct p50: ${(1 + paired.median / direct50).toFixed(3)} (${(1 + paired.low / direct50).toFixed(3)} … ${(1 + paired.high / direct50).toFixed(3)})`,
    );
    row(
      "  whole turn",
      field(reefTurns, (x) => x.totalMs),
      field(directTurns, (x) => x.totalMs),
      ms,
      99,
    );
    // For a rate the bad tail is the slow end: p1.
    row("  streaming rate", reefTurns.map(tokensPerSecond), directTurns.map(tokensPerSecond), rate, 1);
    const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    console.log(
      `  (rate = completion tokens ÷ time from first to last text chunk at the client; ${avg(field(reefTurns, (x) => x.completionTokens)).toFixed(0)} tokens in ${avg(field(reefTurns, (x) => x.deltas)).toFixed(0)} delta events per answer through Reef, ${avg(field(directTurns, (x) => x.completionTokens)).toFixed(0)} in ${avg(field(directTurns, (x) => x.deltas)).toFixed(0)} direct)`,
    );
    const own50 = p(
      field(ownConnectionTurns, (x) => x.ttftMs),
      50,
    );
    console.log(
      `  direct on a new connection per turn: TTFT p50 ${ms(own50)} against ${ms(direct50)} on the shared one (connect costs ${ms(own50 - direct50)}, ${ratio(own50, direct50)})`,
    );
    console.log(`  ${cpuLine("Reef:  ", reefCpu, reefTurns.length)}`);
    console.log(`  ${cpuLine("direct:", directCpu, directTurns.length)}`);

    // ---- 2. 100 people at once across 10 workspaces.
    t = performance.now();
    const startMs: number[] = new Array(spaces.length).fill(0);
    await pool(spaces.slice(1), START_PARALLEL, async (space, i) => {
      const s = performance.now();
      await start(space.wid);
      startMs[i + 1] = performance.now() - s;
    });
    const startAll = performance.now() - t;
    for (const space of spaces) await trackGateway(space.wid);
    // One turn per gateway (the owner's, in a session of its own) so none is measured on its first turn.
    t = performance.now();
    await Promise.all(
      spaces.map(async (space, w) => {
        const owner = space.people[0] as Person;
        const sid = (
          await apiJson(owner.client, "POST", `/api/v1/workspaces/${space.wid}/sessions`, { agentId: space.agentId })
        ).id as string;
        must(await viaReef({ ...owner, sid }, `warm-up ${w}`), `warm-up turn in workspace ${w}`);
      }),
    );
    const warmTurns = performance.now() - t;
    const rss = () => [...gatewayPgids.values()].reduce((s, pgid) => s + groupRss(pgid), 0);
    const warmRss = rss();
    const conns = await Promise.all(spaces.map((s) => manager.ensureRunning(SYSTEM, s.wid)));
    const users = spaces.flatMap((s, w) => s.people.map((person, u) => ({ person, w, u })));
    console.log(
      `${users.length} people at once: ${spaces.length} workspaces × ${USERS_PER_WORKSPACE} (owner + ${USERS_PER_WORKSPACE - 1} members), each in their own session, all sending at the same moment; ${ROUNDS} measured rounds after a warm-up round, each round once through Reef and once straight to the gateways (own session keys, alternating which goes first)`,
    );
    console.log(
      `  warm-up: ${spaces.length - 1} more gateways started ${START_PARALLEL} at a time in ${secs(startAll)} (each ${startMs
        .slice(1)
        .map((x) => (x / 1000).toFixed(1))
        .join(
          ", ",
        )} s), then a first turn on all ${spaces.length} at once in ${secs(warmTurns)}; ${spaces.length} gateways' RSS ${mb(warmRss)} (${mb(warmRss / spaces.length)} each)`,
    );
    if (startFailures.length)
      console.log(
        `  gateway starts that failed and were retried: ${startFailures.length} (first: ${startFailures[0]})`,
      );
    const all = { reef: [] as Turn[], direct: [] as Turn[] };
    const spent = { reef: cpuSpent(), direct: cpuSpent() };
    const summary = (turns: Turn[]) => {
      const ok = turns.filter((x) => !x.error);
      const errors = turns.filter((x) => x.error);
      const ttft = ok.map((x) => x.ttftMs);
      const total = ok.map((x) => x.totalMs);
      return {
        text: `TTFT p50 ${ms(p(ttft, 50))} p99 ${ms(p(ttft, 99))} | turn p50 ${ms(p(total, 50))} p99 ${ms(p(total, 99))} | errors ${errors.length}${errors[0] ? ` (first: ${errors[0].error})` : ""}`,
        ttft,
        total,
      };
    };
    // Round 0 warms every session path at full concurrency (each gateway's first
    // concurrent burst is slower); it is printed but not counted.
    for (let round = 0; round <= ROUNDS; round++) {
      const modes: ("reef" | "direct")[] = round % 2 ? ["reef", "direct"] : ["direct", "reef"];
      for (const mode of modes) {
        const before = cpu();
        const started = performance.now();
        const turns = await Promise.all(
          users.map(({ person, w, u }) => {
            const text = `round ${round} ${mode} from person ${u} of workspace ${w}`;
            const space = spaces[w] as Space;
            return mode === "reef"
              ? viaReef(person, text)
              : direct(conns[w] as RuntimeConnection, space.agentId, `bench-direct-${space.wid}-${u}`, text);
          }),
        );
        const wall = performance.now() - started;
        const after = cpu();
        const roundCpu = cpuSpent();
        addCpu(roundCpu, before, after);
        if (round > 0) {
          addCpu(spent[mode], before, after);
          all[mode].push(...turns);
        }
        console.log(
          `  round ${round} ${mode === "reef" ? "Reef  " : "direct"} ${summary(turns).text} | all ${users.length} done in ${secs(wall)}, gateway CPU ${Math.round(roundCpu.gateways / turns.length)} ms/turn${round === 0 ? " (warm-up, not counted)" : ""}`,
        );
      }
    }
    const reef = summary(all.reef);
    const straight = summary(all.direct);
    console.log(`  all ${all.reef.length} Reef turns    ${reef.text}`);
    console.log(`  all ${all.direct.length} direct turns  ${straight.text}`);
    console.log(
      `  Reef:direct  TTFT p50 ${ratio(p(reef.ttft, 50), p(straight.ttft, 50))} p99 ${ratio(p(reef.ttft, 99), p(straight.ttft, 99))} | turn p50 ${ratio(p(reef.total, 50), p(straight.total, 50))} p99 ${ratio(p(reef.total, 99), p(straight.total, 99))}   (errors: any non-200, error event, or answer not the expected text)`,
    );
    console.log(`  ${cpuLine("Reef:  ", spent.reef, all.reef.length)}`);
    console.log(`  ${cpuLine("direct:", spent.direct, all.direct.length)}`);
    console.log(`  ${spaces.length} gateways' RSS after the rounds: ${mb(rss())}`);
  } finally {
    await cleanups.done();
  }
}

// `node bench/chat-bench.ts stand-in`: the LLM stand-in, in a process of its own.
if (import.meta.main && process.argv[2] === "stand-in") {
  const llm = await startLlmStandIn({
    apiKey: process.env.BENCH_STANDIN_KEY ?? "",
    chunkDelayMs: CHUNK_DELAY_MS,
    reply: replyTo,
  });
  process.stdout.write(`LISTENING ${llm.baseUrl}\n`);
  process.once("SIGTERM", () => void llm.close().finally(() => process.exit(0)));
} else if (import.meta.main) {
  await chatBench();
}
