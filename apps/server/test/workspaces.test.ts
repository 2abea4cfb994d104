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

/** A workspace with an owner and one member of each other role. */
async function team() {
  const owner = await signUp(t.app);
  const wid = owner.workspaceId;
  const join = async (role: string) => {
    const person = await signUp(t.app);
    const { token } = await invite(owner.client, wid, person.email, role);
    const accepted = await person.client.post(`/api/v1/invites/${token}/accept`);
    expect(accepted.statusCode, accepted.body).toBe(200);
    return person;
  };
  return { owner, wid, admin: await join("admin"), member: await join("member"), viewer: await join("viewer") };
}

describe("workspaces", () => {
  it("creates, lists with pagination, renames and deletes (with the exact name)", async () => {
    const { client, workspaceId } = await signUp(t.app);
    for (const name of ["Alpha", "Beta", "Gamma"]) {
      expect((await client.post("/api/v1/workspaces", { name })).statusCode).toBe(201);
    }
    const first = (await client.get("/api/v1/workspaces?limit=2")).json();
    expect(first.items).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = (await client.get(`/api/v1/workspaces?limit=2&cursor=${first.nextCursor}`)).json();
    expect(second.items).toHaveLength(2);
    expect(second.nextCursor).toBeNull();
    const ids = [...first.items, ...second.items].map((w: { id: string }) => w.id);
    expect(new Set(ids).size).toBe(4);
    expect(ids).toContain(workspaceId);

    const renamed = await client.patch(`/api/v1/workspaces/${workspaceId}`, { name: "Renamed" });
    expect(renamed.json()).toMatchObject({ name: "Renamed", role: "owner" });
    const wrongName = await client.delete(`/api/v1/workspaces/${workspaceId}`, { confirmName: "renamed" });
    expect(wrongName.statusCode).toBe(400);
    expect((await client.get(`/api/v1/workspaces/${workspaceId}`)).statusCode).toBe(200);
    expect((await client.delete(`/api/v1/workspaces/${workspaceId}`, { confirmName: "Renamed" })).statusCode).toBe(204);
    expect((await client.get(`/api/v1/workspaces/${workspaceId}`)).statusCode).toBe(404);
    const bad = await client.get("/api/v1/workspaces?cursor=not-a-cursor");
    expect(bad.statusCode).toBe(400);
  });

  it("only owners delete; admins rename; members and viewers read", async () => {
    const { wid, admin, member, viewer } = await team();
    expect((await admin.client.delete(`/api/v1/workspaces/${wid}`, { confirmName: "x" })).statusCode).toBe(403);
    expect((await admin.client.patch(`/api/v1/workspaces/${wid}`, { name: "By admin" })).statusCode).toBe(200);
    expect((await member.client.patch(`/api/v1/workspaces/${wid}`, { name: "By member" })).statusCode).toBe(403);
    expect((await viewer.client.get(`/api/v1/workspaces/${wid}`)).json()).toMatchObject({
      name: "By admin",
      role: "viewer",
    });
    const denied = await t.db.owner.query(
      "select count(*)::int as n from audit_log where workspace_id = $1 and action = 'access.denied'",
      [wid],
    );
    expect(denied.rows[0].n).toBe(2);
  });
});

describe("members and invites", () => {
  it("an invite is single-use, bound to the invited email, and expires", async () => {
    const owner = await signUp(t.app);
    const invitee = await signUp(t.app);
    const stranger = await signUp(t.app);
    const { token, url } = await invite(owner.client, owner.workspaceId, invitee.email, "member");
    expect(url).toContain(token);
    const wrongPerson = await stranger.client.post(`/api/v1/invites/${token}/accept`);
    expect(wrongPerson.statusCode).toBe(403);
    const anonymous = await new ApiClient(t.app).post(`/api/v1/invites/${token}/accept`);
    expect(anonymous.statusCode).toBe(401);
    expect((await invitee.client.post(`/api/v1/invites/${token}/accept`)).json().workspace).toMatchObject({
      id: owner.workspaceId,
      role: "member",
    });
    expect((await invitee.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(409);
    expect((await invitee.client.post("/api/v1/invites/ri_not-a-real-token-at-all/accept")).statusCode).toBe(404);

    const late = await signUp(t.app);
    const expired = await invite(owner.client, owner.workspaceId, late.email, "viewer");
    await t.db.owner.query("update invites set expires_at = now() - interval '1 minute' where id = $1", [
      expired.invite.id,
    ]);
    const res = await late.client.post(`/api/v1/invites/${expired.token}/accept`);
    expect(res.statusCode).toBe(409);
    expect(res.json().message).toMatch(/expired/);
  });

  it("nobody grants a role above their own; the last owner stays", async () => {
    const { owner, wid, admin, member } = await team();
    expect(
      (await admin.client.post(`/api/v1/workspaces/${wid}/invites`, { email: "x@example.test", role: "owner" }))
        .statusCode,
    ).toBe(403);
    expect(
      (await member.client.post(`/api/v1/workspaces/${wid}/invites`, { email: "x@example.test", role: "viewer" }))
        .statusCode,
    ).toBe(403);
    expect(
      (await admin.client.patch(`/api/v1/workspaces/${wid}/members/${member.user.id}`, { role: "owner" })).statusCode,
    ).toBe(403);
    expect(
      (await admin.client.patch(`/api/v1/workspaces/${wid}/members/${owner.user.id}`, { role: "viewer" })).statusCode,
    ).toBe(403);
    expect((await admin.client.delete(`/api/v1/workspaces/${wid}/members/${owner.user.id}`)).statusCode).toBe(403);

    const demoteSelf = await owner.client.patch(`/api/v1/workspaces/${wid}/members/${owner.user.id}`, {
      role: "admin",
    });
    expect(demoteSelf.statusCode).toBe(409);
    expect(demoteSelf.json().message).toMatch(/last owner/);
    expect((await owner.client.delete(`/api/v1/workspaces/${wid}/members/${owner.user.id}`)).statusCode).toBe(409);

    const promoted = await owner.client.patch(`/api/v1/workspaces/${wid}/members/${admin.user.id}`, { role: "owner" });
    expect(promoted.json().role).toBe("owner");
    expect(
      (await owner.client.patch(`/api/v1/workspaces/${wid}/members/${owner.user.id}`, { role: "admin" })).statusCode,
    ).toBe(200);

    expect((await member.client.delete(`/api/v1/workspaces/${wid}/members/${member.user.id}`)).statusCode).toBe(204);
    expect((await member.client.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(404);

    const { rows } = await t.db.owner.query(
      "select action, details from audit_log where workspace_id = $1 and action like 'member.%' order by id",
      [wid],
    );
    expect(rows.map((r) => r.action)).toEqual(["member.role_change", "member.role_change", "member.leave"]);
    expect(rows[0].details).toEqual({ from: "admin", to: "owner" });
  });

  it("lists members with pagination", async () => {
    const { owner, wid } = await team();
    const page = (await owner.client.get(`/api/v1/workspaces/${wid}/members?limit=3`)).json();
    expect(page.items).toHaveLength(3);
    const rest = (await owner.client.get(`/api/v1/workspaces/${wid}/members?limit=3&cursor=${page.nextCursor}`)).json();
    expect(rest.items).toHaveLength(1);
    expect(rest.nextCursor).toBeNull();
    const roles = [...page.items, ...rest.items].map((m: { role: string }) => m.role).sort();
    expect(roles).toEqual(["admin", "member", "owner", "viewer"]);
  });
});

describe("API keys", () => {
  it("shows the key once, authenticates with it, records first use, and stops on revocation", async () => {
    const { owner, wid } = await team();
    const created = await owner.client.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "CI", role: "member" });
    expect(created.statusCode).toBe(201);
    const { key, apiKey } = created.json();
    expect(key).toMatch(/^reef_/);
    expect(apiKey.prefix).toBe(key.slice(0, 11));
    const listed = await owner.client.get(`/api/v1/workspaces/${wid}/api-keys`);
    expect(listed.body).not.toContain(key);

    const bot = new ApiClient(t.app, { bearer: key });
    expect((await bot.get(`/api/v1/workspaces/${wid}`)).json()).toMatchObject({ id: wid, role: "member" });
    expect((await bot.get(`/api/v1/workspaces/${wid}/members`)).statusCode).toBe(200);
    expect((await bot.patch(`/api/v1/workspaces/${wid}`, { name: "bot" })).statusCode).toBe(403);
    expect((await bot.get("/api/v1/workspaces")).json().items.map((w: { id: string }) => w.id)).toEqual([wid]);
    const [used] = (await owner.client.get(`/api/v1/workspaces/${wid}/api-keys`)).json().items;
    expect(used.lastUsedAt).not.toBeNull();
    const firstUse = await t.db.owner.query(
      "select count(*)::int as n from audit_log where action = 'api_key.first_use' and target_id = $1",
      [apiKey.id],
    );
    expect(firstUse.rows[0].n).toBe(1);

    expect((await owner.client.delete(`/api/v1/workspaces/${wid}/api-keys/${apiKey.id}`)).statusCode).toBe(204);
    const after = await bot.get(`/api/v1/workspaces/${wid}`);
    expect(after.statusCode).toBe(401);
    expect((await new ApiClient(t.app, { bearer: "reef_forged" }).get("/api/v1/workspaces")).statusCode).toBe(401);
  });

  it("keys never exceed their creator's role, expire, and keys cannot mint keys", async () => {
    const { owner, wid, admin, member } = await team();
    expect(
      (await admin.client.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "k", role: "owner" })).statusCode,
    ).toBe(403);
    expect(
      (await member.client.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "k", role: "viewer" })).statusCode,
    ).toBe(403);
    const past = await owner.client.post(`/api/v1/workspaces/${wid}/api-keys`, {
      name: "k",
      role: "viewer",
      expiresAt: "2020-01-01T00:00:00Z",
    });
    expect(past.statusCode).toBe(403);
    const soon = await owner.client.post(`/api/v1/workspaces/${wid}/api-keys`, {
      name: "k",
      role: "admin",
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    const { key, apiKey } = soon.json();
    const bot = new ApiClient(t.app, { bearer: key });
    expect((await bot.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "child", role: "viewer" })).statusCode).toBe(
      403,
    );
    await t.db.owner.query("update api_keys set expires_at = now() - interval '1 second' where id = $1", [apiKey.id]);
    expect((await bot.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(401);
  });
});

describe("audit log", () => {
  it("filters by action and paginates newest first", async () => {
    const { owner, wid } = await team();
    for (let i = 0; i < 5; i++) await owner.client.patch(`/api/v1/workspaces/${wid}`, { name: `Name ${i}` });
    const page1 = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=workspace.rename&limit=2`)).json();
    expect(page1.items.map((e: { details: { to: string } }) => e.details.to)).toEqual(["Name 4", "Name 3"]);
    const page2 = (
      await owner.client.get(
        `/api/v1/workspaces/${wid}/audit?action=workspace.rename&limit=2&cursor=${page1.nextCursor}`,
      )
    ).json();
    expect(page2.items.map((e: { details: { to: string } }) => e.details.to)).toEqual(["Name 2", "Name 1"]);
    const entry = page1.items[0];
    expect(entry).toMatchObject({ actorType: "user", actorId: owner.user.id, outcome: "success", ip: "127.0.0.1" });
    const byActor = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?actor=${owner.user.id}&limit=200`)).json();
    expect(byActor.items.every((e: { actorId: string }) => e.actorId === owner.user.id)).toBe(true);
    const future = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?after=2999-01-01T00:00:00Z`)).json();
    expect(future.items).toEqual([]);
  });

  it("members cannot read it", async () => {
    const { wid, member } = await team();
    expect((await member.client.get(`/api/v1/workspaces/${wid}/audit`)).statusCode).toBe(403);
  });

  it("the application role cannot change or delete audit rows", async () => {
    const { wid } = await team();
    const client = await t.db.database.pool.connect();
    try {
      await client.query("begin");
      await client.query("select set_config('app.workspace_id', $1, true)", [wid]);
      await expect(client.query("update audit_log set action = 'forged'")).rejects.toThrow(/permission denied/);
      await client.query("rollback");
      await client.query("begin");
      await client.query("select set_config('app.workspace_id', $1, true)", [wid]);
      await expect(client.query("delete from audit_log")).rejects.toThrow(/permission denied/);
      await client.query("rollback");
    } finally {
      client.release();
    }
  });
});
