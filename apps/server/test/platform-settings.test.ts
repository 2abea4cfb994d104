import { servicesOf } from "@reef/server";
import { ApiClient, buildTestApp, type SmtpStandIn, signUp, startSmtpStandIn, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A local mail relay that wants a user name and password, as most do.
const SMTP_PASSWORD = "smtp-pass-canary-7f3e";
let smtp: SmtpStandIn;

let t: TestApp;
let operator: Awaited<ReturnType<typeof signUp>>;
beforeAll(async () => {
  smtp = await startSmtpStandIn({ auth: { username: "reef", password: SMTP_PASSWORD } });
  t = await buildTestApp();
  operator = await signUp(t.app, { email: "first@example.test" });
});
afterAll(async () => {
  await t.close();
  await smtp.close();
});

const emailSettings = (over: Record<string, unknown> = {}) => ({
  host: "127.0.0.1",
  port: smtp.port,
  security: "none",
  username: "reef",
  password: SMTP_PASSWORD,
  from: "Reef <reef@example.test>",
  ...over,
});

function linkIn(raw: string): string | undefined {
  return raw.replace(/=\r?\n/g, "").match(/(https?:\/\/[^\s]+\/invites\/ri_[A-Za-z0-9_-]+)/)?.[1];
}

describe("platform settings", () => {
  it("are for operators only", async () => {
    const user = await signUp(t.app);
    expect((await user.client.get("/api/v1/admin/settings")).statusCode).toBe(403);
    expect((await user.client.patch("/api/v1/admin/settings", { publicUrl: "https://evil.example" })).statusCode).toBe(
      403,
    );
    expect((await user.client.post("/api/v1/admin/settings/test-email", {})).statusCode).toBe(403);
    expect((await new ApiClient(t.app).get("/api/v1/admin/settings")).statusCode).toBe(401);
    const key = await user.client.post(`/api/v1/workspaces/${user.workspaceId}/api-keys`, {
      name: "k",
      role: "admin",
    });
    const bearer = new ApiClient(t.app, { bearer: key.json().key });
    expect([401, 403]).toContain((await bearer.patch("/api/v1/admin/settings", { publicUrl: null })).statusCode);
    // Nothing changed.
    expect((await operator.client.get("/api/v1/admin/settings")).json().publicUrl.source).toBe("default");
  });

  it("start with the first-run wizard pending and resume where it was left", async () => {
    const fresh = (await operator.client.get("/api/v1/admin/settings")).json();
    expect(fresh.setup).toEqual({ completed: false, step: 0 });
    expect(fresh.publicUrl).toEqual({ value: "http://127.0.0.1:7420", source: "default" });
    expect(fresh.email).toMatchObject({ enabled: false, source: "default", passwordSet: false });
    expect(fresh.runtimeIdleTimeoutMinutes).toEqual({ value: 240, source: "default" });
    expect(fresh.runtimePauseAfterMinutes).toEqual({ value: 10, source: "default" });
    const saved = await operator.client.patch("/api/v1/admin/settings", { setupStep: 2 });
    expect(saved.statusCode).toBe(200);
    expect((await operator.client.get("/api/v1/admin/settings")).json().setup).toEqual({ completed: false, step: 2 });
  });

  it("a new public URL reaches invite links at once, without a restart, and is audited", async () => {
    const res = await operator.client.patch("/api/v1/admin/settings", { publicUrl: "https://reef.example.org/" });
    expect(res.statusCode).toBe(200);
    expect(res.json().publicUrl).toEqual({ value: "https://reef.example.org", source: "settings" });
    // Started on http: secure cookies and HSTS need a restart to follow.
    expect(res.json().restartRequired).toBe(true);
    const invite = await operator.client.post(`/api/v1/workspaces/${operator.workspaceId}/invites`, {
      email: "someone@example.test",
      role: "member",
    });
    expect(invite.json().url).toMatch(/^https:\/\/reef\.example\.org\/invites\/ri_/);
    const audit = (await operator.client.get("/api/v1/admin/audit?action=platform.settings_update")).json();
    expect(audit.items[0].details).toMatchObject({
      changed: ["publicUrl"],
      publicUrl: { from: null, to: "https://reef.example.org" },
    });
  });

  it("refuses bad input with field errors, and nothing is saved", async () => {
    for (const body of [
      { publicUrl: "ftp://reef.example.org" },
      { publicUrl: "not a url" },
      { runtimeIdleTimeoutMinutes: 0 },
      { runtimeIdleTimeoutMinutes: 99999 },
      { runtimePauseAfterMinutes: -1 },
      { runtimePauseAfterMinutes: 2.5 },
      { email: emailSettings({ host: "smtp://mail.example.org" }) },
      { email: emailSettings({ port: 70000 }) },
      { email: emailSettings({ security: "maybe" }) },
      {},
    ]) {
      const res = await operator.client.patch("/api/v1/admin/settings", body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().code).toBe("VALIDATION_FAILED");
    }
    const noPassword = await operator.client.patch("/api/v1/admin/settings", {
      email: emailSettings({ password: undefined }),
    });
    expect(noPassword.statusCode).toBe(400);
    expect(noPassword.json().details).toEqual({ field: "password" });
    const now = (await operator.client.get("/api/v1/admin/settings")).json();
    expect(now.email.enabled).toBe(false);
    expect(now.runtimeIdleTimeoutMinutes.value).toBe(240);
  });

  it("tests a mail server before saving, with the server's own reason when it refuses", async () => {
    const wrong = await operator.client.post("/api/v1/admin/settings/test-email", {
      email: emailSettings({ password: "wrong-password" }),
    });
    expect(wrong.statusCode).toBe(200);
    expect(wrong.json()).toMatchObject({ ok: false, to: "first@example.test" });
    expect(wrong.json().message).toMatch(/535/);
    const right = await operator.client.post("/api/v1/admin/settings/test-email", { email: emailSettings() });
    expect(right.json()).toMatchObject({ ok: true, to: "first@example.test" });
    expect(smtp.received.at(-1)).toMatchObject({ to: ["first@example.test"], user: "reef" });
    // Testing saved nothing.
    expect((await operator.client.get("/api/v1/admin/settings")).json().email.enabled).toBe(false);
  });

  it("a saved mail server sends invites by email from then on; its password never comes back", async () => {
    const res = await operator.client.patch("/api/v1/admin/settings", { email: emailSettings() });
    expect(res.statusCode).toBe(200);
    expect(res.json().email).toMatchObject({
      enabled: true,
      source: "settings",
      host: "127.0.0.1",
      username: "reef",
      passwordSet: true,
    });
    const invite = await operator.client.post(`/api/v1/workspaces/${operator.workspaceId}/invites`, {
      email: "mailed@example.test",
      role: "viewer",
    });
    expect(invite.json()).toMatchObject({ delivery: "email" });
    expect(invite.json().url).toBeUndefined();
    const mail = smtp.received.find((m) => m.to.includes("mailed@example.test"));
    expect(mail && linkIn(mail.raw)).toMatch(/^https:\/\/reef\.example\.org\/invites\//);

    // Changing other fields without a password keeps the stored one.
    const keep = await operator.client.patch("/api/v1/admin/settings", {
      email: emailSettings({ password: undefined, from: "Reef <noreply@example.test>" }),
    });
    expect(keep.json().email).toMatchObject({ passwordSet: true, from: "Reef <noreply@example.test>" });
    expect((await operator.client.post("/api/v1/admin/settings/test-email", {})).json().ok).toBe(true);

    for (const body of [
      (await operator.client.get("/api/v1/admin/settings")).body,
      (await operator.client.get("/api/v1/admin/audit?limit=200")).body,
    ]) {
      expect(body).not.toContain(SMTP_PASSWORD);
    }
    const stored = await t.db.owner.query("select smtp_password_sealed from platform_settings");
    expect(stored.rows[0].smtp_password_sealed).toMatch(/\S/);
    expect(JSON.stringify(stored.rows)).not.toContain(SMTP_PASSWORD);

    // Turning email off goes back to links shown to the inviter.
    const off = await operator.client.patch("/api/v1/admin/settings", { email: null });
    expect(off.json().email).toMatchObject({ enabled: false, passwordSet: false });
    const linked = await operator.client.post(`/api/v1/workspaces/${operator.workspaceId}/invites`, {
      email: "linked@example.test",
      role: "viewer",
    });
    expect(linked.json()).toMatchObject({ delivery: "link" });
  });

  it("new idle timeouts (pause and stop) are what the runtime manager uses next; 0 never pauses", async () => {
    const services = servicesOf(t.app);
    expect(await services.platformSettings.idleTimeoutMs()).toBe(240 * 60_000);
    expect(await services.platformSettings.pauseAfterMs()).toBe(10 * 60_000);
    const res = await operator.client.patch("/api/v1/admin/settings", {
      runtimeIdleTimeoutMinutes: 3,
      runtimePauseAfterMinutes: 0,
    });
    expect(res.json().runtimeIdleTimeoutMinutes).toEqual({ value: 3, source: "settings" });
    expect(res.json().runtimePauseAfterMinutes).toEqual({ value: 0, source: "settings" });
    expect(await services.platformSettings.idleTimeoutMs()).toBe(3 * 60_000);
    expect(await services.platformSettings.pauseAfterMs()).toBe(0);
    const audit = (await operator.client.get("/api/v1/admin/audit?action=platform.settings_update")).json();
    expect(audit.items[0].details).toMatchObject({ runtimePauseAfterMinutes: { from: null, to: 0 } });
    await operator.client.patch("/api/v1/admin/settings", {
      runtimeIdleTimeoutMinutes: null,
      runtimePauseAfterMinutes: null,
    });
    expect(await services.platformSettings.idleTimeoutMs()).toBe(240 * 60_000);
    expect(await services.platformSettings.pauseAfterMs()).toBe(10 * 60_000);
  });

  it("completing the wizard is recorded once", async () => {
    const done = await operator.client.patch("/api/v1/admin/settings", { setupCompleted: true });
    expect(done.json().setup.completed).toBe(true);
    await operator.client.patch("/api/v1/admin/settings", { setupCompleted: true });
    const audit = (await operator.client.get("/api/v1/admin/audit?action=platform.settings_update&limit=200")).json();
    expect(
      audit.items.filter((e: { details: { changed: string[] } }) => e.details.changed.includes("setupCompleted")),
    ).toHaveLength(1);
  });
});

describe("settings fixed by Reef's configuration", () => {
  let fixed: TestApp;
  let op: Awaited<ReturnType<typeof signUp>>;
  beforeAll(async () => {
    fixed = await buildTestApp({
      config: {
        publicUrl: "https://fixed.example.org",
        runtimeIdleTimeoutMinutes: 42,
        explicitKeys: ["publicUrl", "runtimeIdleTimeoutMinutes"],
      },
    });
    op = await signUp(fixed.app);
  });
  afterAll(() => fixed.close());

  it("show as config and cannot be overridden from the web app", async () => {
    const view = (await op.client.get("/api/v1/admin/settings")).json();
    expect(view.publicUrl).toEqual({ value: "https://fixed.example.org", source: "config" });
    expect(view.runtimeIdleTimeoutMinutes).toEqual({ value: 42, source: "config" });
    expect(view.restartRequired).toBe(false);
    const res = await op.client.patch("/api/v1/admin/settings", { publicUrl: "https://other.example.org" });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: "CONFLICT", details: { settings: ["REEF_PUBLIC_URL"] } });
    expect(res.json().message).toMatch(/REEF_PUBLIC_URL/);
    // What is not fixed still can be.
    expect((await op.client.patch("/api/v1/admin/settings", { setupCompleted: true })).statusCode).toBe(200);
  });
});
