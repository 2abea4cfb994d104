/**
 * Team management (issue 14): workspace settings (rename, default agent, delete impact), invites (list,
 * revoke, resend, the public preview, signing up through an invite), agent descriptions and the
 * delete impact, and names in the audit trail. Authorisation is checked by attacking.
 */
import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

async function invite(owner: ApiClient, wid: string, email: string, role: string) {
  const res = await owner.post(`/api/v1/workspaces/${wid}/invites`, { email, role });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { token: string; url: string; invite: { id: string } };
}

async function team() {
  const owner = await signUp(t.app, { name: "Olivia Owner" });
  const wid = owner.workspaceId;
  const join = async (role: string, name: string) => {
    const person = await signUp(t.app, { name });
    const { token } = await invite(owner.client, wid, person.email, role);
    expect((await person.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
    return person;
  };
  const admin = await join("admin", "Ada Admin");
  const member = await join("member", "Mo Member");
  const viewer = await join("viewer", "Vi Viewer");
  const provider = (
    await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "LLM",
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: "sk-team-test-0123456789",
      models: ["m"],
    })
  ).json();
  return { owner, admin, member, viewer, wid, provider };
}

describe("workspace settings", () => {
  it("sets the default agent (owners/admins only), clears it when the agent is deleted, and states the delete impact", async () => {
    const { owner, admin, member, viewer, wid, provider } = await team();
    const agent = (
      await owner.client.post(`/api/v1/workspaces/${wid}/agents`, {
        name: "Helper",
        providerId: provider.id,
        model: "m",
        description: "Answers questions about the handbook.",
        starterPrompts: ["Summarise the leave policy ", "Who do I ask about expenses?"],
      })
    ).json();
    expect(agent).toMatchObject({
      description: "Answers questions about the handbook.",
      starterPrompts: ["Summarise the leave policy", "Who do I ask about expenses?"],
    });
    expect((await owner.client.get(`/api/v1/workspaces/${wid}`)).json().defaultAgentId).toBeNull();
    for (const who of [member, viewer]) {
      const res = await who.client.patch(`/api/v1/workspaces/${wid}`, { defaultAgentId: agent.id });
      expect(res.statusCode).toBe(403);
      expect((await who.client.patch(`/api/v1/workspaces/${wid}`, { name: "Mine now" })).statusCode).toBe(403);
      expect((await who.client.get(`/api/v1/workspaces/${wid}/impact`)).statusCode).toBe(403);
    }
    const set = await admin.client.patch(`/api/v1/workspaces/${wid}`, { defaultAgentId: agent.id });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json().defaultAgentId).toBe(agent.id);
    // A personal agent (or another workspace's) cannot be the default.
    const other = await signUp(t.app);
    const bad = await owner.client.patch(`/api/v1/workspaces/${wid}`, { defaultAgentId: other.user.id });
    expect(bad.statusCode).toBe(400);

    // Conversations of two people with the agent: the delete impact says so, to those who may delete it.
    for (const who of [member, owner])
      expect((await who.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id })).statusCode).toBe(201);
    await member.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id });
    expect((await member.client.get(`/api/v1/workspaces/${wid}/agents/${agent.id}/impact`)).statusCode).toBe(403);
    const impact = await admin.client.get(`/api/v1/workspaces/${wid}/agents/${agent.id}/impact`);
    expect(impact.json()).toEqual({ sessions: 3, people: 2 });
    expect((await admin.client.get(`/api/v1/workspaces/${wid}/impact`)).statusCode).toBe(403);
    expect((await owner.client.get(`/api/v1/workspaces/${wid}/impact`)).json()).toEqual({
      agents: 1,
      sessions: 3,
      members: 4,
    });

    expect((await owner.client.delete(`/api/v1/workspaces/${wid}/agents/${agent.id}`)).statusCode).toBe(204);
    expect((await owner.client.get(`/api/v1/workspaces/${wid}`)).json().defaultAgentId).toBeNull();
    const audit = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=agent.delete`)).json();
    expect(audit.items[0].details).toMatchObject({ name: "Helper", sessions: 3, people: 2 });
    expect(
      (await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=workspace.default_agent`)).json().items,
    ).toHaveLength(1);
  });
});

describe("invites", () => {
  it("previews an invite by token (only workspace, inviter, role, email) and nothing for a revoked one", async () => {
    const { owner, wid } = await team();
    await owner.client.patch(`/api/v1/workspaces/${wid}`, { name: "Acme Research" });
    const { token, invite: inv } = await invite(owner.client, wid, "pat@example.test", "member");
    const anonymous = new ApiClient(t.app);
    const res = await anonymous.get(`/api/v1/invites/${token}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      workspaceName: "Acme Research",
      inviterName: "Olivia Owner",
      role: "member",
      email: "pat@example.test",
      expiresAt: expect.any(String),
    });
    expect(res.body).not.toContain(wid);
    expect((await owner.client.delete(`/api/v1/workspaces/${wid}/invites/${inv.id}`)).statusCode).toBe(204);
    const gone = await anonymous.get(`/api/v1/invites/${token}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.body).not.toContain("Acme");
    expect(gone.body).not.toContain("pat@example.test");
    expect((await anonymous.get(`/api/v1/invites/ri_${"x".repeat(30)}`)).statusCode).toBe(404);
  });

  it("members and viewers cannot list, revoke or resend invites; another workspace's owner cannot either", async () => {
    const { owner, member, viewer, wid } = await team();
    const { invite: inv } = await invite(owner.client, wid, "sam@example.test", "viewer");
    const stranger = await signUp(t.app);
    for (const who of [member, viewer]) {
      expect((await who.client.get(`/api/v1/workspaces/${wid}/invites`)).statusCode).toBe(403);
      expect((await who.client.delete(`/api/v1/workspaces/${wid}/invites/${inv.id}`)).statusCode).toBe(403);
      expect((await who.client.post(`/api/v1/workspaces/${wid}/invites/${inv.id}/resend`)).statusCode).toBe(403);
    }
    expect((await stranger.client.post(`/api/v1/workspaces/${wid}/invites/${inv.id}/resend`)).statusCode).toBe(404);
    expect(
      (await stranger.client.post(`/api/v1/workspaces/${stranger.workspaceId}/invites/${inv.id}/resend`)).statusCode,
    ).toBe(404);
    const list = (await owner.client.get(`/api/v1/workspaces/${wid}/invites`)).json();
    expect(list.items.find((i: { id: string }) => i.id === inv.id)?.status).toBe("pending");
  });

  it("resend issues a fresh link, the old one stops working, and it is audited", async () => {
    const { owner, wid } = await team();
    const first = await invite(owner.client, wid, "rae@example.test", "member");
    const again = await owner.client.post(`/api/v1/workspaces/${wid}/invites/${first.invite.id}/resend`);
    expect(again.statusCode, again.body).toBe(200);
    const { token } = again.json();
    expect(token).not.toBe(first.token);
    const anonymous = new ApiClient(t.app);
    expect((await anonymous.get(`/api/v1/invites/${first.token}`)).statusCode).toBe(404);
    expect((await anonymous.get(`/api/v1/invites/${token}`)).statusCode).toBe(200);
    const audit = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=invite.resend`)).json();
    expect(audit.items[0]).toMatchObject({ targetId: first.invite.id, actorName: "Olivia Owner" });
  });

  it("signing up through an invite joins that workspace with no personal workspace, and uses the invite", async () => {
    const { owner, wid } = await team();
    const { token } = await invite(owner.client, wid, "New.Person@example.test", "viewer");
    const client = new ApiClient(t.app);
    const wrong = await client.post("/api/v1/auth/signup", {
      email: "someone-else@example.test",
      password: "correct horse battery",
      name: "Else",
      inviteToken: token,
    });
    expect(wrong.statusCode).toBe(403);
    const res = await client.post("/api/v1/auth/signup", {
      email: "new.person@example.test",
      password: "correct horse battery",
      name: "Nia New",
      inviteToken: token,
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().workspace).toMatchObject({ id: wid, role: "viewer" });
    const me = (await client.get("/api/v1/me")).json();
    // Only the inviting workspace: no empty personal one of their own.
    expect(me.workspaces).toEqual([expect.objectContaining({ id: wid, role: "viewer" })]);
    expect((await new ApiClient(t.app).get(`/api/v1/invites/${token}`)).statusCode).toBe(404);
    const audit = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=invite.accept`)).json();
    expect(audit.items[0]).toMatchObject({ actorName: "Nia New" });
  });
});

describe("audit trail", () => {
  it("names people and API keys, and filters by person", async () => {
    const { owner, admin, member, wid } = await team();
    await member.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "Mine",
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: "sk-mine-0123456789",
      models: ["m"],
      personal: true,
    });
    const key = (
      await owner.client.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "CI bot", role: "admin" })
    ).json();
    const bot = new ApiClient(t.app, { bearer: key.key });
    await bot.patch(`/api/v1/workspaces/${wid}`, { name: "Renamed by bot" });
    await admin.client.patch(`/api/v1/workspaces/${wid}/members/${member.user.id}`, { role: "viewer" });
    const all = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?limit=100`)).json().items;
    const rename = all.find((e: { action: string }) => e.action === "workspace.rename");
    expect(rename).toMatchObject({ actorType: "api_key", actorName: "CI bot" });
    const role = all.find((e: { action: string }) => e.action === "member.role_change");
    expect(role).toMatchObject({ actorName: "Ada Admin", targetName: "Mo Member" });
    const byAdmin = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?actor=${admin.user.id}`)).json().items;
    expect(byAdmin.length).toBeGreaterThan(0);
    expect(byAdmin.every((e: { actorName: string }) => e.actorName === "Ada Admin")).toBe(true);
  });
});
