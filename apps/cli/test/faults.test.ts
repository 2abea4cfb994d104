import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EmbeddedPostgres } from "@reef/db";
import { type LlmStandIn, startLlmStandIn } from "@reef/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reefCommand, startReef, tempDataDir, waitFor } from "./reef-process.ts";

/**
 * Faults Reef must survive: its database restarting under load, and being
 * killed (SIGKILL) in the middle of writes. Both run real `reef` processes
 * against a Postgres server of this file's own, which it stops and starts at
 * will (the shared test server must never be touched: other files use it).
 */

// No request may hang past this, even with the database gone.
const REQUEST_BOUND_MS = 10_000;
// Start-up on a machine shared with other test runs.
const START_MS = 60_000;
const API_KEY = `sk-faults-${randomBytes(6).toString("hex")}`;
const SECRET_KEY = randomBytes(32).toString("base64");

let pgDir: string;
let server: EmbeddedPostgres;
let pgPort: number;
let llm: LlmStandIn;

beforeAll(async () => {
  pgDir = await mkdtemp(join(tmpdir(), "reef-faults-pg-"));
  server = new EmbeddedPostgres({ dir: pgDir, port: 0 });
  await server.start();
  pgPort = server.connection.port;
  llm = await startLlmStandIn({ apiKey: API_KEY });
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await llm?.close();
  if (pgDir) await rm(pgDir, { recursive: true, force: true });
});

async function createDatabase(name: string): Promise<string> {
  const { user, password, host } = server.connection;
  const admin = new pg.Client({ host, port: pgPort, user, password, database: "postgres" });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return `postgres://${user}:${encodeURIComponent(password)}@${host}:${pgPort}/${name}`;
}

async function reefEnv(database: string) {
  return {
    REEF_DATA_DIR: await tempDataDir(),
    DATABASE_URL: await createDatabase(database),
    REEF_SECRET_KEY: SECRET_KEY,
    REEF_PROVIDER_ALLOWED_HOSTS: "127.0.0.1",
    REEF_RATE_LIMIT_SIGNUP_IP: "1000/1m",
    REEF_RATE_LIMIT_LOGIN_IP: "1000/1m",
    REEF_RATE_LIMIT_API_READ: "100000/1m",
    REEF_RATE_LIMIT_API_WRITE: "100000/1m",
    REEF_MAX_WORKSPACES_PER_USER: "1000",
  };
}

interface Answer {
  status: number;
  body: any;
  ms: number;
}

/** A signed-in person talking to a real Reef over HTTP, as the web app does (session cookie, CSRF echo). */
class Member {
  readonly cookies = new Map<string, string>();
  workspaceId = "";
  base: string;
  readonly email: string;
  constructor(base: string, email: string) {
    this.base = base;
    this.email = email;
  }

  async call(method: string, path: string, body?: unknown): Promise<Answer> {
    const started = performance.now();
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const csrf = this.cookies.get("reef_csrf");
    if (csrf && method !== "GET") headers["x-csrf-token"] = csrf;
    const res = await fetch(this.base + path, {
      method,
      headers,
      signal: AbortSignal.timeout(REQUEST_BOUND_MS),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const at = pair?.indexOf("=") ?? -1;
      if (pair && at > 0) this.cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, ms: performance.now() - started };
  }

  /** Sends and expects `status`. @returns the body. */
  async must(method: string, path: string, body: unknown, status: number) {
    const res = await this.call(method, path, body);
    expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(status);
    return res.body;
  }

  static async signUp(base: string, tag: string): Promise<Member> {
    const m = new Member(base, `${tag}-${randomBytes(4).toString("hex")}@example.test`);
    const body = await m.must(
      "POST",
      "/api/v1/auth/signup",
      { email: m.email, password: "correct horse battery", name: tag },
      201,
    );
    m.workspaceId = body.workspace.id;
    return m;
  }

  addProvider(wid: string): Promise<Answer> {
    return this.call("POST", `/api/v1/workspaces/${wid}/providers`, {
      name: `P ${randomBytes(3).toString("hex")}`,
      kind: "openai-compatible",
      baseUrl: llm.baseUrl,
      apiKey: API_KEY,
      models: ["stand-in-model"],
    });
  }

  addAgent(wid: string, providerId: string): Promise<Answer> {
    return this.call("POST", `/api/v1/workspaces/${wid}/agents`, {
      name: `Agent ${randomBytes(3).toString("hex")}`,
      providerId,
      model: "stand-in-model",
    });
  }
}

describe("faults Reef survives", () => {
  it("Postgres restarting under load: 503 UNAVAILABLE while it is down, never a hang or a crash, and recovery by itself", async () => {
    const env = await reefEnv("faults_outage");
    const reef = await startReef(env, START_MS);
    const pid = reef.child.pid;
    try {
      // Several members in several workspaces: each owner's workspace has a provider, and a colleague joined it.
      const owners = await Promise.all(["ann", "bob", "cat"].map((t) => Member.signUp(reef.url, t)));
      const providers = new Map<Member, string>();
      for (const [i, owner] of owners.entries()) {
        providers.set(owner, (await owner.addProvider(owner.workspaceId)).body.id);
        const colleague = owners[(i + 1) % owners.length] as Member;
        const invite = await owner.must(
          "POST",
          `/api/v1/workspaces/${owner.workspaceId}/invites`,
          { email: colleague.email, role: "member" },
          201,
        );
        await colleague.must("POST", `/api/v1/invites/${invite.token}/accept`, {}, 200);
      }

      type Sample = Answer & { phase: "before" | "down" | "after"; what: string };
      const samples: Sample[] = [];
      let phase: Sample["phase"] = "before";
      let stopLoad = false;
      const work = async (m: Member) => {
        const wid = m.workspaceId;
        const providerId = providers.get(m) as string;
        while (!stopLoad) {
          const at = phase;
          for (const [what, step] of [
            ["create agent", () => m.addAgent(wid, providerId)],
            ["list sessions", () => m.call("GET", `/api/v1/workspaces/${wid}/sessions`)],
            ["list agents", () => m.call("GET", `/api/v1/workspaces/${wid}/agents`)],
          ] as const) {
            // A refused or cut connection (Reef died) or a request past the bound is recorded, and fails below.
            const answer = await step().catch((err: Error) => ({
              status: 0,
              body: { code: String(err.cause ?? err) },
              ms: 0,
            }));
            samples.push({ ...answer, phase: at, what });
          }
          await sleep(20);
        }
      };
      // Two writers each: more transactions in flight when the server goes.
      const load = Promise.all(owners.flatMap((m) => [work(m), work(m)]));
      const ok = (s: Answer) => s.status >= 200 && s.status < 300;
      await waitFor(() => samples.filter(ok).length >= 6, 30_000);

      // Fast shutdown (what a managed database's restart or failover does), kept down a few seconds.
      phase = "down";
      await server.stop();
      const probes: { readyz: number; healthz: number }[] = [];
      const downUntil = Date.now() + 3_000;
      while (Date.now() < downUntil) {
        const [readyz, healthz] = await Promise.all(
          ["/readyz", "/healthz"].map((p) =>
            fetch(reef.url + p, { signal: AbortSignal.timeout(REQUEST_BOUND_MS) }).then((r) => r.status),
          ),
        );
        probes.push({ readyz: readyz as number, healthz: healthz as number });
        await sleep(250);
      }
      server = new EmbeddedPostgres({ dir: pgDir, port: pgPort });
      await server.start();
      phase = "after";

      // Back by itself: ready again, and every member can write, in the same process.
      await waitFor(async () => (await fetch(`${reef.url}/readyz`).catch(() => undefined))?.status === 200, 15_000);
      stopLoad = true;
      await load;
      for (const m of owners) {
        expect((await m.addAgent(m.workspaceId, providers.get(m) as string)).status).toBe(201);
        expect((await m.call("GET", `/api/v1/workspaces/${m.workspaceId}/sessions`)).status).toBe(200);
      }
      // Chat's Stop channel (a LISTEN connection of its own) is back too.
      await waitFor(() => reef.output().includes("chat Stop notifications resumed"), 15_000);
      expect(reef.child.pid).toBe(pid);
      expect(reef.child.exitCode).toBeNull();
      expect(reef.child.signalCode).toBeNull();

      // Liveness stays up (the process is fine), readiness says the database is not.
      expect(probes.length).toBeGreaterThan(3);
      for (const p of probes) expect(p).toEqual({ readyz: 503, healthz: 200 });

      const down = samples.filter((s) => s.phase === "down");
      const failed = samples.filter((s) => !ok(s));
      expect(samples.filter((s) => s.phase === "before" && ok(s)).length).toBeGreaterThan(5);
      expect(down.length).toBeGreaterThan(5);
      expect(failed.length).toBeGreaterThan(0);
      // Every failure is the database being away, said so with a stable code, and never a sign-out (401).
      for (const s of failed) {
        expect({ what: s.what, status: s.status, code: s.body?.code }).toEqual({
          what: s.what,
          status: 503,
          code: "UNAVAILABLE",
        });
      }
      for (const s of samples) expect(s.ms).toBeLessThan(REQUEST_BOUND_MS);
      expect(reef.output()).not.toMatch(/uncaught|unhandled rejection/i);
    } catch (err) {
      console.warn(reef.output().slice(-6000));
      throw err;
    } finally {
      reef.child.kill("SIGINT");
      await reef.exited;
    }
  }, 180_000);

  it("kill -9 during writes: every acknowledged write is there after a restart, with nothing half-written", async () => {
    const env = await reefEnv("faults_kill");
    const first = await startReef(env, START_MS);
    const owners = await Promise.all(["dan", "eve", "fay"].map((t) => Member.signUp(first.url, t)));

    // What Reef acknowledged (2xx) before it died.
    const acked = { workspaces: [] as [Member, string][], agents: [] as [Member, string, string][] };
    const ackedInvites: [Member, string, string][] = [];
    const ackedProviders: [Member, string, string][] = [];
    let killed = false;
    let cut = 0;
    const write = async (m: Member) => {
      while (!killed) {
        try {
          const ws = await m.call("POST", "/api/v1/workspaces", { name: `W ${randomBytes(3).toString("hex")}` });
          if (ws.status !== 201) continue;
          const wid = ws.body.id as string;
          acked.workspaces.push([m, wid]);
          const [provider, invite] = await Promise.all([
            m.addProvider(wid),
            m.call("POST", `/api/v1/workspaces/${wid}/invites`, {
              email: `x-${randomBytes(3).toString("hex")}@example.test`,
              role: "member",
            }),
          ]);
          if (invite.status === 201) ackedInvites.push([m, wid, invite.body.invite.id]);
          if (provider.status !== 201) continue;
          ackedProviders.push([m, wid, provider.body.id]);
          const agent = await m.addAgent(wid, provider.body.id);
          if (agent.status === 201) acked.agents.push([m, wid, agent.body.id]);
        } catch {
          // The process died under this request: its outcome is unknown, which is allowed.
          cut += 1;
          return;
        }
      }
    };
    const load = Promise.all(owners.flatMap((m) => [write(m), write(m)]));
    await waitFor(() => acked.agents.length >= 6, 30_000);
    killed = true;
    first.child.kill("SIGKILL");
    await first.exited;
    await load;
    expect(acked.workspaces.length).toBeGreaterThanOrEqual(6);
    // The kill landed mid-stream: writes were in flight.
    expect(cut).toBeGreaterThan(0);

    const second = await startReef(env, START_MS);
    try {
      // Sessions live in the database: the same cookies still work after the restart.
      for (const m of owners) m.base = second.url;
      for (const m of owners) {
        const listed = JSON.stringify(await m.must("GET", "/api/v1/workspaces", undefined, 200));
        for (const [owner, wid] of acked.workspaces) if (owner === m) expect(listed).toContain(wid);
      }
      for (const [m, wid, id] of acked.agents) {
        expect(JSON.stringify(await m.must("GET", `/api/v1/workspaces/${wid}/agents`, undefined, 200))).toContain(id);
      }
      for (const [m, wid, id] of ackedInvites) {
        expect(JSON.stringify(await m.must("GET", `/api/v1/workspaces/${wid}/invites`, undefined, 200))).toContain(id);
      }

      // Nothing half-written, acknowledged or not: read past RLS, as an operator would.
      const owner = new pg.Client({ connectionString: env.DATABASE_URL });
      await owner.connect();
      try {
        const q = async (sql: string) => (await owner.query(sql)).rows;
        expect(
          await q(
            "select w.id from workspaces w where not exists (select 1 from workspace_members m where m.workspace_id = w.id and m.role = 'owner')",
          ),
        ).toEqual([]);
        expect(
          await q("select a.id from agents a left join workspaces w on w.id = a.workspace_id where w.id is null"),
        ).toEqual([]);
        expect(
          await q(
            "select p.id from providers p where p.api_key_sealed is not null and not exists (select 1 from workspace_keys k where k.workspace_id = p.workspace_id)",
          ),
        ).toEqual([]);
        // Every provider in the database, acknowledged or not, opens its sealed key and presents it (the stand-in checks it).
        const rows = (await owner.query<{ id: string; workspace_id: string }>("select id, workspace_id from providers"))
          .rows;
        expect(rows.length).toBeGreaterThanOrEqual(ackedProviders.length);
        const whose = new Map(acked.workspaces.map(([m, wid]) => [wid, m]));
        for (const m of owners) whose.set(m.workspaceId, m);
        for (const row of rows) {
          const m = whose.get(row.workspace_id) ?? (await ownerOf(owner, row.workspace_id, owners));
          const tested = await m.must(
            "POST",
            `/api/v1/workspaces/${row.workspace_id}/providers/${row.id}/test`,
            undefined,
            200,
          );
          expect(tested, row.id).toMatchObject({ ok: true });
        }
      } finally {
        await owner.end();
      }

      // The audit trail's hash chains are intact: no entry lost or torn by the kill.
      const verify = await reefCommand(["audit", "verify"], env);
      expect(verify.code, verify.output).toBe(0);
      expect(verify.output).toMatch(/\d+ entries in \d+ chains: intact/);
    } finally {
      second.child.kill("SIGINT");
      await second.exited;
    }
  }, 180_000);
});

/** The member who owns `wid` (a workspace whose creation was cut off before Reef answered). */
async function ownerOf(owner: pg.Client, wid: string, members: Member[]): Promise<Member> {
  const row = (
    await owner.query<{ email: string }>(
      "select u.email from workspace_members m join users u on u.id = m.user_id where m.workspace_id = $1 and m.role = 'owner'",
      [wid],
    )
  ).rows[0];
  const m = members.find((x) => x.email === row?.email);
  if (!m) throw new Error(`workspace ${wid} has no owner among the test's members`);
  return m;
}
