/**
 * Browser test of signing in and the account page, from a fresh install: the first visit logs no failed
 * request, lands on "Create the first account"; sign out and in; rename, change the password (other
 * sessions end), the session list, signing out other sessions; two-factor set up by scanning (here: reading
 * the setup key and computing the code, as an authenticator app does) and then asked for at sign-in.
 */
import { mkdirSync } from "node:fs";
import { buildApp, DEFAULT_WEB_DIST } from "@reef/server";
import {
  ApiClient,
  createBrowserWatch,
  createTestDatabase,
  launchChromium,
  linkToken,
  listenLocal,
  SCREENSHOTS_DIR as SHOTS,
  type SmtpStandIn,
  shotIfFailed,
  silentLogger,
  startSmtpStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
// The authenticator app's side of TOTP (the library Reef checks codes with).
import { generate } from "otplib";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let page: Page;

const EMAIL = "ada@example.test";
let password = "correct horse battery";
const NEW_PASSWORD = "staple grid lantern 42";
let totpSecret = "";
let recoveryCodes: string[] = [];
/** The organisation's mail relay: reset and sign-in links arrive here. */
let smtp: SmtpStandIn;

// Every console error, and every request the browser saw fail or answer 4xx/5xx: a journey must have none.
const { watch, shot, consoleErrors, a11yViolations } = createBrowserWatch();
const failedRequests: string[] = [];

function watchRequests(p: Page, who: string): Page {
  p.on("response", (r) => {
    if (r.status() >= 400) failedRequests.push(`${who}: ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  p.on("requestfailed", (r) => failedRequests.push(`${who}: failed ${r.method()} ${r.url()}`));
  return p;
}

/** A code as the authenticator app shows it, for the step `offset` steps from now. */
function totpCode(offset = 0): Promise<string> {
  return generate({
    secret: totpSecret,
    algorithm: "sha1",
    digits: 6,
    period: 30,
    epoch: Math.floor(Date.now() / 1000) + offset * 30,
  });
}

/** Another device signed in to the same account (through the API, as a second browser would). */
async function otherDevice(pass: string): Promise<ApiClient> {
  const client = new ApiClient(app, { ip: "198.51.100.7" });
  const res = await client.request(
    "POST",
    "/api/v1/auth/login",
    { email: EMAIL, password: pass },
    {
      "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    },
  );
  expect(res.statusCode, res.body).toBe(200);
  return client;
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  smtp = await startSmtpStandIn();
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig({ smtpUrl: smtp.url, smtpFrom: "Reef <reef@example.test>" }),
    database: db.database,
    logger: silentLogger,
    webDistDir: DEFAULT_WEB_DIST,
  });
  base = await listenLocal(app);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stopTestApp(app, db);
  await smtp?.close();
}, 60_000);

/** The link to `/<path>?token=…` in the newest mail to `to` (mail goes out in the background). */
async function linkInMail(to: string, path: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const token = smtp
      .mailsTo(to)
      .map((b) => linkToken(b, path))
      .filter(Boolean)
      .at(-1);
    if (token) return `${base}/${path}?token=${token}`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no /${path} link mailed to ${to}`);
}

afterEach(async (ctx) => shotIfFailed(ctx, { auth: page }));

describe("signing in and the account page, in a real browser", { timeout: 90_000 }, () => {
  it("a fresh install's first page asks for the first account, and logs no error", async () => {
    page = watchRequests(watch(await (await browser.newContext()).newPage(), "ada"), "ada");
    await page.goto(`${base}/`);
    await page.getByRole("heading", { name: "Create the first account" }).waitFor();
    await page.getByText(/becomes its operator/).waitFor();
    await page.waitForLoadState("networkidle");
    expect(failedRequests).toEqual([]);
    expect(consoleErrors).toEqual([]);
    await shot(page, "auth-01-first-account");

    await page.getByLabel("Your name").fill("Ada Owner");
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(/\/admin\/setup$/);
  });

  it("a visitor who never had a session is not told one ended; sign out and in again", async () => {
    const stranger = watchRequests(watch(await (await browser.newContext()).newPage(), "stranger"), "stranger");
    await stranger.goto(`${base}/admin`);
    await stranger.getByRole("heading", { name: "Sign in to Reef" }).waitFor();
    // Sent back here after signing in.
    expect(new URL(stranger.url()).searchParams.get("next")).toBe("/admin");
    expect(await stranger.getByText(/session has ended/).count()).toBe(0);
    await stranger.waitForLoadState("networkidle");
    await stranger.context().close();

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByRole("heading", { name: "Sign in to Reef" }).waitFor();
    expect(await page.getByText(/session has ended/).count()).toBe(0);
    await shot(page, "auth-02-sign-in");
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("link", { name: /Your account/ }).waitFor();
    expect(failedRequests).toEqual([]);
  });

  it("renames, changes the password (other devices signed out) and lists sessions", async () => {
    await page.getByRole("link", { name: /Your account/ }).click();
    await page.getByRole("heading", { name: "Your account" }).waitFor();

    const profile = page.getByRole("region", { name: "Profile" });
    await profile.getByLabel("Name").fill("Ada Lovelace");
    await profile.getByRole("button", { name: "Save name" }).click();
    await profile.getByText("Your name is saved.").waitFor();
    await page.getByRole("link", { name: "Your account: Ada Lovelace" }).waitFor();

    const other = await otherDevice(password);
    const passwordCard = page.getByRole("region", { name: "Password" });
    await passwordCard.getByLabel("Current password").fill(password);
    await passwordCard.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
    await passwordCard.getByLabel("Confirm new password").fill(NEW_PASSWORD);
    await passwordCard.getByRole("button", { name: "Change password" }).click();
    await passwordCard.getByText(/Every other device was signed out/).waitFor();
    password = NEW_PASSWORD;
    expect((await other.get("/api/v1/me")).statusCode).toBe(401);

    // A new device signs in; the list shows it next to this one, then "sign out of other sessions" ends it.
    const laptop = await otherDevice(password);
    await page.reload();
    const sessions = page.getByRole("region", { name: "Where you're signed in" });
    await sessions.getByText("Firefox on Linux").waitFor();
    await sessions.getByText("This device").waitFor();
    await expect.poll(() => sessions.getByRole("listitem").count()).toBe(2);
    // Each says how it signed in: both with a password.
    expect(await sessions.getByText(/ · Password$/).count()).toBe(2);
    await shot(page, "auth-03-account");
    await sessions.getByRole("button", { name: "Sign out of all other sessions" }).click();
    await sessions.getByText("Every other device was signed out.").waitFor();
    await expect.poll(() => sessions.getByRole("listitem").count()).toBe(1);
    expect((await laptop.get("/api/v1/me")).statusCode).toBe(401);
    expect(failedRequests).toEqual([]);
  });

  it("sets up two-factor, and sign-in then asks for a code", async () => {
    const card = page.getByRole("region", { name: "Two-factor authentication" });
    await card.getByRole("button", { name: "Set up two-factor authentication" }).click();
    await card.getByLabel("Current password").fill(password);
    await card.getByRole("button", { name: "Continue" }).click();
    await card.getByRole("img", { name: /QR code/ }).waitFor();
    totpSecret = (await card.locator(".totp-secret").textContent())?.trim() ?? "";
    expect(totpSecret).toMatch(/^[A-Z2-7]{16,}$/);
    await shot(page, "auth-04-two-factor-setup");
    await card.getByLabel("6-digit code").fill(await totpCode());
    await card.getByRole("button", { name: "Turn on two-factor authentication" }).click();
    const codes = page.getByRole("list", { name: "Recovery codes" });
    await codes.waitFor();
    expect(await codes.getByRole("listitem").count()).toBe(10);
    recoveryCodes = (await codes.getByRole("listitem").allTextContents()).map((c) => c.trim());
    await shot(page, "auth-05-recovery-codes");
    await page.getByRole("button", { name: "I've saved them" }).click();
    await card.getByText("10 recovery codes left.").waitFor();

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
    const codeInput = page.getByLabel("6-digit code");
    expect(await codeInput.getAttribute("autocomplete")).toBe("one-time-code");
    await page.getByRole("button", { name: "Use a recovery code instead" }).waitFor();
    await shot(page, "auth-06-code-step");
    // The code used to turn it on is spent: the app shows the next step's code by now (or soon).
    await codeInput.fill(await totpCode(1));
    await page.getByRole("button", { name: "Verify" }).click();
    await page.getByRole("link", { name: /Your account/ }).waitFor();
    // The account page says how this session signed in.
    await page.getByRole("link", { name: /Your account/ }).click();
    await page
      .getByRole("region", { name: "Where you're signed in" })
      .getByRole("listitem")
      .filter({ hasText: "This device" })
      .getByText(/ · Password \+ authenticator$/)
      .waitFor();
    expect(failedRequests).toEqual([]);
  });

  it("someone whose session ended (revoked elsewhere) is told so, once", async () => {
    await db.owner.query("update sessions set revoked_at = now() where revoked_at is null");
    await page.reload();
    await page.getByText("Your session has ended. Sign in again to carry on.").waitFor();
    await page.reload();
    await page.getByRole("heading", { name: "Sign in to Reef" }).waitFor();
    expect(await page.getByText(/session has ended/).count()).toBe(0);
    expect(failedRequests).toEqual([]);
  });

  it("forgot password: a mailed link sets a new one; a recovery code stands in for the app", async () => {
    await page.goto(`${base}/signin`);
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByRole("link", { name: "Forgot password?" }).click();
    expect(await page.getByLabel("Email").inputValue()).toBe(EMAIL);
    await page.getByRole("button", { name: "Send reset link" }).click();
    await page.getByRole("heading", { name: "Check your email" }).waitFor();
    await page.goto(await linkInMail(EMAIL, "reset-password"));
    password = "new staple lantern grid 7";
    await page.getByLabel("New password", { exact: true }).fill(password);
    await page.getByLabel("Confirm new password").fill(password);
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.getByRole("heading", { name: "Your password is changed" }).waitFor();
    await page.getByRole("link", { name: "Sign in" }).click();
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("button", { name: "Use a recovery code instead" }).click();
    await page.getByLabel("Recovery code").fill(recoveryCodes[0] ?? "");
    await page.getByRole("button", { name: "Verify" }).click();
    await page.getByRole("link", { name: /Your account/ }).waitFor();
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByRole("heading", { name: "Sign in to Reef" }).waitFor();
    expect(failedRequests).toEqual([]);
  });

  it("email me a sign-in link: the link signs in this browser (after the second step)", async () => {
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByRole("button", { name: "Email me a sign-in link" }).click();
    await page.getByRole("heading", { name: "Check your email" }).waitFor();
    const link = await linkInMail(EMAIL, "magic");
    await page.goto(link);
    await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
    await page.getByRole("button", { name: "Use a recovery code instead" }).click();
    await page.getByLabel("Recovery code").fill(recoveryCodes[1] ?? "");
    await page.getByRole("button", { name: "Verify" }).click();
    await page.getByRole("link", { name: /Your account/ }).waitFor();
    expect(failedRequests).toEqual([]);

    // Spent: opening it again says so, with the way to a new one (the refusal is the expected 400).
    const again = await (await browser.newContext()).newPage();
    await again.goto(link);
    await again.getByRole("heading", { name: "This sign-in link cannot be used" }).waitFor();
    await again.getByRole("alert").waitFor();
    await again.getByRole("link", { name: "Request a new link" }).waitFor();
    await again.context().close();
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByRole("heading", { name: "Sign in to Reef" }).waitFor();
  });

  it("offers the organisation's single sign-on first, and shows a refused one as a clear page", async () => {
    await db.owner.query(
      `insert into identity_providers (kind, slug, name, config)
       values ('oidc', 'acme', 'Acme SSO', '{"issuer":"https://idp.example","clientId":"reef","scopes":[]}')`,
    );
    await page.goto(`${base}/signin?next=%2Faccount`);
    const sso = page.getByRole("link", { name: "Continue with Acme SSO" });
    await sso.waitFor();
    expect(await sso.getAttribute("href")).toBe("/api/v1/auth/sso/acme/start?next=%2Faccount");
    await page.getByLabel("Password").waitFor();
    await shot(page, "auth-07-sign-in-sso");

    await page.goto(
      `${base}/signin?error=SSO_DOMAIN_NOT_ALLOWED&message=${encodeURIComponent("Only example.org accounts may sign in here.")}`,
    );
    await page.getByRole("heading", { name: "Sign-in didn't work" }).waitFor();
    expect(await page.getByRole("alert").textContent()).toContain("Only example.org accounts may sign in here.");
    await shot(page, "auth-08-sso-error");
    await page.getByRole("button", { name: "Try again" }).click();
    await page.getByRole("heading", { name: "Sign in to Reef" }).waitFor();
    expect(failedRequests).toEqual([]);
  });

  it("logged no console error and no accessibility violation on the way", () => {
    expect(consoleErrors).toEqual([]);
    expect(a11yViolations).toEqual([]);
  });
});
