import { verifyAuditChains } from "@reef/core";
import { createDb } from "@reef/db";
import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
let operator: Awaited<ReturnType<typeof signUp>>;
beforeAll(async () => {
  t = await buildTestApp();
  operator = await signUp(t.app, { email: "operator@example.test" });
  expect(operator.user.platformRole).toBe("super_admin");
});
afterAll(() => t.close());

describe("operator views", () => {
  it("are closed to everyone but super_admins", async () => {
    const user = await signUp(t.app);
    for (const url of ["/api/v1/admin/users", "/api/v1/admin/workspaces", "/api/v1/admin/audit"]) {
      expect((await user.client.get(url)).statusCode, url).toBe(403);
      expect((await new ApiClient(t.app).get(url)).statusCode, url).toBe(401);
    }
    expect((await user.client.patch(`/api/v1/admin/users/${operator.user.id}`, { deactivated: true })).statusCode).toBe(
      403,
    );
  });

  it("lists and searches users with pagination", async () => {
    await signUp(t.app, { email: "zelda.search@example.test", name: "Zelda" });
    const found = (await operator.client.get("/api/v1/admin/users?q=zelda")).json();
    expect(found.items).toHaveLength(1);
    expect(found.items[0]).toMatchObject({
      email: "zelda.search@example.test",
      workspaceCount: 1,
      deactivated: false,
      twoFactorEnabled: false,
    });
    const page = (await operator.client.get("/api/v1/admin/users?limit=1")).json();
    expect(page.items).toHaveLength(1);
    const next = (await operator.client.get(`/api/v1/admin/users?limit=1&cursor=${page.nextCursor}`)).json();
    expect(next.items[0].id).not.toBe(page.items[0].id);
  });

  it("shows workspaces with membership counts and owners, not their contents", async () => {
    const owner = await signUp(t.app, { email: "wsowner@example.test" });
    const res = (await operator.client.get("/api/v1/admin/workspaces?limit=200")).json();
    const ws = res.items.find((w: { id: string }) => w.id === owner.workspaceId);
    expect(ws).toMatchObject({ memberCount: 1, owners: [{ userId: owner.user.id, email: "wsowner@example.test" }] });
    // Being an operator grants no access to the workspace itself.
    expect((await operator.client.get(`/api/v1/workspaces/${owner.workspaceId}`)).statusCode).toBe(404);
    expect((await operator.client.get(`/api/v1/workspaces/${owner.workspaceId}/audit`)).statusCode).toBe(404);
  });

  it("deactivation ends the user's sessions and API keys at once and blocks sign-in; never yourself", async () => {
    const victim = await signUp(t.app);
    const { key } = (
      await victim.client.post(`/api/v1/workspaces/${victim.workspaceId}/api-keys`, { name: "k", role: "viewer" })
    ).json();
    const bot = new ApiClient(t.app, { bearer: key });
    expect((await bot.get(`/api/v1/workspaces/${victim.workspaceId}`)).statusCode).toBe(200);

    const res = await operator.client.patch(`/api/v1/admin/users/${victim.user.id}`, { deactivated: true });
    expect(res.json()).toMatchObject({ deactivated: true });
    expect((await victim.client.get("/api/v1/me")).statusCode).toBe(401);
    expect((await bot.get(`/api/v1/workspaces/${victim.workspaceId}`)).statusCode).toBe(401);
    const login = await new ApiClient(t.app).post("/api/v1/auth/login", {
      email: victim.email,
      password: victim.password,
    });
    expect(login.statusCode).toBe(401);
    expect(login.json().message).toMatch(/deactivated/);

    const self = await operator.client.patch(`/api/v1/admin/users/${operator.user.id}`, { deactivated: true });
    expect(self.statusCode).toBe(400);

    await operator.client.patch(`/api/v1/admin/users/${victim.user.id}`, { deactivated: false });
    expect(
      (await new ApiClient(t.app).post("/api/v1/auth/login", { email: victim.email, password: victim.password }))
        .statusCode,
    ).toBe(200);

    const audit = (await operator.client.get("/api/v1/admin/audit?action=user.deactivate")).json();
    expect(audit.items[0]).toMatchObject({ targetId: victim.user.id, actorId: operator.user.id });
  });
});

describe("audit chain", () => {
  it("verifies intact chains and pinpoints an edited entry and a removed tail", async () => {
    const someone = await signUp(t.app);
    await someone.client.patch(`/api/v1/workspaces/${someone.workspaceId}`, { name: "one" });
    await someone.client.patch(`/api/v1/workspaces/${someone.workspaceId}`, { name: "two" });
    const ownerDb = createDb(t.db.owner);
    const clean = await verifyAuditChains(ownerDb);
    expect(clean.breaks).toEqual([]);
    expect(clean.entries).toBeGreaterThan(5);

    const { rows } = await t.db.owner.query("select id from audit_log where workspace_id = $1 order by id", [
      someone.workspaceId,
    ]);
    await t.db.owner.query('update audit_log set details = \'{"to":"forged"}\' where id = $1', [rows[1].id]);
    const edited = await verifyAuditChains(ownerDb);
    expect(edited.breaks).toContainEqual(
      expect.objectContaining({ entryId: Number(rows[1].id), reason: expect.stringMatching(/edited/) }),
    );

    await t.db.owner.query("delete from audit_log where id = $1", [rows.at(-1).id]);
    const truncated = await verifyAuditChains(ownerDb);
    expect(truncated.breaks).toContainEqual(
      expect.objectContaining({ chain: someone.workspaceId, reason: expect.stringMatching(/missing/) }),
    );
  });
});
