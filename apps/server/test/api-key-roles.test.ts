import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Issue 11 item 3: an API key acts with the lower of its own role and its
// creator's current role, and dies with its creator's membership.

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

async function join(owner: ApiClient, wid: string, person: { client: ApiClient; email: string }, role: string) {
  const created = await owner.post(`/api/v1/workspaces/${wid}/invites`, { email: person.email, role });
  expect(created.statusCode, created.body).toBe(201);
  const accepted = await person.client.post(`/api/v1/invites/${created.json().token}/accept`);
  expect(accepted.statusCode, accepted.body).toBe(200);
}

/** An owner's workspace with an admin who has minted an admin key. */
async function adminWithKey() {
  const owner = await signUp(t.app);
  const wid = owner.workspaceId;
  const admin = await signUp(t.app);
  await join(owner.client, wid, admin, "admin");
  const created = await admin.client.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "ci", role: "admin" });
  expect(created.statusCode, created.body).toBe(201);
  const key = new ApiClient(t.app, { bearer: created.json().key as string });
  expect((await key.get(`/api/v1/workspaces/${wid}`)).json()).toMatchObject({ role: "admin" });
  return { owner, wid, admin, key, keyId: created.json().apiKey.id as string };
}

describe("API keys and their creator's role", () => {
  it("a removed admin's key cannot invite its owner back (the reported attack)", async () => {
    const { owner, wid, admin, key, keyId } = await adminWithKey();
    expect((await owner.client.delete(`/api/v1/workspaces/${wid}/members/${admin.user.id}`)).statusCode).toBe(204);

    const invite = await key.post(`/api/v1/workspaces/${wid}/invites`, { email: admin.email, role: "admin" });
    expect([401, 403]).toContain(invite.statusCode);
    expect((await key.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(401);
    const invites = (await owner.client.get(`/api/v1/workspaces/${wid}/invites`)).json().items;
    expect(invites.filter((i: { status: string }) => i.status === "pending")).toEqual([]);
    // The removal revoked the key, in the same transaction, and said so in the audit log.
    const [listed] = (await owner.client.get(`/api/v1/workspaces/${wid}/api-keys`)).json().items;
    expect(listed).toMatchObject({ id: keyId, revokedAt: expect.any(String) });
    const audit = await t.db.owner.query(
      "select count(*)::int as n from audit_log where action = 'api_key.revoke' and target_id = $1",
      [keyId],
    );
    expect(audit.rows[0].n).toBe(1);
  });

  it("a key stops at once when its creator leaves, and stays dead when they rejoin", async () => {
    const { owner, wid, admin, key } = await adminWithKey();
    expect((await admin.client.delete(`/api/v1/workspaces/${wid}/members/${admin.user.id}`)).statusCode).toBe(204);
    expect((await key.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(401);

    await join(owner.client, wid, admin, "admin");
    expect((await admin.client.get(`/api/v1/workspaces/${wid}`)).json()).toMatchObject({ role: "admin" });
    expect((await key.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(401);
    const invite = await key.post(`/api/v1/workspaces/${wid}/invites`, { email: "x@example.test", role: "viewer" });
    expect(invite.statusCode).toBe(401);
  });

  it("a key stops even when the membership row is deleted behind the services' back", async () => {
    const { wid, admin, key } = await adminWithKey();
    await t.db.owner.query("delete from workspace_members where workspace_id = $1 and user_id = $2", [
      wid,
      admin.user.id,
    ]);
    expect((await key.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(401);
  });

  it("a demoted admin's key acts only as a member, and regains nothing above its own role", async () => {
    const { owner, wid, admin, key } = await adminWithKey();
    const demoted = await owner.client.patch(`/api/v1/workspaces/${wid}/members/${admin.user.id}`, { role: "member" });
    expect(demoted.statusCode, demoted.body).toBe(200);

    expect((await key.get(`/api/v1/workspaces/${wid}`)).json()).toMatchObject({ role: "member" });
    const invite = await key.post(`/api/v1/workspaces/${wid}/invites`, { email: "x@example.test", role: "admin" });
    expect(invite.statusCode).toBe(403);
    expect((await key.patch(`/api/v1/workspaces/${wid}`, { name: "by a demoted key" })).statusCode).toBe(403);
    expect((await key.get(`/api/v1/workspaces/${wid}/members`)).statusCode).toBe(200);

    // Promoted to owner: the key is still at most what it was minted as (admin).
    await owner.client.patch(`/api/v1/workspaces/${wid}/members/${admin.user.id}`, { role: "owner" });
    expect((await key.get(`/api/v1/workspaces/${wid}`)).json()).toMatchObject({ role: "admin" });
  });

  it("a key stops when its creator's account is deactivated or deleted", async () => {
    const { wid, admin, key } = await adminWithKey();
    await t.db.owner.query("update users set deactivated_at = now() where id = $1", [admin.user.id]);
    expect((await key.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(401);
    await t.db.owner.query("update users set deactivated_at = null where id = $1", [admin.user.id]);
    expect((await key.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(200);
    // A key whose creator is gone (created_by set null) has no one to answer for it.
    await t.db.owner.query("update api_keys set created_by = null where workspace_id = $1", [wid]);
    expect((await key.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(401);
  });
});
