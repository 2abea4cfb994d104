import {
  ApiClient,
  buildTestApp,
  type SmtpStandIn,
  signUp,
  startSmtpStandIn,
  type TestApp,
  tokenIn,
} from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let smtp: SmtpStandIn;
let t: TestApp;
beforeAll(async () => {
  smtp = await startSmtpStandIn();
  t = await buildTestApp({ config: { smtpUrl: smtp.url, smtpFrom: "Reef <noreply@reef.test>" } });
});
afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

async function signInAgain(email: string, password: string): Promise<ApiClient> {
  const c = new ApiClient(t.app);
  const res = await c.post("/api/v1/auth/login", { email, password });
  expect(res.statusCode).toBe(200);
  return c;
}

async function auditRows(action: string, userId: string) {
  const { rows } = await t.db.owner.query(
    "select outcome, details from platform_audit_log where action = $1 and target_id = $2 order by id",
    [action, userId],
  );
  return rows as { outcome: string; details: Record<string, unknown> }[];
}

describe("profile", () => {
  it("renames the signed-in user, audited", async () => {
    const { client, user } = await signUp(t.app);
    const res = await client.patch("/api/v1/me", { name: "  Ada Lovelace " });
    expect(res.statusCode).toBe(200);
    expect(res.json().user).toMatchObject({ id: user.id, name: "Ada Lovelace" });
    expect((await client.get("/api/v1/me")).json().user.name).toBe("Ada Lovelace");
    expect((await client.patch("/api/v1/me", { name: "" })).statusCode).toBe(400);
    expect(await auditRows("user.update", user.id)).toHaveLength(1);
    expect((await new ApiClient(t.app).patch("/api/v1/me", { name: "Nobody" })).statusCode).toBe(401);
  });
});

describe("password change", () => {
  it("needs the current password, ends the other sessions and keeps this one", async () => {
    const { client, email, password, user } = await signUp(t.app);
    const other = await signInAgain(email, password);

    const wrong = await client.post("/api/v1/me/password", {
      currentPassword: "not my password",
      newPassword: "a brand new passphrase",
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().message).toMatch(/current password is incorrect/);
    // A wrong current password does not sign anyone out.
    expect((await client.get("/api/v1/me")).statusCode).toBe(200);
    expect((await other.get("/api/v1/me")).statusCode).toBe(200);

    const weak = await client.post("/api/v1/me/password", { currentPassword: password, newPassword: "short" });
    expect(weak.statusCode).toBe(400);

    const ok = await client.post("/api/v1/me/password", {
      currentPassword: password,
      newPassword: "a brand new passphrase",
    });
    expect(ok.statusCode).toBe(204);
    expect((await client.get("/api/v1/me")).statusCode).toBe(200);
    expect((await other.get("/api/v1/me")).statusCode).toBe(401);
    expect((await new ApiClient(t.app).post("/api/v1/auth/login", { email, password })).statusCode).toBe(401);
    await signInAgain(email, "a brand new passphrase");

    const rows = await auditRows("user.password_change", user.id);
    expect(rows.map((r) => r.outcome)).toEqual(["failure", "success"]);
    expect(rows[1]?.details).toMatchObject({ sessionsRevoked: 1 });
    expect(JSON.stringify(rows)).not.toMatch(/passphrase|not my password/);
    expect(await smtp.waitForMail(email, /password was changed|was changed from IP/)).toContain(email);
  });
});

describe("sign out everywhere", () => {
  it("ends every other session, then this one too when asked", async () => {
    const { client, email, password, user } = await signUp(t.app);
    const second = await signInAgain(email, password);
    const third = await signInAgain(email, password);

    const res = await client.post("/api/v1/me/sessions/revoke-all", { includeCurrent: false });
    expect(res.statusCode).toBe(204);
    expect((await client.get("/api/v1/me")).statusCode).toBe(200);
    expect((await second.get("/api/v1/me")).statusCode).toBe(401);
    expect((await third.get("/api/v1/me")).statusCode).toBe(401);
    expect((await client.get("/api/v1/me/sessions")).json().items).toHaveLength(1);

    const fourth = await signInAgain(email, password);
    const all = await client.post("/api/v1/me/sessions/revoke-all", { includeCurrent: true });
    expect(all.statusCode).toBe(204);
    expect(all.cookies.some((c) => c.name === "reef_session" && c.value === "")).toBe(true);
    expect((await client.get("/api/v1/me")).statusCode).toBe(401);
    expect((await fourth.get("/api/v1/me")).statusCode).toBe(401);

    const rows = await auditRows("session.revoke_all", user.id);
    expect(rows.map((r) => r.details)).toEqual([
      { count: 2, includeCurrent: false },
      { count: 2, includeCurrent: true },
    ]);
  });
});

describe("email change", () => {
  it("takes effect from the link mailed to the new address; the old address is told", async () => {
    const { client, email, password, user } = await signUp(t.app);
    const newEmail = `renamed-${Date.now()}@example.test`;

    const wrong = await client.post("/api/v1/me/email", { newEmail, password: "not my password" });
    expect(wrong.statusCode).toBe(401);
    const taken = await signUp(t.app);
    const conflict = await client.post("/api/v1/me/email", { newEmail: taken.email, password });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().code).toBe("CONFLICT");

    const res = await client.post("/api/v1/me/email", { newEmail, password });
    expect(res.statusCode).toBe(202);
    // Nothing changes until the new address confirms.
    expect((await client.get("/api/v1/me")).json().user.email).toBe(email);
    const mail = await smtp.waitForMail(newEmail, /\/confirm-email\?token=/);
    expect(mail).toContain("24 hours");
    const token = tokenIn(mail, "confirm-email");

    // The link works from anywhere (whoever reads the new mailbox), once.
    const confirmed = await new ApiClient(t.app).post("/api/v1/auth/email-change/confirm", { token });
    expect(confirmed.statusCode).toBe(204);
    expect((await client.get("/api/v1/me")).json().user.email).toBe(newEmail);
    const again = await new ApiClient(t.app).post("/api/v1/auth/email-change/confirm", { token });
    expect(again.statusCode).toBe(400);
    expect(again.json()).toMatchObject({ code: "LINK_INVALID" });

    const notice = await smtp.waitForMail(email, /email address of your Reef account was changed/);
    expect(notice).toContain(newEmail);
    await signInAgain(newEmail, password);
    expect((await new ApiClient(t.app).post("/api/v1/auth/login", { email, password })).statusCode).toBe(401);

    const rows = await auditRows("user.email_change", user.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.details).toEqual({ from: email, to: newEmail });
    expect(JSON.stringify(await auditRows("user.email_change_request", user.id))).not.toContain(token.slice(4));
  });

  it("refuses to confirm an address another account took in the meantime", async () => {
    const { client, password } = await signUp(t.app);
    const wanted = `wanted-${Date.now()}@example.test`;
    expect((await client.post("/api/v1/me/email", { newEmail: wanted, password })).statusCode).toBe(202);
    const token = tokenIn(await smtp.waitForMail(wanted, /\/confirm-email\?token=/), "confirm-email");
    await signUp(t.app, { email: wanted });
    const res = await client.post("/api/v1/auth/email-change/confirm", { token });
    expect(res.statusCode).toBe(409);
  });
});

describe("one member cannot reach another's account", () => {
  it("sessions, links and email stay the owner's", async () => {
    const a = await signUp(t.app);
    const b = await signUp(t.app);
    // Both in A's workspace (the invite goes by mail here).
    const invite = await a.client.post(`/api/v1/workspaces/${a.workspaceId}/invites`, {
      email: b.email,
      role: "member",
    });
    expect(invite.statusCode).toBe(201);
    const inviteToken = /\/invites\/(ri_[A-Za-z0-9_-]+)/.exec(await smtp.waitForMail(b.email, /\/invites\/ri_/))?.[1];
    expect((await b.client.post(`/api/v1/invites/${inviteToken}/accept`)).statusCode).toBe(200);

    // A cannot end B's session by id, nor by signing out everywhere.
    const bSession = (await b.client.get("/api/v1/me/sessions")).json().items[0].id;
    const revoke = await a.client.delete(`/api/v1/me/sessions/${bSession}`);
    expect(revoke.statusCode).toBe(404);
    expect((await a.client.post("/api/v1/me/sessions/revoke-all", { includeCurrent: true })).statusCode).toBe(204);
    expect((await b.client.get("/api/v1/me")).statusCode).toBe(200);
    const aAgain = await signInAgain(a.email, a.password);

    // B's magic link, even if A gets hold of the token, does not work in A's browser (with or without a binding).
    const bBrowser = new ApiClient(t.app);
    expect((await bBrowser.post("/api/v1/auth/magic-link", { email: b.email })).statusCode).toBe(202);
    const magic = tokenIn(await smtp.waitForMail(b.email, /\/magic\?token=/), "magic");
    await aAgain.post("/api/v1/auth/magic-link", { email: a.email });
    const stolen = await aAgain.post("/api/v1/auth/magic-link/consume", { token: magic });
    expect(stolen.statusCode).toBe(400);
    expect(stolen.json().message).toMatch(/different browser/);
    expect((await aAgain.get("/api/v1/me")).json().user.id).toBe(a.user.id);
    expect((await bBrowser.post("/api/v1/auth/magic-link/consume", { token: magic })).json().user.id).toBe(b.user.id);

    // A cannot take B's address, and changing A's own things leaves B's alone.
    expect((await aAgain.post("/api/v1/me/email", { newEmail: b.email, password: a.password })).statusCode).toBe(409);
    expect((await aAgain.patch("/api/v1/me", { name: "A renamed" })).statusCode).toBe(200);
    const bMe = (await b.client.get("/api/v1/me")).json().user;
    expect(bMe.email).toBe(b.email);
    expect(bMe.name).not.toBe("A renamed");
    await signInAgain(b.email, b.password);

    // A reset link of A's sets A's password only.
    await aAgain.post("/api/v1/auth/password-reset", { email: a.email });
    const reset = tokenIn(await smtp.waitForMail(a.email, /\/reset-password\?token=/), "reset-password");
    expect(
      (
        await b.client.post("/api/v1/auth/password-reset/complete", {
          token: reset,
          password: "a brand new passphrase",
        })
      ).statusCode,
    ).toBe(204);
    expect((await b.client.get("/api/v1/me")).statusCode).toBe(200);
    await signInAgain(b.email, b.password);
    await signInAgain(a.email, "a brand new passphrase");
  });
});
