/**
 * "Require SSO" (issue 17): the operator's switch turns password sign-in and sign-up off for everyone
 * but breakglass accounts (`reef create-admin`); switching it off restores them; a value fixed by the
 * configuration (REEF_REQUIRE_SSO) shows as such and cannot be changed in the admin page.
 */
import { servicesOf } from "@reef/server";
import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PASSWORD = "correct horse battery";
const cli = { actor: { kind: "system" as const, name: "reef create-admin" } };

async function login(app: TestApp["app"], email: string, password = PASSWORD) {
  const client = new ApiClient(app);
  const res = await client.post("/api/v1/auth/login", { email, password });
  return { client, res };
}

describe("require SSO, switched by the operator", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  it("refuses password sign-in (audited) and sign-up for normal accounts, keeps breakglass, and switches back", async () => {
    const operator = await signUp(t.app, { name: "Operator" });
    const normal = await signUp(t.app, { name: "Norm" });
    const breakglassEmail = `breakglass-${Date.now()}@example.test`;
    await servicesOf(t.app).identity.ensureAdmin(cli, {
      email: breakglassEmail,
      name: "Breakglass",
      password: "a long breakglass password",
    });

    const before = (await operator.client.get("/api/v1/admin/settings")).json();
    expect(before.requireSso).toEqual({ value: false, source: "default" });
    // Only operators flip it.
    expect((await normal.client.patch("/api/v1/admin/settings", { requireSso: true })).statusCode).toBe(403);
    const on = await operator.client.patch("/api/v1/admin/settings", { requireSso: true });
    expect(on.statusCode, on.body).toBe(200);
    expect(on.json().requireSso).toEqual({ value: true, source: "settings" });

    const refused = await login(t.app, normal.email);
    expect(refused.res.statusCode).toBe(403);
    expect(refused.res.json()).toMatchObject({
      code: "SSO_REQUIRED",
      message: expect.stringMatching(/single sign-on/),
    });
    expect(refused.client.cookies.has("reef_session")).toBe(false);
    // A wrong password is refused the same way: the answer does not reveal whether it was right.
    expect((await login(t.app, normal.email, "wrong password here")).res.json().code).toBe("SSO_REQUIRED");

    const signup = await new ApiClient(t.app).post("/api/v1/auth/signup", {
      email: `late-${Date.now()}@example.test`,
      password: PASSWORD,
      name: "Late",
    });
    expect(signup.statusCode).toBe(403);
    expect(signup.json().code).toBe("SSO_REQUIRED");

    const glass = await login(t.app, breakglassEmail, "a long breakglass password");
    expect(glass.res.statusCode, glass.res.body).toBe(200);
    expect(glass.res.json().user).toMatchObject({ email: breakglassEmail, platformRole: "super_admin" });
    expect((await glass.client.get("/api/v1/me")).statusCode).toBe(200);

    const audit = await operator.client.get("/api/v1/admin/audit?action=auth.login&limit=100");
    const denied = (audit.json().items as { outcome: string; targetId: string | null; details: unknown }[]).filter(
      (e) => e.outcome === "denied" && e.targetId === normal.user.id,
    );
    expect(denied.length).toBeGreaterThanOrEqual(1);
    expect(denied[0]?.details).toMatchObject({ reason: "sso_required" });
    const changes = await operator.client.get("/api/v1/admin/audit?action=platform.settings_update&limit=10");
    expect(changes.json().items[0].details).toMatchObject({ requireSso: { from: null, to: true } });

    const off = await operator.client.patch("/api/v1/admin/settings", { requireSso: false });
    expect(off.json().requireSso).toEqual({ value: false, source: "settings" });
    const back = await login(t.app, normal.email);
    expect(back.res.statusCode).toBe(200);
    expect(back.res.json().user.email).toBe(normal.email);
    const opened = await new ApiClient(t.app).post("/api/v1/auth/signup", {
      email: `later-${Date.now()}@example.test`,
      password: PASSWORD,
      name: "Later",
    });
    expect(opened.statusCode).toBe(201);
  });
});

describe("require SSO, fixed by the configuration", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ config: { requireSso: true, explicitKeys: ["requireSso"] } });
  });
  afterAll(() => t.close());

  it("shows as set by the configuration and cannot be switched off in the admin page", async () => {
    // The very first account (the operator's) is the one made with a password.
    const operator = await signUp(t.app, { name: "Operator" });
    expect(operator.user.platformRole).toBe("super_admin");
    const settings = (await operator.client.get("/api/v1/admin/settings")).json();
    expect(settings.requireSso).toEqual({ value: true, source: "config" });
    expect(settings.requireTwoFactor).toEqual({ value: false, source: "default" });

    const off = await operator.client.patch("/api/v1/admin/settings", { requireSso: false });
    expect(off.statusCode).toBe(409);
    expect(off.json().message).toMatch(/REEF_REQUIRE_SSO/);
    expect((await operator.client.get("/api/v1/admin/settings")).json().requireSso.value).toBe(true);

    const second = await new ApiClient(t.app).post("/api/v1/auth/signup", {
      email: `second-${Date.now()}@example.test`,
      password: PASSWORD,
      name: "Second",
    });
    expect(second.json().code).toBe("SSO_REQUIRED");
    expect((await login(t.app, operator.email)).res.json().code).toBe("SSO_REQUIRED");
  });
});
