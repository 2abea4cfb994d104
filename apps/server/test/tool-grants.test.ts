/**
 * Who may grant which tools: the operator lists the tools workspace admins may
 * grant (config or admin page; shipped default web only). Granting beyond the
 * list is refused with a stable code; a grant the operator later disallows
 * stays in the database but is blocked, the agent's page says why, and from the
 * next start its gateway no longer has it (real gateway, LLM stand-in driving
 * OpenClaw's own exec tool).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildApp, servicesOf } from "@reef/server";
import {
  type ApiClient,
  buildTestApp,
  createTestDatabase,
  type LlmStandIn,
  readEvents,
  signUp,
  silentLogger,
  startLlmStandIn,
  type TestApp,
  type TestDatabase,
  testAppConfig,
  toolResultsOf,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const KEY = `sk-test-tool-grants-${Date.now()}`;
const MARKER = "shell-ran-for-tool-grants";
let llm: LlmStandIn;

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: KEY,
    models: ["alpha"],
    toolCalls: (text) =>
      text.includes("run the command") ? [{ name: "exec", arguments: { command: `echo ${MARKER}` } }] : undefined,
  });
});
afterAll(async () => {
  await llm?.close();
});

type Person = Awaited<ReturnType<typeof signUp>>;

/** A workspace admin's shared provider and a plain agent on it. */
async function agentOf(p: Person) {
  const w = p.workspaceId;
  const provider = await p.client.post(`/api/v1/workspaces/${w}/providers`, {
    name: "Stand-in",
    kind: "openai-compatible",
    baseUrl: llm.baseUrl,
    apiKey: KEY,
    models: ["alpha"],
  });
  expect(provider.statusCode, provider.body).toBe(201);
  const agent = await p.client.post(`/api/v1/workspaces/${w}/agents`, {
    name: "Coder",
    providerId: provider.json().id,
    model: "alpha",
    tools: ["web"],
  });
  expect(agent.statusCode, agent.body).toBe(201);
  return { providerId: provider.json().id as string, agentId: agent.json().id as string };
}

/** Someone invited into `p`'s workspace with `role`. */
async function joins(app: FastifyInstance, p: Person, role: "admin" | "member" | "viewer") {
  const other = await signUp(app);
  const { token } = (
    await p.client.post(`/api/v1/workspaces/${p.workspaceId}/invites`, { email: other.email, role })
  ).json();
  expect((await other.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
  return other;
}

function settingsAudit(client: ApiClient) {
  return client
    .get("/api/v1/admin/audit?action=platform.settings_update&limit=50")
    .then((r) => r.json().items as { details: Record<string, unknown> }[]);
}

describe("with Reef's shipped default (web only), on a sandboxed host", () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  let base: string;
  let operator: Person;
  let owner: Person;
  let providerId: string;
  let agentId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    // No REEF_GRANTABLE_TOOLS: the list is the shipped default, and the admin page may change it.
    const config = testAppConfig({ grantableTools: undefined, runtimeIdleTimeoutMinutes: 60 });
    app = await buildApp({ config, database: db.database, logger: silentLogger });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    operator = await signUp(app);
    owner = await signUp(app);
    ({ providerId, agentId } = await agentOf(owner));
  }, 60_000);
  afterAll(async () => {
    await servicesOf(app)?.runtimeManager.stopAll("test over");
    await app?.close();
    await db?.drop();
  }, 120_000);

  /** The owner starts the workspace's gateway (a changed setting restarts it), waiting until it is ready. */
  async function startRuntime() {
    const res = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/runtime/start`);
    expect(res.statusCode, res.body).toBe(200);
  }

  /** Sends a chat message in the owner's workspace over the real port; returns the stand-in requests of that turn. */
  async function turn(p: Person, sid: string, text: string) {
    const before = llm.requests.length;
    const csrf = p.client.cookies.get("reef_csrf");
    const res = await fetch(`${base}/api/v1/workspaces/${owner.workspaceId}/sessions/${sid}/messages`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        cookie: [...p.client.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
        ...(csrf ? { "x-csrf-token": csrf } : {}),
      },
      body: JSON.stringify({ text }),
    });
    expect(res.status).toBe(200);
    const events = await readEvents(res);
    expect(events.at(-1)?.event, JSON.stringify(events.at(-1))).toBe("done");
    const requests = llm.requests.slice(before);
    return {
      offered: requests.map((r) =>
        ((r.body.tools as { function?: { name?: string } }[] | undefined) ?? []).map((t) => t.function?.name ?? ""),
      ),
      results: requests.flatMap((r) => toolResultsOf(r.body.messages)).join("\n"),
    };
  }

  /** The running gateway's process id (a new one after a restart). */
  async function gatewayPid(): Promise<number> {
    const handle = await servicesOf(app).runtimeManager.handle(owner.workspaceId);
    expect(handle, "the gateway runs").toBeDefined();
    return ((handle as { state: unknown }).state as { pid: number }).pid;
  }

  /** An agent's tool policy in the config the driver wrote for the running gateway. */
  async function renderedTools(id = agentId) {
    const handle = await servicesOf(app).runtimeManager.handle(owner.workspaceId);
    expect(handle, "the gateway runs").toBeDefined();
    const { dir } = (handle as { state: unknown }).state as { dir: string };
    const config = JSON.parse(readFileSync(join(dir, "state", "openclaw.json"), "utf8"));
    return config.agents.entries[id].tools as { alsoAllow?: string[]; deny?: string[] };
  }

  it("lets workspace admins grant web only, and says the operator must allow the rest", async () => {
    const view = (await operator.client.get("/api/v1/admin/settings")).json();
    expect(view.grantableTools).toEqual({ value: ["web"], source: "default", sandboxed: true });

    const w = owner.workspaceId;
    const created = await owner.client.post(`/api/v1/workspaces/${w}/agents`, {
      name: "Shell",
      providerId,
      model: "alpha",
      tools: ["web", "shell"],
    });
    expect(created.statusCode, created.body).toBe(403);
    expect(created.json()).toMatchObject({
      code: "TOOL_NOT_GRANTABLE",
      details: { field: "tools", tools: ["shell"], grantable: ["web"] },
    });
    expect(created.json().message).toMatch(/the shell \("shell"\): the operator must allow it/);
    const patched = await owner.client.patch(`/api/v1/workspaces/${w}/agents/${agentId}`, { tools: ["web", "files"] });
    expect(patched.statusCode, patched.body).toBe(403);
    expect(patched.json().code).toBe("TOOL_NOT_GRANTABLE");
    expect(patched.json().message).toMatch(/files/);
    const agent = (await owner.client.get(`/api/v1/workspaces/${w}/agents/${agentId}`)).json();
    expect(agent).toMatchObject({ tools: ["web"], toolsBlocked: [] });

    // What the agent form shows any member: what may be granted, and why not the rest.
    const member = await joins(app, owner, "viewer");
    const tools = await member.client.get(`/api/v1/workspaces/${w}/agent-tools`);
    expect(tools.statusCode, tools.body).toBe(200);
    expect(tools.json()).toEqual({
      grantable: ["web"],
      unavailable: [
        { tool: "files", reason: "The operator does not allow agents to use files (Admin › Settings)." },
        { tool: "shell", reason: "The operator does not allow agents to use the shell (Admin › Settings)." },
      ],
    });
    expect((await operator.client.get(`/api/v1/workspaces/${w}/agent-tools`)).statusCode).toBe(404);
  });

  it("only operators change the list; workspace owners and members get 403", async () => {
    const member = await joins(app, owner, "member");
    for (const p of [owner, member]) {
      const res = await p.client.patch("/api/v1/admin/settings", { grantableTools: ["web", "files", "shell"] });
      expect(res.statusCode, res.body).toBe(403);
    }
    expect((await operator.client.get("/api/v1/admin/settings")).json().grantableTools.value).toEqual(["web"]);
    const refused = await owner.client.patch(`/api/v1/workspaces/${owner.workspaceId}/agents/${agentId}`, {
      tools: ["shell"],
    });
    expect(refused.json().code).toBe("TOOL_NOT_GRANTABLE");
  });

  it("once the operator allows the shell, an admin grants it and the agent runs commands", async () => {
    const widened = await operator.client.patch("/api/v1/admin/settings", {
      grantableTools: ["shell", "web", "shell"],
    });
    expect(widened.statusCode, widened.body).toBe(200);
    expect(widened.json().grantableTools).toEqual({ value: ["shell", "web"], source: "settings", sandboxed: true });
    expect((await owner.client.get(`/api/v1/workspaces/${owner.workspaceId}/agent-tools`)).json()).toMatchObject({
      grantable: ["web", "shell"],
      unavailable: [{ tool: "files" }],
    });
    expect((await settingsAudit(operator.client))[0]?.details).toMatchObject({
      changed: ["grantableTools"],
      grantableTools: { from: null, to: ["shell", "web"] },
    });

    const w = owner.workspaceId;
    const granted = await owner.client.patch(`/api/v1/workspaces/${w}/agents/${agentId}`, {
      tools: ["web", "shell"],
      // What this test checks is the grant, not approvals: every command runs.
      execPolicy: "allow",
    });
    expect(granted.statusCode, granted.body).toBe(200);
    expect(granted.json()).toMatchObject({ tools: ["shell", "web"], toolsBlocked: [], execPolicy: "allow" });

    await startRuntime();
    expect((await renderedTools()).alsoAllow).toContain("group:runtime");
    const session = await owner.client.post(`/api/v1/workspaces/${w}/sessions`, { agentId });
    const { offered, results } = await turn(owner, session.json().id, "please run the command");
    expect(offered[0]).toContain("exec");
    expect(results, results).toContain(MARKER);
  }, 180_000);

  it("after the operator tightens the list the grant stays, the page says why, and the next start drops it", async () => {
    const w = owner.workspaceId;
    const pid = await gatewayPid();
    const tightened = await operator.client.patch("/api/v1/admin/settings", { grantableTools: ["web"] });
    expect(tightened.statusCode, tightened.body).toBe(200);
    expect((await settingsAudit(operator.client))[0]?.details).toMatchObject({
      grantableTools: { from: ["shell", "web"], to: ["web"] },
    });

    expect((await owner.client.get(`/api/v1/workspaces/${w}/agent-tools`)).json().grantable).toEqual(["web"]);
    const agent = (await owner.client.get(`/api/v1/workspaces/${w}/agents/${agentId}`)).json();
    expect(agent.tools).toEqual(["shell", "web"]);
    expect(agent.toolsBlocked).toEqual([
      { tool: "shell", reason: "The operator no longer allows agents to use the shell." },
    ]);
    const listed = (await owner.client.get(`/api/v1/workspaces/${w}/agents`)).json();
    expect(listed.items.find((a: { id: string }) => a.id === agentId).toolsBlocked).toEqual(agent.toolsBlocked);
    // Other edits still work: the old grant is kept, not re-checked.
    const renamed = await owner.client.patch(`/api/v1/workspaces/${w}/agents/${agentId}`, {
      name: "Coder, renamed",
      tools: ["shell", "web"],
    });
    expect(renamed.statusCode, renamed.body).toBe(200);

    // The next start (here an explicit one; a message's wake does the same) restarts the gateway without it.
    await startRuntime();
    expect(await gatewayPid()).not.toBe(pid);
    const rendered = await renderedTools();
    expect(rendered.alsoAllow ?? []).not.toContain("group:runtime");
    expect(rendered.deny).toContain("group:runtime");

    const session = await owner.client.post(`/api/v1/workspaces/${w}/sessions`, { agentId });
    const { offered, results } = await turn(owner, session.json().id, "please run the command again");
    expect(offered.length).toBeGreaterThan(0);
    for (const names of offered) expect(names).not.toContain("exec");
    expect(results).not.toContain(MARKER);
  }, 180_000);

  it("the operator's list alone, with no agent edited, decides what the next start lets the agent run", async () => {
    // Gateway settings are cached per workspace behind a version that only agent, provider and connector writes
    // move: the operator's list must reach the gateway without any of those.
    const w = owner.workspaceId;
    const before = await gatewayPid();
    expect(
      (await operator.client.patch("/api/v1/admin/settings", { grantableTools: ["shell", "web"] })).statusCode,
    ).toBe(200);
    await startRuntime();
    expect(await gatewayPid()).not.toBe(before);
    expect((await renderedTools()).alsoAllow).toContain("group:runtime");

    const allowed = await gatewayPid();
    expect((await operator.client.patch("/api/v1/admin/settings", { grantableTools: ["web"] })).statusCode).toBe(200);
    await startRuntime();
    expect(await gatewayPid()).not.toBe(allowed);
    expect((await renderedTools()).deny).toContain("group:runtime");
    const session = await owner.client.post(`/api/v1/workspaces/${w}/sessions`, { agentId });
    const { offered, results } = await turn(owner, session.json().id, "please run the command once more");
    for (const names of offered) expect(names).not.toContain("exec");
    expect(results).not.toContain(MARKER);
  }, 180_000);

  it("an admin taking the shell from one agent reaches the gateway at the next start; a member cannot give it back; the other agent keeps it", async () => {
    // The same cache, from the other side: an agent write must move the workspace's settings version, and
    // only what it names may change. Several people and agents, as a real workspace has.
    const w = owner.workspaceId;
    const admin = await joins(app, owner, "admin");
    const member = await joins(app, owner, "member");
    expect(
      (await operator.client.patch("/api/v1/admin/settings", { grantableTools: ["shell", "web"] })).statusCode,
    ).toBe(200);
    const runner = await owner.client.post(`/api/v1/workspaces/${w}/agents`, {
      name: "Runner",
      providerId,
      model: "alpha",
      tools: ["web", "shell"],
      execPolicy: "allow",
    });
    expect(runner.statusCode, runner.body).toBe(201);
    const runnerId = runner.json().id as string;
    const coder = await owner.client.patch(`/api/v1/workspaces/${w}/agents/${agentId}`, {
      tools: ["web", "shell"],
      execPolicy: "allow",
    });
    expect(coder.statusCode, coder.body).toBe(200);
    await startRuntime();
    expect((await renderedTools()).alsoAllow).toContain("group:runtime");
    const granted = await gatewayPid();

    const revoked = await admin.client.patch(`/api/v1/workspaces/${w}/agents/${agentId}`, { tools: ["web"] });
    expect(revoked.statusCode, revoked.body).toBe(200);
    const regrant = await member.client.patch(`/api/v1/workspaces/${w}/agents/${agentId}`, {
      tools: ["web", "shell"],
    });
    expect(regrant.statusCode, regrant.body).toBe(403);
    await startRuntime();
    expect(await gatewayPid()).not.toBe(granted);
    expect((await renderedTools()).deny).toContain("group:runtime");
    expect((await renderedTools(runnerId)).alsoAllow).toContain("group:runtime");

    const revokedChat = await member.client.post(`/api/v1/workspaces/${w}/sessions`, { agentId });
    const denied = await turn(member, revokedChat.json().id, "please run the command after the revoke");
    for (const names of denied.offered) expect(names).not.toContain("exec");
    expect(denied.results).not.toContain(MARKER);
    // The other agent was not touched: its shell still runs, for the same member.
    const runnerChat = await member.client.post(`/api/v1/workspaces/${w}/sessions`, { agentId: runnerId });
    const ran = await turn(member, runnerChat.json().id, "please run the command with the runner");
    expect(ran.results, ran.results).toContain(MARKER);
  }, 240_000);

  it("sets an agent's exec policy and allowlist (admins only, deduplicated, audited)", async () => {
    const w = owner.workspaceId;
    const member = await joins(app, owner, "member");
    const own = await member.client.post(`/api/v1/workspaces/${w}/agents`, {
      name: "Mine",
      providerId,
      model: "alpha",
    });
    expect(own.statusCode, own.body).toBe(201);
    expect(own.json()).toMatchObject({ execPolicy: "ask", execAllowlist: [], toolsBlocked: [] });
    // A member's own agent: editing it is theirs, what it may run is not.
    const byMember = await member.client.patch(`/api/v1/workspaces/${w}/agents/${own.json().id}`, {
      execPolicy: "allow",
    });
    expect(byMember.statusCode, byMember.body).toBe(403);
    const createdByMember = await member.client.post(`/api/v1/workspaces/${w}/agents`, {
      name: "Mine too",
      providerId,
      model: "alpha",
      execAllowlist: ["ls"],
    });
    expect(createdByMember.statusCode, createdByMember.body).toBe(403);

    const set = await owner.client.patch(`/api/v1/workspaces/${w}/agents/${own.json().id}`, {
      execPolicy: "allowlist",
      execAllowlist: ["/usr/bin/git", " ls ", "/usr/bin/git"],
    });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toMatchObject({ execPolicy: "allowlist", execAllowlist: ["/usr/bin/git", "ls"] });
    expect((await owner.client.get(`/api/v1/workspaces/${w}/agents/${own.json().id}`)).json()).toMatchObject({
      execPolicy: "allowlist",
      execAllowlist: ["/usr/bin/git", "ls"],
    });
    // Sending the same values back (a form saving other fields) needs no admin.
    const same = await member.client.patch(`/api/v1/workspaces/${w}/agents/${own.json().id}`, {
      name: "Mine, renamed",
      execPolicy: "allowlist",
      execAllowlist: ["/usr/bin/git", "ls"],
    });
    expect(same.statusCode, same.body).toBe(200);

    const audit = (await owner.client.get(`/api/v1/workspaces/${w}/audit?action=agent.update&limit=20`)).json();
    const entry = audit.items.find(
      (e: { targetId: string; details: { execPolicy?: unknown } }) =>
        e.targetId === own.json().id && e.details.execPolicy,
    );
    expect(entry?.details).toMatchObject({
      execPolicy: { from: "ask", to: "allowlist" },
      execAllowlist: { from: [], to: ["/usr/bin/git", "ls"] },
    });
  });
});

describe("a list fixed by Reef's configuration", () => {
  let t: TestApp;
  let operator: Person;
  beforeAll(async () => {
    t = await buildTestApp({ config: { grantableTools: ["web", "files"], explicitKeys: ["grantableTools"] } });
    operator = await signUp(t.app);
  });
  afterAll(() => t.close());

  it("shows as config, cannot be changed from the admin page, and decides what admins grant", async () => {
    const view = (await operator.client.get("/api/v1/admin/settings")).json();
    expect(view.grantableTools).toMatchObject({ value: ["web", "files"], source: "config" });
    const res = await operator.client.patch("/api/v1/admin/settings", { grantableTools: ["web", "files", "shell"] });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: "CONFLICT", details: { settings: ["REEF_GRANTABLE_TOOLS"] } });
    expect((await operator.client.get("/api/v1/admin/settings")).json().grantableTools.value).toEqual(["web", "files"]);
    expect(await settingsAudit(operator.client)).toEqual([]);

    const owner = await signUp(t.app);
    const { providerId, agentId } = await agentOf(owner);
    const files = await owner.client.patch(`/api/v1/workspaces/${owner.workspaceId}/agents/${agentId}`, {
      tools: ["web", "files"],
    });
    expect(files.statusCode, files.body).toBe(200);
    const shell = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/agents`, {
      name: "Shell",
      providerId,
      model: "alpha",
      tools: ["shell"],
    });
    expect(shell.statusCode, shell.body).toBe(403);
    expect(shell.json().code).toBe("TOOL_NOT_GRANTABLE");
  });
});
