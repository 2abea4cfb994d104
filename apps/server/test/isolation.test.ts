/**
 * The isolation suite. It reads the app's own route table, builds two
 * workspaces (A and B) with a person of every role, API keys of every role, a
 * revoked key, a deactivated member and one of every resource, then calls every
 * route with B's ids as each of A's actors, with no credentials, with a revoked
 * key, as a deactivated user and as a platform operator. Any 2xx, any of B's data
 * in a body, or any status other than 401/403/404 fails, naming the route.
 *
 * Routes added later are covered without edits to the attack loop: a route
 * whose path parameter or body this file does not know fails the suite until the
 * fixture learns it (RESOURCES and BODIES below).
 */
import { randomUUID } from "node:crypto";
import { signWebhook } from "@reef/core";
import { type RouteEntry, routeTable, servicesOf } from "@reef/server";
import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type Side = "A" | "B";

interface World {
  /** Everything that identifies B's data; none of it may appear in a response to an attacker. */
  secretsOfB: string[];
  ids: Record<Side, Record<string, string>>;
  actors: { name: string; client: ApiClient; side: Side | null }[];
  operator: ApiClient;
  /** Workspace A's people and keys, for the checks inside one workspace. */
  a: Awaited<ReturnType<typeof buildSide>>;
}

let t: TestApp;
let world: World;

/** An example body for every route that takes one, keyed by `METHOD url`. */
const BODIES: Record<string, unknown> = {
  "POST /api/v1/auth/signup": { email: "new@example.test", password: "correct horse battery", name: "N" },
  "POST /api/v1/auth/login": { email: "x@example.test", password: "whatever-password" },
  "POST /api/v1/auth/magic-link": { email: "x@example.test" },
  "POST /api/v1/auth/magic-link/consume": { token: "rml_0000000000000000000000000000000000000000000" },
  "POST /api/v1/auth/password-reset": { email: "x@example.test" },
  "POST /api/v1/auth/password-reset/complete": {
    token: "rpr_0000000000000000000000000000000000000000000",
    password: "a brand new passphrase",
  },
  "POST /api/v1/auth/email-change/confirm": { token: "rec_0000000000000000000000000000000000000000000" },
  "POST /api/v1/auth/two-factor": { challenge: "r2f_0000000000000000000000000000000000000000000", code: "123456" },
  "POST /api/v1/auth/two-factor/enrol": { challenge: "r2f_0000000000000000000000000000000000000000000" },
  "POST /api/v1/auth/two-factor/enrol/confirm": {
    challenge: "r2f_0000000000000000000000000000000000000000000",
    code: "123456",
  },
  "POST /api/v1/auth/sso/link": { token: "rsl_0000000000000000000000000000000000000000000", password: "whatever" },
  "POST /api/v1/auth/sso/:slug/acs": { SAMLResponse: "PHNhbWxwOlJlc3BvbnNlLz4=", RelayState: "rss_0000000000" },
  "PATCH /api/v1/me": { name: "Hijacked" },
  "POST /api/v1/me/password": { currentPassword: "whatever-password", newPassword: "a brand new passphrase" },
  "POST /api/v1/me/email": { newEmail: "attacker@example.test", password: "whatever-password" },
  "POST /api/v1/me/sessions/revoke-all": { includeCurrent: false },
  "POST /api/v1/me/two-factor/setup": { password: "whatever-password" },
  "POST /api/v1/me/two-factor/confirm": { code: "123456" },
  "POST /api/v1/me/two-factor/disable": { password: "whatever-password" },
  "POST /api/v1/me/two-factor/recovery-codes": { password: "whatever-password" },
  "POST /api/v1/admin/identity-providers": {
    kind: "oidc",
    slug: "stolen",
    name: "Stolen",
    issuer: "https://attacker.example",
    clientId: "x",
    defaultWorkspaceId: "00000000-0000-4000-8000-000000000000",
  },
  "PATCH /api/v1/admin/identity-providers/:providerId": { kind: "oidc", name: "Hijacked" },
  "POST /api/v1/workspaces": { name: "New" },
  "PATCH /api/v1/workspaces/:wid": { name: "Hijacked" },
  "DELETE /api/v1/workspaces/:wid": { confirmName: "Workspace B" },
  "PATCH /api/v1/workspaces/:wid/members/:userId": { role: "viewer" },
  "POST /api/v1/workspaces/:wid/invites": { email: "attacker@example.test", role: "viewer" },
  "POST /api/v1/workspaces/:wid/api-keys": { name: "stolen", role: "viewer" },
  "PATCH /api/v1/admin/users/:userId": { deactivated: true },
  "PATCH /api/v1/admin/workspaces/:wid": { monthlyTokenBudget: 0 },
  "PATCH /api/v1/admin/settings": { publicUrl: "https://attacker.example" },
  "POST /api/v1/admin/settings/test-email": { to: "attacker@example.test" },
  "PATCH /api/v1/admin/workspaces/:wid/egress": { allowHosts: ["attacker.example"] },
  "POST /api/v1/workspaces/:wid/providers": {
    name: "stolen",
    kind: "openai-compatible",
    baseUrl: "http://127.0.0.1:9/v1",
    apiKey: "sk-attacker-0000",
    models: ["m"],
  },
  "PATCH /api/v1/workspaces/:wid/providers/:providerId": { apiKey: "sk-attacker-0000" },
  "POST /api/v1/workspaces/:wid/agents": {
    name: "stolen",
    providerId: "00000000-0000-4000-8000-000000000000",
    model: "m",
  },
  "PATCH /api/v1/workspaces/:wid/agents/:agentId": { instructions: "Reveal everything." },
  "POST /api/v1/workspaces/:wid/sessions": { agentId: "00000000-0000-4000-8000-000000000000" },
  "POST /api/v1/workspaces/:wid/sessions/:chatSessionId/messages": { text: "what did B say?" },
  "PATCH /api/v1/workspaces/:wid/sessions/:chatSessionId": { title: "stolen", pinned: true },
  "POST /api/v1/workspaces/:wid/approvals/:approvalId/decision": { decision: "allow-once" },
  "POST /api/v1/workspaces/:wid/schedules": {
    name: "stolen",
    agentId: "00000000-0000-4000-8000-000000000000",
    kind: "webhook",
    prompt: "Reveal everything.",
  },
  "PATCH /api/v1/workspaces/:wid/schedules/:scheduleId": { enabled: false, prompt: "Reveal everything." },
  "POST /api/v1/workspaces/:wid/openai/v1/chat/completions": {
    model: "00000000-0000-4000-8000-000000000000",
    messages: [{ role: "user", content: "what did B say?" }],
  },
  "POST /api/v1/workspaces/:wid/connectors": {
    name: "stolen",
    kind: "mcp",
    url: "http://127.0.0.1:9/mcp",
    bearerToken: "attacker-token-0000",
  },
  "POST /api/v1/workspaces/:wid/connectors/test": { name: "probe", kind: "mcp", url: "http://127.0.0.1:9/mcp" },
  "PATCH /api/v1/workspaces/:wid/connectors/:connectorId": { url: "http://127.0.0.1:9/steal", bearerToken: "x-0000" },
  "PUT /api/v1/workspaces/:wid/connectors/:connectorId/agents": {
    agents: [{ agentId: "00000000-0000-4000-8000-000000000000", tools: null }],
  },
};

/** A valid query for routes that require one (validation answers before authorisation, as for bodies). */
const QUERIES: Record<string, string> = {
  "GET /api/v1/workspaces/:wid/schedules/preview": "?cron=0+9+*+*+*&timezone=UTC",
};

/** How to find workspace X's instance of every path parameter. */
const RESOURCES = [
  "wid",
  "userId",
  "inviteId",
  "keyId",
  "sessionId",
  "token",
  "providerId",
  "personalProviderId",
  "agentId",
  "chatSessionId",
  "approvalId",
  "scheduleId",
  "runId",
  "connectorId",
  "slug",
] as const;

async function buildSide(side: Side) {
  const owner = await signUp(t.app, { email: `owner-${side.toLowerCase()}@example.test`, name: `Owner ${side}` });
  const wid = owner.workspaceId;
  await owner.client.patch(`/api/v1/workspaces/${wid}`, { name: `Workspace ${side}` });
  const people: Record<string, Awaited<ReturnType<typeof signUp>>> = { owner };
  for (const role of ["admin", "member", "viewer"]) {
    const p = await signUp(t.app, { email: `${role}-${side.toLowerCase()}@example.test`, name: `${role} ${side}` });
    const { token } = (await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: p.email, role })).json();
    expect((await p.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
    people[role] = p;
  }
  const keys: Record<string, { id: string; key: string }> = {};
  for (const role of ["owner", "admin", "member", "viewer", "revoked"]) {
    const res = await owner.client.post(`/api/v1/workspaces/${wid}/api-keys`, {
      name: `${role} key ${side}`,
      role: role === "revoked" ? "admin" : role,
    });
    const { key, apiKey } = res.json();
    keys[role] = { id: apiKey.id, key };
  }
  await owner.client.delete(`/api/v1/workspaces/${wid}/api-keys/${keys.revoked?.id}`);
  const pending = (
    await owner.client.post(`/api/v1/workspaces/${wid}/invites`, {
      email: `pending-${side.toLowerCase()}@example.test`,
      role: "member",
    })
  ).json();
  const memberSession = (await people.member?.client.get("/api/v1/me/sessions"))?.json().items[0].id;
  // A shared provider with an agent, a member's personal provider, and the member's chat session.
  const provider = (
    await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: `LLM ${side}`,
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: `sk-secret-of-${side}-0123456789`,
      models: ["m"],
    })
  ).json();
  const personal = (
    await people.member?.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: `Mine ${side}`,
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: `sk-personal-of-${side}-0123456789`,
      models: ["m"],
      personal: true,
    })
  )?.json();
  const agent = (
    await owner.client.post(`/api/v1/workspaces/${wid}/agents`, {
      name: `Agent ${side}`,
      providerId: provider.id,
      model: "m",
      instructions: `Secret instructions of ${side}`,
    })
  ).json();
  // Every workspace that chats has several agents (a gateway with two or more has no default agent) and several members chatting.
  const second = (
    await owner.client.post(`/api/v1/workspaces/${wid}/agents`, {
      name: `Second agent ${side}`,
      providerId: provider.id,
      model: "m",
      instructions: `Second instructions of ${side}`,
    })
  ).json();
  const chat = (await people.member?.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id }))?.json();
  const adminChat = (
    await people.admin?.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: second.id })
  )?.json();
  const ownerChat = (await owner.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id })).json();
  for (const s of [chat, adminChat, ownerChat]) expect(s?.id, JSON.stringify(s)).toBeTruthy();
  // A command the member's agent asked to run, and one from the admin's chat, both waiting for a decision.
  const ask = async (
    session: { id: string },
    agentId: string,
    who: Awaited<ReturnType<typeof signUp>>,
    cmd: string,
  ) => {
    const sessionKey = `agent:${agentId}:reef-${wid}-user-${who.user.id}-session-${session.id}`;
    const view = await servicesOf(t.app).approvals.requested(
      {
        workspaceId: wid,
        sessionId: session.id,
        sessionKey,
        messageId: 1,
        agentId,
        owner: { userId: who.user.id, apiKeyId: null },
        gateway: { endpoint: new URL("http://127.0.0.1:9"), token: "unused" },
      },
      { gatewayApprovalId: `gw-${side}-${cmd}`, kind: "exec", subject: cmd, cwd: null, sessionKey, expiresAtMs: null },
    );
    expect(view?.status).toBe("pending");
    return view?.id ?? "";
  };
  const approval = await ask(chat, agent.id, people.member as never, `run secret command of ${side}`);
  const adminApproval = await ask(adminChat, second.id, people.admin as never, `admin command of ${side}`);
  // The member's webhook trigger (its secret shown once, here) and a run of it.
  const schedule = (
    await people.member?.client.post(`/api/v1/workspaces/${wid}/schedules`, {
      name: `Schedule ${side}`,
      agentId: agent.id,
      kind: "webhook",
      prompt: `Secret schedule prompt of ${side}: {{body}}`,
    })
  )?.json();
  expect(schedule?.secret, JSON.stringify(schedule)).toMatch(/^whsec_/);
  const run = (await people.member?.client.post(`/api/v1/workspaces/${wid}/schedules/${schedule.id}/run`))?.json();
  expect(run?.status, JSON.stringify(run)).toBe("queued");

  // An MCP connector with a sealed token, enabled for the agent.
  const connector = (
    await owner.client.post(`/api/v1/workspaces/${wid}/connectors`, {
      name: `Connector ${side}`,
      kind: "mcp",
      url: "http://127.0.0.1:9/mcp",
      bearerToken: `mcp-secret-of-${side}-0123456789`,
    })
  ).json();
  expect(connector.id, JSON.stringify(connector)).toBeTruthy();
  const optIn = await owner.client.request("PUT", `/api/v1/workspaces/${wid}/connectors/${connector.id}/agents`, {
    agents: [{ agentId: agent.id, tools: null }],
  });
  expect(optIn.statusCode, optIn.body).toBe(200);

  const ids: Record<string, string> = {
    wid,
    userId: people.member?.user.id ?? "",
    inviteId: pending.invite.id,
    keyId: keys.member?.id ?? "",
    sessionId: memberSession,
    token: pending.token,
    providerId: provider.id,
    personalProviderId: personal.id,
    agentId: agent.id,
    chatSessionId: chat.id,
    approvalId: approval,
    scheduleId: schedule.id,
    runId: run.id,
    connectorId: connector.id,
    // Identity providers are the platform's, not a workspace's: both sides name one that does not exist.
    slug: "no-such-provider",
    // Not path parameters: more of X's data that must never reach the other side.
    secondAgentId: second.id,
    adminChatSessionId: adminChat.id,
    ownerChatSessionId: ownerChat.id,
    adminApprovalId: adminApproval,
    scheduleSecret: schedule.secret,
  };
  return { owner, people, keys, ids };
}

beforeAll(async () => {
  // Runs stay queued (no worker would reach the fixture's unreachable provider anyway).
  t = await buildTestApp({ config: { schedulerEnabled: false, connectorAllowedHosts: ["127.0.0.1"] } });
  const operatorUser = await signUp(t.app, { email: "operator@example.test", name: "Operator" });
  const a = await buildSide("A");
  const b = await buildSide("B");
  // A deactivated person who belongs to B.
  const gone = await signUp(t.app, { email: "gone-b@example.test", name: "Gone B" });
  const { token } = (
    await b.owner.client.post(`/api/v1/workspaces/${b.ids.wid}/invites`, { email: gone.email, role: "admin" })
  ).json();
  await gone.client.post(`/api/v1/invites/${token}/accept`);
  await operatorUser.client.patch(`/api/v1/admin/users/${gone.user.id}`, { deactivated: true });

  const actors: World["actors"] = [];
  for (const [role, p] of Object.entries(a.people))
    actors.push({ name: `A ${role} (session)`, client: p.client, side: "A" });
  for (const role of ["owner", "admin", "member", "viewer"]) {
    actors.push({
      name: `A ${role} key`,
      client: new ApiClient(t.app, { bearer: a.keys[role]?.key ?? "" }),
      side: "A",
    });
  }
  actors.push({ name: "no credentials", client: new ApiClient(t.app), side: null });
  actors.push({
    name: "B revoked key",
    client: new ApiClient(t.app, { bearer: b.keys.revoked?.key ?? "" }),
    side: null,
  });
  actors.push({ name: "B deactivated admin", client: gone.client, side: null });
  actors.push({ name: "platform operator", client: operatorUser.client, side: null });

  const secretsOfB = [
    ...Object.values(b.ids),
    ...Object.values(b.keys).flatMap((k) => [k.id, k.key]),
    ...Object.values(b.people).flatMap((p) => [p.user.id, p.email]),
    "Workspace B",
    "pending-b@example.test",
    "sk-secret-of-B",
    "sk-personal-of-B",
    "Secret instructions of B",
    "Second instructions of B",
    "Second agent B",
    "secret command of B",
    "admin command of B",
    "LLM B",
    "Mine B",
    "Schedule B",
    "Secret schedule prompt of B",
    "Connector B",
    "mcp-secret-of-B",
  ];
  world = { secretsOfB, ids: { A: a.ids, B: b.ids }, actors, operator: operatorUser.client, a };
});
afterAll(() => t.close());

function params(url: string): string[] {
  return [...url.matchAll(/:(\w+)/g)].map((m) => m[1] ?? "");
}

function fill(url: string, pick: (param: string) => string): string {
  return url.replace(/:(\w+)/g, (_, p: string) => encodeURIComponent(pick(p)));
}

function apiRoutes(): RouteEntry[] {
  return routeTable(t.app).filter((r) => r.url.startsWith("/api/v1/") && r.method !== "HEAD");
}

describe("tenant isolation", () => {
  it("knows every path parameter and body of every API route", () => {
    const unknownParams = apiRoutes().flatMap((r) =>
      params(r.url)
        .filter((p) => !(RESOURCES as readonly string[]).includes(p))
        .map((p) => `${r.method} ${r.url} (:${p})`),
    );
    expect(unknownParams, "add these parameters to RESOURCES and the fixture").toEqual([]);
    const unknownBodies = apiRoutes()
      .filter((r) => r.hasBody && !(`${r.method} ${r.url}` in BODIES))
      .map((r) => `${r.method} ${r.url}`);
    expect(unknownBodies, "add example bodies to BODIES").toEqual([]);
  });

  it("no actor reaches workspace B's resources through any route", async () => {
    const failures: string[] = [];
    let cases = 0;
    const routes = apiRoutes().filter((r) => params(r.url).length > 0);
    expect(routes.length).toBeGreaterThanOrEqual(12);
    for (const route of routes) {
      const names = params(route.url);
      // B's ids throughout, and (for nested routes) A's workspace with B's sub-resources.
      const query = QUERIES[`${route.method} ${route.url}`] ?? "";
      const variants = [fill(route.url, (p) => world.ids.B[p] ?? "") + query];
      if (names.length > 1 && names[0] === "wid") {
        variants.push(fill(route.url, (p) => (p === "wid" ? (world.ids.A.wid ?? "") : (world.ids.B[p] ?? ""))) + query);
      }
      for (const url of variants) {
        for (const actor of world.actors) {
          if (actor.name === "platform operator" && route.url.startsWith("/api/v1/admin/")) continue;
          // The invite link is its own credential: whoever holds B's token may read what the link is for
          // (team.test.ts checks that preview shows only workspace, inviter, role and email).
          if (route.method === "GET" && route.url === "/api/v1/invites/:token") continue;
          const res = await actor.client.request(route.method as "GET", url, BODIES[`${route.method} ${route.url}`]);
          cases++;
          const label = `${route.method} ${url} as ${actor.name} → ${res.statusCode}`;
          if (![401, 403, 404].includes(res.statusCode)) failures.push(`${label}: ${res.body.slice(0, 200)}`);
          const leaked = world.secretsOfB.filter(
            (s) => s && res.body.includes(s) && !url.includes(encodeURIComponent(s)),
          );
          if (leaked.length) failures.push(`${label}: body contains B's ${leaked.join(", ")}`);
          // Provider keys never come back to anyone, not even their own workspace.
          if (/sk-(secret|personal)-of-/.test(res.body)) failures.push(`${label}: body contains a provider key`);
          if (/mcp-secret-of-/.test(res.body)) failures.push(`${label}: body contains a connector token`);
        }
      }
    }
    console.info(`isolation suite: ${cases} (route, actor, attack) cases over ${routes.length} routes with ids`);
    expect(failures).toEqual([]);
  });

  it("lists never carry B's data to A's actors or outsiders", async () => {
    const failures: string[] = [];
    let cases = 0;
    const lists = apiRoutes().filter(
      (r) => r.method === "GET" && params(r.url).length === 0 && !r.url.startsWith("/api/v1/admin/"),
    );
    for (const route of lists) {
      for (const actor of world.actors) {
        if (actor.side === "B") continue;
        const res = await actor.client.get(route.url);
        cases++;
        const leaked = world.secretsOfB.filter((s) => s && res.body.includes(s));
        if (leaked.length) failures.push(`GET ${route.url} as ${actor.name}: contains ${leaked.join(", ")}`);
        if (res.statusCode >= 500) failures.push(`GET ${route.url} as ${actor.name}: ${res.statusCode}`);
      }
    }
    console.info(`isolation suite: ${cases} list cases over ${lists.length} routes`);
    expect(failures).toEqual([]);
  });

  it("inside a workspace, who may see an approval but not decide it gets 403, and it still waits", async () => {
    const { a } = world;
    const url = `/api/v1/workspaces/${a.ids.wid}/approvals/${a.ids.adminApprovalId}`;
    const refused = [
      a.people.member?.client,
      a.people.viewer?.client,
      new ApiClient(t.app, { bearer: a.keys.member?.key ?? "" }),
      new ApiClient(t.app, { bearer: a.keys.viewer?.key ?? "" }),
    ];
    for (const client of refused) {
      expect((await client?.get(url))?.statusCode).toBe(200);
      const res = await client?.post(`${url}/decision`, { decision: "allow-once" });
      expect(res?.statusCode, res?.body).toBe(403);
    }
    expect((await a.people.owner?.client.get(url))?.json().status).toBe("pending");
  });

  it("B's triggers refuse calls signed with A's secret, and A's ids under B's workspace are unknown", async () => {
    const { A, B } = world.ids;
    const body = "{}";
    const signed = (secret: string) => {
      const ts = Math.floor(Date.now() / 1000);
      const delivery = randomUUID();
      return {
        "content-type": "application/json",
        "x-reef-timestamp": String(ts),
        "x-reef-delivery": delivery,
        "x-reef-signature": signWebhook(secret, ts, delivery, body),
      };
    };
    const inject = (url: string, secret: string) =>
      t.app.inject({ method: "POST", url, headers: signed(secret), payload: body });
    const aSecret = A.scheduleSecret ?? "";
    const crossSigned = await inject(`/api/v1/hooks/${B.wid}/${B.scheduleId}`, aSecret);
    expect(crossSigned.statusCode, crossSigned.body).toBe(401);
    expect(crossSigned.json().code).toBe("SIGNATURE_INVALID");
    for (const url of [`/api/v1/hooks/${B.wid}/${A.scheduleId}`, `/api/v1/hooks/${A.wid}/${B.scheduleId}`]) {
      const res = await inject(url, aSecret);
      expect(res.statusCode, `${url}: ${res.body}`).toBe(404);
    }
    const runs = await t.db.owner.query("select count(*)::int as n from schedule_runs where schedule_id = $1", [
      B.scheduleId,
    ]);
    expect(runs.rows[0].n).toBe(1);
  });

  it("B's schedule, its runs and its secret are as B left them after every attack", async () => {
    const { B } = world.ids;
    const row = await t.db.owner.query(
      "select name, enabled, prompt, secret_sealed, (select count(*)::int from schedule_runs r where r.schedule_id = s.id) as runs from schedules s where id = $1",
      [B.scheduleId],
    );
    expect(row.rows[0]).toMatchObject({ name: "Schedule B", enabled: true, runs: 1 });
    expect(row.rows[0].prompt).toBe("Secret schedule prompt of B: {{body}}");
    const audit = await t.db.owner.query(
      "select action from audit_log where workspace_id = $1 and action like 'schedule.%' order by id",
      [B.wid],
    );
    expect(audit.rows.map((r) => r.action)).toEqual(["schedule.create", "schedule.run_now"]);
    // The workspace's only schedules are B's own (the stolen create in the attack loop made none).
    const count = await t.db.owner.query("select count(*)::int as n from schedules where workspace_id = $1", [B.wid]);
    expect(count.rows[0].n).toBe(1);
  });

  it("A's keys cannot use B's agents as models on A's own OpenAI-compatible URL", async () => {
    const { A, B } = world.ids;
    for (const role of ["owner", "member"]) {
      const key = new ApiClient(t.app, { bearer: world.a.keys[role]?.key ?? "" });
      const models = await key.get(`/api/v1/workspaces/${A.wid}/openai/v1/models`);
      expect(models.statusCode, models.body).toBe(200);
      expect(
        models
          .json()
          .data.map((m: { id: string }) => m.id)
          .sort(),
      ).toEqual([A.agentId, A.secondAgentId].sort());
      for (const model of [B.agentId, B.secondAgentId, "Second agent B"]) {
        const res = await key.post(`/api/v1/workspaces/${A.wid}/openai/v1/chat/completions`, {
          model,
          messages: [{ role: "user", content: "what did B say?" }],
        });
        expect(res.statusCode, res.body).toBe(404);
        expect(res.json().error).toMatchObject({ code: "model_not_found", param: "model" });
        expect(res.body).not.toContain("Secret instructions of B");
      }
    }
  });

  it("B's own people still reach B (the attacks changed nothing)", async () => {
    const res = await world.operator.get("/api/v1/admin/workspaces?limit=200");
    const b = res.json().items.find((w: { id: string }) => w.id === world.ids.B.wid);
    expect(b).toMatchObject({ name: "Workspace B", memberCount: 5 });
  });
});
