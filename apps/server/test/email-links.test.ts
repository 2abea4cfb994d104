import { createHash } from "node:crypto";
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

// A local SMTP server stands in for the organisation's mail relay.
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

/** Makes a token expire, as time passing would. */
async function expire(token: string) {
  const hash = createHash("sha256").update(token).digest("hex");
  const res = await t.db.owner.query(
    "update auth_tokens set expires_at = now() - interval '1 minute' where token_hash = $1",
    [hash],
  );
  expect(res.rowCount).toBe(1);
}

async function requestMagicLink(browser: ApiClient, email: string) {
  const before = smtp.received.filter((m) => m.to.includes(email)).length;
  const res = await browser.post("/api/v1/auth/magic-link", { email });
  expect(res.statusCode).toBe(202);
  const body = await smtp.waitForMail(email, /\/magic\?token=/, before + 1);
  return tokenIn(body, "magic");
}

describe("magic links", () => {
  it("signs in the browser that asked, once; the mail says who asked and for how long", async () => {
    const { email, user } = await signUp(t.app);
    const browser = new ApiClient(t.app, { ip: "203.0.113.7" });
    const res = await browser.post("/api/v1/auth/magic-link", { email: email.toUpperCase() });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({});
    const cookie = res.cookies.find((c) => c.name === "reef_link");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/api/v1/auth" });
    const mail = await smtp.waitForMail(email, /\/magic\?token=/);
    expect(mail).toContain("http://127.0.0.1:7420/magic?token=rml_");
    expect(mail).toContain("203.0.113.7");
    expect(mail).toContain("15 minutes");
    expect(mail).toMatch(/If this was not you, ignore this email/);
    const token = tokenIn(mail, "magic");

    const signedIn = await browser.post("/api/v1/auth/magic-link/consume", { token });
    expect(signedIn.statusCode).toBe(200);
    expect(signedIn.json().user).toMatchObject({ id: user.id, email });
    const me = await browser.get("/api/v1/me");
    expect(me.statusCode).toBe(200);
    expect(me.json().user.id).toBe(user.id);
    const sessions = (await browser.get("/api/v1/me/sessions")).json().items;
    expect(sessions.length).toBe(2);

    const again = await browser.post("/api/v1/auth/magic-link/consume", { token });
    expect(again.statusCode).toBe(400);
    expect(again.json()).toMatchObject({ code: "LINK_INVALID" });
    expect(again.json().message).toMatch(/already been used/);

    // Nothing secret is kept in the audit trail.
    const { rows } = await t.db.owner.query("select action, details::text as d from platform_audit_log");
    expect(rows.some((r) => r.action === "auth.login" && r.d.includes("magic_link"))).toBe(true);
    expect(rows.every((r) => !String(r.d).includes(token) && !String(r.d).includes(token.slice(4)))).toBe(true);
  });

  it("refuses the link in another browser, which leaves it usable where it was asked", async () => {
    const { email, user } = await signUp(t.app);
    const asker = new ApiClient(t.app);
    const token = await requestMagicLink(asker, email);
    const elsewhere = new ApiClient(t.app);
    const refused = await elsewhere.post("/api/v1/auth/magic-link/consume", { token });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ code: "LINK_INVALID" });
    expect(refused.json().message).toMatch(/requested in a different browser/);
    expect((await elsewhere.get("/api/v1/me")).statusCode).toBe(401);
    // A browser with a binding cookie of its own is another browser too.
    await elsewhere.post("/api/v1/auth/magic-link", { email: "nobody-else@example.test" });
    expect(elsewhere.cookies.get("reef_link")).toBeDefined();
    expect((await elsewhere.post("/api/v1/auth/magic-link/consume", { token })).statusCode).toBe(400);

    const ok = await asker.post("/api/v1/auth/magic-link/consume", { token });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().user.id).toBe(user.id);
  });

  it("two links asked from one browser both work there", async () => {
    const { email } = await signUp(t.app);
    const browser = new ApiClient(t.app);
    const first = await requestMagicLink(browser, email);
    const second = await requestMagicLink(browser, email);
    expect(first).not.toBe(second);
    expect((await browser.post("/api/v1/auth/magic-link/consume", { token: first })).statusCode).toBe(200);
    expect((await browser.post("/api/v1/auth/magic-link/consume", { token: second })).statusCode).toBe(200);
  });

  it("an expired link says so", async () => {
    const { email } = await signUp(t.app);
    const browser = new ApiClient(t.app);
    const token = await requestMagicLink(browser, email);
    await expire(token);
    const res = await browser.post("/api/v1/auth/magic-link/consume", { token });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "LINK_INVALID" });
    expect(res.json().message).toMatch(/expired/);
    expect((await browser.get("/api/v1/me")).statusCode).toBe(401);
  });

  it("answers an unknown address exactly like a known one, and mails nobody", async () => {
    const { email } = await signUp(t.app);
    const unknown = `nobody-${Date.now()}@example.test`;
    const known = await new ApiClient(t.app).post("/api/v1/auth/magic-link", { email });
    const res = await new ApiClient(t.app).post("/api/v1/auth/magic-link", { email: unknown });
    expect(res.statusCode).toBe(202);
    expect(res.body).toBe(known.body);
    expect(res.cookies.map((c) => c.name)).toEqual(known.cookies.map((c) => c.name));
    await smtp.waitForMail(email, /\/magic\?token=/);
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.received.some((m) => m.to.includes(unknown))).toBe(false);
  });

  it("deactivated accounts get no mail; a made-up token is refused", async () => {
    const { email, user } = await signUp(t.app);
    await t.db.owner.query("update users set deactivated_at = now() where id = $1", [user.id]);
    const res = await new ApiClient(t.app).post("/api/v1/auth/magic-link", { email });
    expect(res.statusCode).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.received.some((m) => m.to.includes(email))).toBe(false);
    const made = await new ApiClient(t.app).post("/api/v1/auth/magic-link/consume", {
      token: "rml_0000000000000000000000000000000000000000000",
    });
    expect(made.statusCode).toBe(400);
    expect(made.json().message).toMatch(/not valid/);
  });
});

describe("password reset", () => {
  it("sets a new password once; every session ends; a weak password does not burn the link", async () => {
    const { email, client, password } = await signUp(t.app);
    const other = new ApiClient(t.app);
    expect((await other.post("/api/v1/auth/login", { email, password })).statusCode).toBe(200);

    const asker = new ApiClient(t.app);
    expect((await asker.post("/api/v1/auth/password-reset", { email })).statusCode).toBe(202);
    const mail = await smtp.waitForMail(email, /\/reset-password\?token=/);
    expect(mail).toContain("1 hour");
    const token = tokenIn(mail, "reset-password");

    const weak = await asker.post("/api/v1/auth/password-reset/complete", { token, password: "short" });
    expect(weak.statusCode).toBe(400);
    expect(weak.json().message).toMatch(/too weak/);

    // Not bound to the browser: people open reset mail on their phone.
    const phone = new ApiClient(t.app);
    const done = await phone.post("/api/v1/auth/password-reset/complete", {
      token,
      password: "a brand new passphrase",
    });
    expect(done.statusCode).toBe(204);
    // No session from it: signing in again also asks for the second factor.
    expect((await phone.get("/api/v1/me")).statusCode).toBe(401);

    expect((await client.get("/api/v1/me")).statusCode).toBe(401);
    expect((await other.get("/api/v1/me")).statusCode).toBe(401);
    const old = await new ApiClient(t.app).post("/api/v1/auth/login", { email, password });
    expect(old.statusCode).toBe(401);
    const fresh = await new ApiClient(t.app).post("/api/v1/auth/login", { email, password: "a brand new passphrase" });
    expect(fresh.statusCode).toBe(200);

    const again = await phone.post("/api/v1/auth/password-reset/complete", {
      token,
      password: "yet another passphrase",
    });
    expect(again.statusCode).toBe(400);
    expect(again.json().message).toMatch(/already been used/);

    const { rows } = await t.db.owner.query(
      "select details::text as d from platform_audit_log where action = 'user.password_reset'",
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => !r.d.includes("passphrase") && !r.d.includes(token.slice(4)))).toBe(true);
  });

  it("a new request ends the older link; an expired link says so; a reset ends magic links", async () => {
    const { email } = await signUp(t.app);
    const browser = new ApiClient(t.app);
    const magic = await requestMagicLink(browser, email);
    await browser.post("/api/v1/auth/password-reset", { email });
    const first = tokenIn(await smtp.waitForMail(email, /\/reset-password\?token=/, 1), "reset-password");
    await browser.post("/api/v1/auth/password-reset", { email });
    const second = tokenIn(await smtp.waitForMail(email, /\/reset-password\?token=/, 2), "reset-password");
    const old = await browser.post("/api/v1/auth/password-reset/complete", {
      token: first,
      password: "a brand new passphrase",
    });
    expect(old.statusCode).toBe(400);
    expect(old.json()).toMatchObject({ code: "LINK_INVALID" });

    await expire(second);
    const expired = await browser.post("/api/v1/auth/password-reset/complete", {
      token: second,
      password: "a brand new passphrase",
    });
    expect(expired.statusCode).toBe(400);
    expect(expired.json().message).toMatch(/expired/);

    await browser.post("/api/v1/auth/password-reset", { email });
    const third = tokenIn(await smtp.waitForMail(email, /\/reset-password\?token=/, 3), "reset-password");
    const ok = await browser.post("/api/v1/auth/password-reset/complete", {
      token: third,
      password: "a brand new passphrase",
    });
    expect(ok.statusCode).toBe(204);
    const magicAfter = await browser.post("/api/v1/auth/magic-link/consume", { token: magic });
    expect(magicAfter.statusCode).toBe(400);
  });

  it("unknown addresses get 202 and no mail; accounts without a password are told to use single sign-on", async () => {
    const unknown = `nobody-${Date.now()}@example.test`;
    const res = await new ApiClient(t.app).post("/api/v1/auth/password-reset", { email: unknown });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({});

    const { email, user } = await signUp(t.app);
    await t.db.owner.query("update users set password_hash = null where id = $1", [user.id]);
    expect((await new ApiClient(t.app).post("/api/v1/auth/password-reset", { email })).statusCode).toBe(202);
    const mail = await smtp.waitForMail(email, /has no password/);
    expect(mail).toMatch(/single sign-on/);
    expect(mail).not.toMatch(/reset-password\?token=/);
    expect(smtp.received.some((m) => m.to.includes(unknown))).toBe(false);
  });
});

describe("without mail configured", () => {
  let bare: TestApp;
  beforeAll(async () => {
    bare = await buildTestApp();
  });
  afterAll(async () => {
    await bare?.close();
  });

  it("magic links and password reset answer 503 with a sentence (for every address alike)", async () => {
    const { email } = await signUp(bare.app);
    for (const [url, body] of [
      ["/api/v1/auth/magic-link", { email }],
      ["/api/v1/auth/magic-link", { email: "nobody@example.test" }],
      ["/api/v1/auth/password-reset", { email }],
    ] as const) {
      const res = await new ApiClient(bare.app).post(url, body);
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: "UNAVAILABLE" });
      expect(res.json().message).toMatch(/no mail server is configured/);
    }
  });
});

describe("single sign-on required", () => {
  let sso: TestApp;
  beforeAll(async () => {
    sso = await buildTestApp({ config: { smtpUrl: smtp.url, requireSso: true } });
  });
  afterAll(async () => {
    await sso?.close();
  });

  it("answers 202 and mails nothing to an account that must use SSO (not saying so to the asker)", async () => {
    // The very first account may be made with a password even when SSO is required.
    const { email } = await signUp(sso.app);
    await sso.db.owner.query("update users set breakglass = false");
    for (const url of ["/api/v1/auth/magic-link", "/api/v1/auth/password-reset"]) {
      const res = await new ApiClient(sso.app).post(url, { email });
      expect(res.statusCode).toBe(202);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.received.some((m) => m.to.includes(email))).toBe(false);
  });
});

describe("limits and the second factor", () => {
  let strict: TestApp;
  beforeAll(async () => {
    strict = await buildTestApp({
      config: {
        smtpUrl: smtp.url,
        requireTwoFactor: true,
        rateLimitAuthEmail: { points: 2, durationSec: 900 },
      },
    });
  });
  afterAll(async () => {
    await strict?.close();
  });

  it("limits requests per address, known or not", async () => {
    for (const email of ["limited@example.test", `nobody-${Date.now()}@example.test`]) {
      const browser = new ApiClient(strict.app);
      expect((await browser.post("/api/v1/auth/magic-link", { email })).statusCode).toBe(202);
      expect((await browser.post("/api/v1/auth/password-reset", { email })).statusCode).toBe(202);
      const third = await browser.post("/api/v1/auth/magic-link", { email });
      expect(third.statusCode).toBe(429);
      expect(third.json().code).toBe("RATE_LIMITED");
    }
    expect(
      (await new ApiClient(strict.app).post("/api/v1/auth/magic-link", { email: "other@example.test" })).statusCode,
    ).toBe(202);
  });

  it("a magic link is a first factor: with two-factor required it leads to the enrolment step, not a session", async () => {
    const { email } = await signUp(strict.app);
    const browser = new ApiClient(strict.app);
    expect((await browser.post("/api/v1/auth/magic-link", { email })).statusCode).toBe(202);
    const token = tokenIn(await smtp.waitForMail(email, /\/magic\?token=/), "magic");
    const res = await browser.post("/api/v1/auth/magic-link/consume", { token });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ next: "two_factor_enrol", challenge: expect.any(String) });
    expect(res.json().user).toBeUndefined();
    expect((await browser.get("/api/v1/me")).statusCode).toBe(401);
  });
});
