/**
 * Schedule firing latency (`BENCH_ONLY=schedules`): from a run's scheduled time
 * (`schedule_runs.scheduled_for`) to its prompt reaching a running gateway,
 * measured as the moment the LLM stand-in (its own process) receives the model
 * request carrying the run's marker, which is strictly later than the gateway
 * getting the prompt (the gateway has read it and called its model through
 * Reef's LLM proxy). Also printed: when the run row was queued (the fire job
 * picked up), went `running` (the run job picked up) and finished.
 *  a. warm: 100 firings across 10 workspaces (10 each), every gateway running;
 *  b. wake: fewer firings (one per workspace by default), each workspace's
 *     gateway stopped just before its firing, one firing at a time (a wake is
 *     15-20 s of CPU on a 2-core machine; two at once would measure contention).
 * The real app, scheduler (pg-boss on the bench's embedded Postgres) and
 * gateways (process driver), with the shipped scheduler settings except the
 * minimum interval (1 s, as the tests use).
 *
 * Firings are one-off (`once`) schedules with `runAt` a few seconds ahead, one
 * schedule per firing, rather than 6-field cron rules: a cron schedule's next
 * firing is the same kind of fire job (pg-boss, `startAfter` = the firing time)
 * that a one-off queues, so the measured path is the same; but one-offs put each
 * firing exactly where the bench wants it (the warm firings spaced evenly across
 * workspaces so they do not queue behind each other, each wake right after that
 * runtime's stop without racing a rule's clock), and each run gets a session of
 * its own, so no firing answers with a longer context than another.
 */
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { type ApiClient, signUp } from "@reef/testing";
import { startLlmStandIn } from "@reef/testing/llm";
import pg from "pg";
import { addBenchAgent, apiJson, benchCleanups, startBenchApp, startStandInChild } from "./bench-app.ts";
import { benchAppConfig, startBenchPostgres } from "./bench-postgres.ts";
import { machineBusyMs, percentile, pool } from "./measure.ts";

const WORKSPACES = Number(process.env.BENCH_SCHEDULE_WORKSPACES ?? 10);
/** Measured warm firings per workspace (plus one warm-up firing each, not counted). */
const WARM_PER_WORKSPACE = Number(process.env.BENCH_SCHEDULE_FIRINGS ?? 10);
const WAKES = Number(process.env.BENCH_SCHEDULE_WAKES ?? WORKSPACES);
/** Time between two warm firings (across workspaces): each workspace fires every WORKSPACES × this. */
const SPACING_MS = Number(process.env.BENCH_SCHEDULE_SPACING_MS ?? 600);
/** How far ahead a wake firing is set: enough for the create request to land before it. */
const WAKE_LEAD_MS = 2000;
const START_PARALLEL = 3;
const MARKER = /\bbf\d+x[0-9a-f]{8}\b/;
const SYSTEM = { actor: { kind: "system" as const, name: "schedules-bench" } };
const FINAL = new Set(["succeeded", "failed", "skipped", "timed_out"]);

const p = (xs: number[], q: number) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    q,
  );
const ms = (x: number) => `${Math.round(x)} ms`.padStart(9);
const secs = (x: number) => `${(x / 1000).toFixed(1)} s`;
const ratio = (a: number, b: number) => (a / b).toFixed(1);
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

/** One firing: its schedule, the marker its prompt carries, and what became of it. */
interface Firing {
  wid: string;
  marker: string;
  scheduleId: string;
  runAt: number;
  /** When the stand-in first saw the marker (epoch ms). */
  sawAt?: number;
  run?: RunTimes;
}

interface RunTimes {
  status: string;
  errorCode: string | null;
  error: string | null;
  attempts: number;
  scheduledFor: number;
  queuedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export async function schedulesBench(): Promise<void> {
  const key = `sk-bench-${randomBytes(8).toString("hex")}`;
  const cleanups = benchCleanups("schedules bench");
  const benchStart = performance.now();
  try {
    const seen = new Map<string, number>();
    // The stand-in prints `SAW <epoch ms> <marker>` for each model request carrying a marker.
    const llm = await startStandInChild(fileURLToPath(import.meta.url), key, (line) => {
      const saw = /^SAW (\d+) (\S+)$/.exec(line);
      if (saw?.[2] && !seen.has(saw[2])) seen.set(saw[2], Number(saw[1]));
    });
    cleanups.push(async () => {
      llm.child.kill();
    });
    const db = await startBenchPostgres();
    cleanups.push(() => db.stop());
    const config = {
      ...benchAppConfig(),
      runtimeStartTimeoutSeconds: 300,
      runtimeIdleTimeoutMinutes: 600,
      scheduleMinIntervalSeconds: 1,
    };
    const { app, manager, workspaceIds } = await startBenchApp(cleanups, db, config);
    await app.ready();
    const owner = new pg.Client({ connectionString: db.ownerUrl });
    await owner.connect();
    cleanups.push(() => owner.end());

    // ---- Fixtures: workspaces with an owner, the stand-in as provider, one agent.
    const spaces: { wid: string; agentId: string; client: ApiClient }[] = [];
    for (let w = 0; w < WORKSPACES; w++) {
      const person = await signUp(app, { email: `sched-owner${w}@bench.test`, name: `Owner ${w}` });
      const wid = person.workspaceId;
      workspaceIds.push(wid);
      const instructions = "You are the benchmark agent. Answer briefly.";
      const agentId = await addBenchAgent(person.client, wid, llm, key, instructions);
      spaces.push({ wid, agentId, client: person.client });
    }

    let seq = 0;
    /** Creates a one-off schedule firing at `runAt` whose prompt carries a fresh marker. */
    const schedule = async (w: number, runAt: number): Promise<Firing> => {
      const space = spaces[w] as (typeof spaces)[number];
      const marker = `bf${seq++}x${randomBytes(4).toString("hex")}`;
      const created = await apiJson(space.client, "POST", `/api/v1/workspaces/${space.wid}/schedules`, {
        name: `Bench ${marker}`,
        agentId: space.agentId,
        kind: "once",
        runAt: new Date(runAt).toISOString(),
        prompt: `Scheduled bench firing ${marker}. Reply in one line.`,
      });
      return { wid: space.wid, marker, scheduleId: created.id, runAt };
    };

    /** Reads the firings' run rows until each has finished (or `deadline`), and joins what the stand-in saw. */
    const collect = async (firings: Firing[], deadline: number) => {
      const byId = new Map(firings.map((f) => [f.scheduleId, f]));
      for (;;) {
        const { rows } = await owner.query(
          `select schedule_id, status, error_code, error, attempts, scheduled_for, queued_at, started_at, finished_at
             from schedule_runs where trigger = 'schedule' and schedule_id = any($1::uuid[])`,
          [[...byId.keys()]],
        );
        for (const r of rows) {
          const f = byId.get(r.schedule_id) as Firing;
          f.run = {
            status: r.status,
            errorCode: r.error_code,
            error: r.error,
            attempts: r.attempts,
            scheduledFor: (r.scheduled_for as Date).getTime(),
            queuedAt: (r.queued_at as Date).getTime(),
            startedAt: r.started_at ? (r.started_at as Date).getTime() : null,
            finishedAt: r.finished_at ? (r.finished_at as Date).getTime() : null,
          };
        }
        for (const f of firings) {
          const saw = seen.get(f.marker);
          if (saw !== undefined) f.sawAt = saw;
        }
        if (firings.every((f) => f.run && FINAL.has(f.run.status))) return;
        if (Date.now() > deadline) return;
        await sleep(250);
      }
    };

    const report = (label: string, firings: Firing[]) => {
      const done = firings.filter((f) => f.run);
      const since = (pick: (f: Firing) => number | null | undefined) =>
        done.flatMap((f) => {
          const t = pick(f);
          return t == null ? [] : [t - (f.run as RunTimes).scheduledFor];
        });
      const figures = {
        queued: since((f) => f.run?.queuedAt),
        running: since((f) => f.run?.startedAt),
        llm: since((f) => f.sawAt),
        finished: since((f) => f.run?.finishedAt),
      };
      const line = (name: string, xs: number[]) =>
        console.log(
          `    scheduled → ${name.padEnd(20)} p50 ${ms(p(xs, 50))}  p99 ${ms(p(xs, 99))}  max ${ms(Math.max(...xs))}  (${xs.length})`,
        );
      line("run queued", figures.queued);
      line("run running", figures.running);
      line("prompt at the LLM", figures.llm);
      line("run finished", figures.finished);
      const path = done.flatMap((f) => (f.sawAt && f.run?.startedAt ? [f.sawAt - f.run.startedAt] : []));
      console.log(
        `    run running → prompt at the LLM   p50 ${ms(p(path, 50))}  p99 ${ms(p(path, 99))}  (the chat path${label === "wake" ? ", waking the gateway included" : ""})`,
      );
      const statuses = new Map<string, number>();
      for (const f of firings) {
        const s = f.run ? `${f.run.status}${f.run.errorCode ? ` ${f.run.errorCode}` : ""}` : "no run row";
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
      }
      const retried = done.filter((f) => (f.run?.attempts ?? 0) > 1).length;
      const bad = firings.find((f) => f.run?.status !== "succeeded");
      console.log(
        `    ${label} runs: ${[...statuses].map(([s, n]) => `${s} ${n}`).join(", ")}; retried ${retried}; prompt never reached the LLM ${firings.length - figures.llm.length}${bad?.run?.error ? ` (first problem: ${bad.run.error.slice(0, 160)})` : ""}`,
      );
      return figures;
    };

    console.log(
      `schedules: ${WORKSPACES} workspaces, one agent each, the LLM stand-in in its own process answering one line; the real scheduler (pg-boss, poll ${config.schedulerPollSeconds} s, ${config.schedulerConcurrency} runs at once per process) with a 1 s minimum interval; one-off schedules, one per firing; ${availableParallelism()} cores shared by Reef, Postgres, the stand-in and the gateways`,
    );

    // ---- Gateways: started 3 at a time, a failed start retried twice.
    let t = performance.now();
    const startFailures: string[] = [];
    await pool(spaces, START_PARALLEL, async (space) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await manager.ensureRunning(SYSTEM, space.wid);
        } catch (err) {
          startFailures.push(String((err as { cause?: unknown }).cause ?? err).slice(0, 200));
          if (attempt === 3) throw err;
        }
      }
    });
    console.log(
      `  ${WORKSPACES} gateways started ${START_PARALLEL} at a time in ${secs(performance.now() - t)}${startFailures.length ? `; failed starts retried: ${startFailures.length} (first: ${startFailures[0]})` : ""}`,
    );

    /** Creates firings `SPACING_MS` apart across the workspaces, far enough ahead for every create to land first. */
    const batch = async (count: number) => {
      const firstAt = Date.now() + 3000 + count * 40;
      const firings: Firing[] = [];
      for (let f = 0; f < count; f++) firings.push(await schedule(f % WORKSPACES, firstAt + f * SPACING_MS));
      return { firings, firstAt, late: Date.now() > firstAt };
    };

    // ---- a. Warm. First one firing per workspace (each gateway's first turn, through the scheduler), not counted.
    t = performance.now();
    const warmUp = await batch(WORKSPACES);
    await collect(warmUp.firings, warmUp.firstAt + WORKSPACES * SPACING_MS + 180_000);
    const warmUpMs = warmUp.firings.flatMap((f) => (f.sawAt ? [f.sawAt - f.runAt] : []));
    console.log(
      `  warm-up: one firing per workspace, not counted, done in ${secs(performance.now() - t)} (scheduled → prompt at the LLM p50 ${ms(p(warmUpMs, 50)).trim()}, max ${ms(Math.max(...warmUpMs)).trim()}; ${warmUp.firings.filter((f) => f.run?.status === "succeeded").length} of ${WORKSPACES} succeeded)`,
    );
    const total = WORKSPACES * WARM_PER_WORKSPACE;
    t = performance.now();
    const measured = await batch(total);
    console.log(
      `  warm: ${total} one-off schedules created in ${secs(performance.now() - t)}${measured.late ? " (the first firings began before the last was created)" : ""}; one firing every ${secs(SPACING_MS)} across the workspaces (each workspace every ${secs(SPACING_MS * WORKSPACES)})`,
    );
    const busy0 = machineBusyMs();
    const wall0 = Date.now();
    await collect(measured.firings, measured.firstAt + total * SPACING_MS + 180_000);
    const busy = (machineBusyMs() - busy0) / (Date.now() - wall0) / availableParallelism();
    const counted = measured.firings;
    console.log(
      `  a. warm (gateways running): ${counted.length} firings across ${WORKSPACES} workspaces, machine ${Math.round(busy * 100)}% busy meanwhile`,
    );
    const warmFigures = report("warm", counted);

    // ---- b. Wake: stop the workspace's gateway, then a firing a few seconds ahead; one at a time.
    const wakes: Firing[] = [];
    let stoppedFirst = 0;
    t = performance.now();
    const wakeBusy0 = machineBusyMs();
    for (let i = 0; i < WAKES; i++) {
      const w = i % WORKSPACES;
      const wid = (spaces[w] as (typeof spaces)[number]).wid;
      await manager.stop(SYSTEM, wid, "schedules bench: wake measurement");
      const { rows } = await owner.query("select state from runtimes where workspace_id = $1", [wid]);
      if (rows[0]?.state === "stopped") stoppedFirst += 1;
      const firing = await schedule(w, Date.now() + WAKE_LEAD_MS);
      await collect([firing], firing.runAt + 300_000);
      wakes.push(firing);
    }
    console.log(
      `  b. wake (gateway stopped before each firing, ${stoppedFirst} of ${WAKES} confirmed stopped): ${WAKES} firings, one at a time, ${Math.ceil(WAKES / WORKSPACES)} per workspace at most, in ${secs(performance.now() - t)}, machine ${Math.round(((machineBusyMs() - wakeBusy0) / (performance.now() - t) / availableParallelism()) * 100)}% busy meanwhile`,
    );
    const wakeFigures = report("wake", wakes);

    const side = (name: string, a: number[], b: number[]) =>
      `${name} p50 ${ratio(p(b, 50), p(a, 50))} p99 ${ratio(p(b, 99), p(a, 99))}`;
    console.log(
      `  wake : warm   ${side("scheduled → running", warmFigures.running, wakeFigures.running)} | ${side("scheduled → prompt at the LLM", warmFigures.llm, wakeFigures.llm)}  (warm runs arrive faster than ${config.schedulerConcurrency} at a time finish on this machine, so they also wait for a run slot; wakes run alone)`,
    );
    console.log(`  schedules bench took ${secs(performance.now() - benchStart)}`);
  } finally {
    await cleanups.done();
  }
}

// `node bench/schedules-bench.ts stand-in`: the LLM stand-in, in a process of its own.
if (import.meta.main && process.argv[2] === "stand-in") {
  const llm = await startLlmStandIn({
    apiKey: process.env.BENCH_STANDIN_KEY ?? "",
    reply: (text) => {
      const marker = MARKER.exec(text)?.[0];
      // Called as the request arrives (before any answer is streamed): when the prompt reached the model.
      if (marker) process.stdout.write(`SAW ${Date.now()} ${marker}\n`);
      return `Done ${marker ?? ""}.`;
    },
  });
  process.stdout.write(`LISTENING ${llm.baseUrl}\n`);
  process.once("SIGTERM", () => void llm.close().finally(() => process.exit(0)));
} else if (import.meta.main) {
  await schedulesBench();
}
