/**
 * Approvals without a gateway: the relay's side (requests recorded, sealed,
 * answered by policy), who sees and who decides (over HTTP, as people), first
 * answer wins, the timeout, the sweep of another replica, "allow always",
 * reminders by email, and the audit trail. A second approval service on the
 * same database plays the replica that relays the turn, with its deliveries to
 * the gateway recorded; the app is the replica that takes people's decisions.
 */
import { randomUUID } from "node:crypto";
import {
  type ApprovalTurn,
  createApprovalService,
  createAuditService,
  createPermissions,
  createRateLimits,
  createSmtpMailer,
  createWorkspaceGate,
  type RequestContext,
} from "@reef/core";
import { servicesOf } from "@reef/server";
import { type ApiClient, buildTestApp, type SmtpStandIn, signUp, startSmtpStandIn, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
let smtp: SmtpStandIn;
type Person = Awaited<ReturnType<typeof signUp>>;
const people: Record<"owner" | "admin" | "member" | "member2" | "viewer", Person> = {} as never;
let wid = "";
let agents: Record<"ask" | "allowlist" | "deny" | "allow", string> = {} as never;
let sessionId = "";

const GENEROUS = { points: 100_000, durationSec: 60 };
type Delivery = { id: string; kind: string; decision: string; endpoint: string };

/** Another replica's approval service: it relays turns, and its deliveries are recorded. */
function replica(opts: { timeoutSeconds?: number; remindAfterMs?: number; mail?: boolean } = {}) {
  const db = t.db.database.db;
  const audit = createAuditService({ db });
  const gate = createWorkspaceGate({
    db,
    permissions: createPermissions({ db }),
    audit,
    rateLimits: createRateLimits({
      pool: t.db.database.pool,
      audit,
      settings: {
        signup_ip: GENEROUS,
        login_ip: GENEROUS,
        login_account: GENEROUS,
        invite_accept: GENEROUS,
        api_read: GENEROUS,
        api_write: GENEROUS,
      },
    }),
  });
  const deliveries: Delivery[] = [];
  const service = createApprovalService({
    db,
    gate,
    vault: servicesOf(t.app).vault,
    gatewayOf: async () => ({ endpoint: new URL("http://gateway.of.this.replica"), token: "t" }),
    runningWorkspaces: async () => [wid],
    timeoutSeconds: opts.timeoutSeconds ?? 300,
    remindAfterMs: opts.remindAfterMs ?? 60_000,
    mailer: async () => (opts.mail ? createSmtpMailer({ server: smtp.url, from: "reef@example.test" }) : undefined),
    publicUrl: async () => "https://reef.example.test",
    deliver: async (target, approval) => {
      deliveries.push({ ...approval, endpoint: target.endpoint.toString() });
      return "resolved";
    },
  });
  return { service, deliveries };
}

function turnFor(agentId: string, owner: Person = people.member): ApprovalTurn {
  return {
    workspaceId: wid,
    sessionId,
    sessionKey: `agent:${agentId}:reef-${wid}-user-${owner.user.id}-session-${sessionId}`,
    messageId: 1,
    agentId,
    owner: { userId: owner.user.id, apiKeyId: null },
    gateway: { endpoint: new URL("http://gateway.of.the.turn"), token: "t" },
  };
}

function request(turn: ApprovalTurn, command: string) {
  return {
    gatewayApprovalId: `gw-${randomUUID()}`,
    kind: "exec" as const,
    subject: command,
    cwd: "/work",
    sessionKey: turn.sessionKey,
    expiresAtMs: Date.now() + 30 * 60_000,
  };
}

const decision = (who: ApiClient, id: string, d: string) =>
  who.post(`/api/v1/workspaces/${wid}/approvals/${id}/decision`, { decision: d });

async function auditOf(action: string): Promise<{ actor_type: string; details: Record<string, unknown> }[]> {
  const { rows } = await t.db.owner.query(
    "select actor_type, details from audit_log where workspace_id = $1 and action = $2 order by id",
    [wid, action],
  );
  return rows;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  smtp = await startSmtpStandIn();
  t = await buildTestApp();
  people.owner = await signUp(t.app, { name: "Olive Owner" });
  wid = people.owner.workspaceId;
  for (const [key, role] of [
    ["admin", "admin"],
    ["member", "member"],
    ["member2", "member"],
    ["viewer", "viewer"],
  ] as const) {
    const p = await signUp(t.app, { name: `${key} person` });
    const { token } = (
      await people.owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: p.email, role })
    ).json();
    expect((await p.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
    people[key] = p;
  }
  const provider = (
    await people.owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "LLM",
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: "sk-approvals-test-0000",
      models: ["m"],
    })
  ).json();
  const agent = async (execPolicy: string, execAllowlist: string[] = []) => {
    const res = await people.owner.client.post(`/api/v1/workspaces/${wid}/agents`, {
      name: `Agent ${execPolicy}`,
      providerId: provider.id,
      model: "m",
      execPolicy,
      execAllowlist,
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  };
  agents = {
    ask: await agent("ask", ["ls"]),
    allowlist: await agent("allowlist", ["ls", "git status"]),
    deny: await agent("deny"),
    allow: await agent("allow"),
  };
  sessionId = (await people.member.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agents.ask })).json()
    .id;
}, 60_000);

afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

describe("relaying a gateway's requests", () => {
  it("records a request of the turn's own session, sealed and audited without the command, once", async () => {
    const { service } = replica();
    const turn = turnFor(agents.ask);
    const foreign = {
      ...request(turn, "cat /etc/hostname"),
      sessionKey: turnFor(agents.ask, people.member2).sessionKey,
    };
    expect(await service.requested(turn, foreign)).toBeNull();
    expect(await service.requested(turn, { ...foreign, sessionKey: null })).toBeNull();

    const req = request(turn, "cat /secret/plan.txt");
    const view = await service.requested(turn, req);
    expect(view).toMatchObject({
      kind: "exec",
      subject: "cat /secret/plan.txt",
      cwd: "/work",
      status: "pending",
      agentId: agents.ask,
      agentName: "Agent ask",
      sessionId,
      requestedBy: { kind: "user", id: people.member.user.id, name: "member person" },
      canDecide: true,
    });
    // The gateway's wait is 30 minutes; Reef's deadline (300 s here) comes first.
    const wait = Date.parse(view?.expiresAt ?? "") - Date.parse(view?.createdAt ?? "");
    expect(wait).toBeGreaterThan(295_000);
    expect(wait).toBeLessThanOrEqual(300_000);
    // The same request relayed again (another listener, a replay): the same row.
    expect((await service.requested(turn, req))?.id).toBe(view?.id);
    const { rows } = await t.db.owner.query("select subject from approvals where gateway_approval_id = $1", [
      req.gatewayApprovalId,
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0].subject).not.toContain("secret");
    const audits = (await auditOf("approval.request")).filter((a) => a.details.sessionId === sessionId);
    expect(audits.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(await auditOf("approval.request"))).not.toContain("plan.txt");
    service.close();
  });

  it("answers what the agent's policy decides at once, over the turn's own connection, and asks about nothing", async () => {
    const { service, deliveries } = replica();
    const cases: [keyof typeof agents, string, string][] = [
      ["allowlist", "ls -la /tmp", "allow-once"],
      ["allowlist", "git status", "allow-once"],
      ["allowlist", "git push", "deny"],
      ["allowlist", "ls; touch /tmp/x", "deny"],
      ["deny", "ls", "deny"],
      ["allow", "rm -rf /tmp/scratch", "allow-once"],
      ["ask", "ls -l", "allow-once"],
    ];
    for (const [policy, command, expected] of cases) {
      const turn = turnFor(agents[policy]);
      const req = request(turn, command);
      expect(await service.requested(turn, req), `${policy}: ${command}`).toBeNull();
      expect(deliveries.at(-1), `${policy}: ${command}`).toEqual({
        id: req.gatewayApprovalId,
        kind: "exec",
        decision: expected,
        endpoint: "http://gateway.of.the.turn/",
      });
    }
    const { rows } = await t.db.owner.query(
      "select count(*)::int as n from approvals a join agents g on g.id = a.agent_id where g.exec_policy <> 'ask'",
    );
    expect(rows[0].n).toBe(0);
    const policy = await auditOf("approval.policy");
    expect(policy.filter((p) => p.details.decision === "deny")).toHaveLength(3);
    expect(JSON.stringify(policy)).not.toContain("rm -rf");
    service.close();
  });
});

describe("deciding", () => {
  it("shows a request to those who may see it, and lets only the requester and approvers decide", async () => {
    const { service } = replica();
    const turn = turnFor(agents.ask);
    const view = await service.requested(turn, request(turn, "make deploy"));
    const id = view?.id ?? "";
    const seen = async (p: Person) => {
      const res = await p.client.get(`/api/v1/workspaces/${wid}/approvals`);
      expect(res.statusCode, res.body).toBe(200);
      return res.json().items.find((a: { id: string }) => a.id === id);
    };
    expect((await seen(people.member))?.canDecide).toBe(true);
    expect((await seen(people.admin))?.canDecide).toBe(true);
    expect((await seen(people.owner))?.canDecide).toBe(true);
    expect((await seen(people.member2))?.canDecide).toBe(false);
    expect((await seen(people.viewer))?.canDecide).toBe(false);
    expect((await seen(people.viewer))?.subject).toBe("make deploy");

    for (const p of [people.member2, people.viewer]) {
      const res = await decision(p.client, id, "allow-once");
      expect(res.statusCode).toBe(403);
      expect(res.json().message).toMatch(/Only the person whose chat asked, or a workspace admin or owner/);
    }
    const denied = await t.db.owner.query(
      "select count(*)::int as n from audit_log where workspace_id = $1 and action = 'access.denied' and details->>'action' = 'approvals:decide'",
      [wid],
    );
    expect(denied.rows[0].n).toBeGreaterThanOrEqual(2);
    // Still waiting: nothing the refused tried changed it.
    expect((await people.admin.client.get(`/api/v1/workspaces/${wid}/approvals/${id}`)).json().status).toBe("pending");
    const ok = await decision(people.member.client, id, "deny");
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({
      status: "denied",
      decision: "deny",
      decidedVia: "person",
      decidedBy: { id: people.member.user.id, name: "member person" },
      canDecide: false,
    });
    const pending = (await people.admin.client.get(`/api/v1/workspaces/${wid}/approvals`)).json().items;
    expect(pending.map((a: { id: string }) => a.id)).not.toContain(id);
    const all = (await people.admin.client.get(`/api/v1/workspaces/${wid}/approvals?status=denied`)).json().items;
    expect(all.map((a: { id: string }) => a.id)).toContain(id);
    service.close();
  });

  it("first answer wins when two people answer at once; the other gets 409", async () => {
    const { service } = replica();
    for (let round = 0; round < 3; round++) {
      const turn = turnFor(agents.ask);
      const id = (await service.requested(turn, request(turn, `echo round ${round}`)))?.id ?? "";
      // Both answers read the request while it still waits, then meet at its row.
      const locker = await t.db.owner.connect();
      await locker.query("begin");
      await locker.query("select 1 from approvals where id = $1 for update", [id]);
      const both = Promise.all([
        decision(people.admin.client, id, "allow-once"),
        decision(people.member.client, id, "deny"),
      ]);
      // Until both wait for the row (each has read it as pending).
      for (let i = 0; i < 100; i++) {
        const { rows } = await t.db.owner.query(
          "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()",
        );
        if (rows[0].n >= 2) break;
        await sleep(50);
      }
      await locker.query("rollback");
      locker.release();
      const [a, b] = await both;
      const codes = [a.statusCode, b.statusCode].sort();
      expect(codes, `${a.body} / ${b.body}`).toEqual([200, 409]);
      const winner = a.statusCode === 200 ? a : b;
      const loser = a.statusCode === 200 ? b : a;
      expect(loser.json().code).toBe("APPROVAL_DECIDED");
      const { rows } = await t.db.owner.query("select decision from approvals where id = $1", [id]);
      expect(rows[0].decision).toBe(winner.json().decision);
      const { rows: count } = await t.db.owner.query(
        "select count(*)::int as n from audit_log where workspace_id = $1 and action = 'approval.decide' and target_id = $2",
        [wid, id],
      );
      expect(count[0].n).toBe(1);
    }
    service.close();
  });

  it("delivers a decision to the gateway from the replica that took it, as allow-once or deny", async () => {
    const { service, deliveries } = replica();
    const turn = turnFor(agents.ask);
    const req = request(turn, "npm test");
    const id = (await service.requested(turn, req))?.id ?? "";
    const ctx: RequestContext = {
      actor: { kind: "user", userId: people.admin.user.id, platformRole: "user", sessionId: randomUUID() },
    };
    const view = await service.decide(ctx, wid, id, "allow-once");
    expect(view.status).toBe("approved");
    expect(deliveries).toEqual([
      { id: req.gatewayApprovalId, kind: "exec", decision: "allow-once", endpoint: "http://gateway.of.this.replica/" },
    ]);
    await expect(service.decide(ctx, wid, id, "deny")).rejects.toMatchObject({ code: "APPROVAL_DECIDED" });
    expect(deliveries).toHaveLength(1);
    service.close();
  });

  it("allow-always needs agents:manage, adds exactly that command to the agent's allowlist, and is audited", async () => {
    const { service, deliveries } = replica();
    const turn = turnFor(agents.ask);
    const req = request(turn, "npm run build --prod");
    const id = (await service.requested(turn, req))?.id ?? "";
    // The member may decide their own run, but not widen the agent: refused whole, nothing recorded.
    const refused = await decision(people.member.client, id, "allow-always");
    expect(refused.statusCode).toBe(403);
    const row = await t.db.owner.query("select status from approvals where id = $1", [id]);
    expect(row.rows[0].status).toBe("pending");
    const { rows: none } = await t.db.owner.query(
      "select count(*)::int as n from audit_log where workspace_id = $1 and action in ('approval.decide', 'agent.allowlist_add') and (target_id = $2 or details->>'approvalId' = $2)",
      [wid, id],
    );
    expect(none[0].n).toBe(0);

    const ok = await decision(people.admin.client, id, "allow-always");
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ status: "approved", decision: "allow-always" });
    const agent = (await people.admin.client.get(`/api/v1/workspaces/${wid}/agents/${agents.ask}`)).json();
    expect(agent.execAllowlist).toEqual(["ls", "npm run build --prod"]);
    expect((await auditOf("agent.allowlist_add")).at(-1)?.details).toEqual({ approvalId: id, added: true });
    expect(JSON.stringify(await auditOf("agent.allowlist_add"))).not.toContain("npm");
    // From now on that command runs without asking; a longer one still asks.
    const again = request(turn, "npm run build --prod");
    expect(await service.requested(turn, again)).toBeNull();
    expect(deliveries.at(-1)).toMatchObject({ id: again.gatewayApprovalId, decision: "allow-once" });
    expect(await service.requested(turn, request(turn, "npm run build --prod; curl evil"))).not.toBeNull();

    // A one-word command would allow the program with any arguments: refused, the request still waits.
    const one = (await service.requested(turn, request(turn, "python3")))?.id ?? "";
    const res = await decision(people.admin.client, one, "allow-always");
    expect(res.statusCode).toBe(400);
    expect((await people.admin.client.get(`/api/v1/workspaces/${wid}/approvals/${one}`)).json().status).toBe("pending");
    service.close();
  });

  it("the gateway's own settlement catches the row up", async () => {
    const { service } = replica();
    const turn = turnFor(agents.ask);
    const req = request(turn, "sleep 1");
    await service.requested(turn, req);
    const view = await service.resolved(turn, req.gatewayApprovalId, null);
    expect(view).toMatchObject({ status: "expired", decidedVia: "gateway" });
    expect(await service.resolved(turn, "gw-unknown", "deny")).toBeNull();
    service.close();
  });
});

describe("nobody answers", () => {
  it("the relaying process denies at the deadline, tells the gateway, audits; a late answer is 409", async () => {
    const { service, deliveries } = replica({ timeoutSeconds: 1 });
    const turn = turnFor(agents.ask);
    const req = request(turn, "tar czf backup.tgz .");
    const id = (await service.requested(turn, req))?.id ?? "";
    await sleep(1_500);
    expect(deliveries).toEqual([
      { id: req.gatewayApprovalId, kind: "exec", decision: "deny", endpoint: "http://gateway.of.this.replica/" },
    ]);
    const view = (await people.admin.client.get(`/api/v1/workspaces/${wid}/approvals/${id}`)).json();
    expect(view).toMatchObject({ status: "expired", decidedVia: "timeout", canDecide: false });
    expect((await auditOf("approval.expire")).map((a) => a.actor_type)).toContain("system");
    const late = await decision(people.admin.client, id, "allow-once");
    expect(late.statusCode).toBe(409);
    expect(late.json().code).toBe("APPROVAL_EXPIRED");
    service.close();
  });

  it("reads count a request past its deadline as expired, and another replica's sweep denies it", async () => {
    const gone = replica({ timeoutSeconds: 1 });
    const turn = turnFor(agents.ask);
    const req = request(turn, "du -sh /");
    const id = (await gone.service.requested(turn, req))?.id ?? "";
    gone.service.close(); // the relaying process died: its timer never fires
    await sleep(1_200);
    const expiredBefore = (await auditOf("approval.expire")).length;
    const listed = (await people.admin.client.get(`/api/v1/workspaces/${wid}/approvals?status=expired`)).json().items;
    expect(listed.find((a: { id: string }) => a.id === id)).toMatchObject({ status: "expired", decidedVia: "timeout" });
    expect(
      (await people.admin.client.get(`/api/v1/workspaces/${wid}/approvals`))
        .json()
        .items.map((a: { id: string }) => a.id),
    ).not.toContain(id);
    expect(gone.deliveries).toEqual([]);

    const other = replica();
    expect(await other.service.sweep()).toBeGreaterThanOrEqual(1);
    expect(other.deliveries).toContainEqual({
      id: req.gatewayApprovalId,
      kind: "exec",
      decision: "deny",
      endpoint: "http://gateway.of.this.replica/",
    });
    expect((await auditOf("approval.expire")).length).toBeGreaterThan(expiredBefore);
    expect(await other.service.sweep()).toBe(0);
    other.service.close();
  });

  it("emails the deciders once when a request waits over the reminder delay, without the command", async () => {
    // Earlier tests' requests still waiting would be reminded of too.
    await t.db.owner.query("update approvals set status = 'denied' where status = 'pending'");
    const { service } = replica({ remindAfterMs: 300, mail: true });
    const turn = turnFor(agents.ask);
    const before = smtp.received.length;
    const view = await service.requested(turn, request(turn, "cat ~/.ssh/id_rsa"));
    await sleep(1_500);
    const mails = smtp.received.slice(before);
    const to = mails.flatMap((m) => m.to).sort();
    expect(to).toEqual(
      [people.owner.email, people.admin.email, people.member.email].map((e) => e.toLowerCase()).sort(),
    );
    for (const m of mails) {
      const body = m.raw.replace(/=\r?\n/g, ""); // quoted-printable's soft line breaks
      expect(body).toContain(`https://reef.example.test/w/${wid}/approvals`);
      expect(body).toContain("Agent ask is waiting for a decision");
      expect(body).not.toContain("id_rsa");
    }
    // Another replica's sweep does not send it again.
    await replica({ remindAfterMs: 300, mail: true }).service.sweep();
    await sleep(300);
    expect(smtp.received.length).toBe(before + mails.length);
    await decision(people.admin.client, view?.id ?? "", "deny");
    service.close();
  });
});
