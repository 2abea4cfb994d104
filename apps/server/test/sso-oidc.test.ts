/**
 * OpenID Connect single sign-on end to end (issue 17): an operator adds a real OIDC provider
 * (`oidc-provider` on 127.0.0.1) through the admin API; people sign in at its form in a real browser
 * and land in Reef signed in, placed in the provider's team workspace with the role their groups map to.
 * Refused: other email domains (with the reason on /signin), a tampered state, a state from another
 * browser's flow, an id token with another nonce. An existing password account links only with its
 * password. The client secret never leaves Reef.
 */
import { randomBytes } from "node:crypto";
import { createPlatformSealer, providerSecretAad, resealPlatformSecrets } from "@reef/core";
import { schema, withScope } from "@reef/db";
import { buildApp, DEFAULT_WEB_DIST } from "@reef/server";
import {
  ApiClient,
  createTestDatabase,
  launchChromium,
  listenLocal,
  type OidcStandIn,
  signUp,
  silentLogger,
  startOidcStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const SLUG = "corp";
const PROVIDER_NAME = "Corp SSO";

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let idp: OidcStandIn;
let operator: Awaited<ReturnType<typeof signUp>>;
let owner: Awaited<ReturnType<typeof signUp>>;
let teamId: string;
let providerId: string;
const contexts: BrowserContext[] = [];
const rootKey = randomBytes(32);

const users = {
  ada: { email: "ada@example.test", name: "Ada Admin", groups: ["reef-admins", "staff"] },
  bob: { email: "bob@example.test", name: "Bob Plain", groups: ["staff"] },
  mallory: { email: "mallory@evil.test", name: "Mallory", groups: ["reef-admins"] },
  pat: { email: "pat@example.test", name: "Pat Password", groups: [] },
  nina: { email: "nina@example.test", name: "Nina Nonce", groups: [] },
  tess: { email: "tess@example.test", name: "Tess Tamper", groups: [] },
};

async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  contexts.push(context);
  return { context, page: await context.newPage() };
}

/** Starts at Reef, signs in at the IdP's form as `login`; resolves once the browser is back on Reef's pages. */
async function signInAtIdp(page: Page, login: string, next = "/") {
  await page.goto(`${base}/api/v1/auth/sso/${SLUG}/start?next=${encodeURIComponent(next)}`);
  expect(page.url().startsWith(idp.issuer)).toBe(true);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("anything");
  await page.getByRole("button", { name: "Sign-in" }).click();
  await page.waitForURL((u) => u.origin === base && !u.pathname.startsWith("/api/"));
  return new URL(page.url());
}

/** Signs in at the IdP but the IdP holds its redirect back to Reef. @returns the callback URL it would have sent. */
async function callbackUrlFor(page: Page, login: string): Promise<string> {
  const held = idp.holdNextCallback();
  await page.goto(`${base}/api/v1/auth/sso/${SLUG}/start?next=/`);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("anything");
  await page.getByRole("button", { name: "Sign-in" }).click();
  await page.getByText("held").waitFor();
  return held;
}

async function meOf(context: BrowserContext) {
  const res = await context.request.get(`${base}/api/v1/me`);
  return { status: res.status(), body: res.ok() ? await res.json() : undefined };
}

async function teamRoleOf(email: string): Promise<string | undefined> {
  const res = await owner.client.get(`/api/v1/workspaces/${teamId}/members`);
  expect(res.statusCode).toBe(200);
  return (res.json().items as { email: string; role: string }[]).find((m) => m.email === email)?.role;
}

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig({ ssoAllowHttp: true, secretKey: rootKey }),
    database: db.database,
    logger: silentLogger,
    webDistDir: DEFAULT_WEB_DIST,
  });
  base = await listenLocal(app);
  operator = await signUp(app, { name: "Operator" });
  expect(operator.user.platformRole).toBe("super_admin");
  // The redirect URI Reef sends is built from its public URL.
  expect((await operator.client.patch("/api/v1/admin/settings", { publicUrl: base })).statusCode).toBe(200);
  owner = await signUp(app, { name: "Olivia Owner", email: "olivia@example.test" });
  const team = await owner.client.post("/api/v1/workspaces", { name: "Acme Team" });
  expect(team.statusCode).toBe(201);
  teamId = team.json().id;
  await signUp(app, { name: "Pat Password", email: users.pat.email });
  idp = await startOidcStandIn({ redirectUris: [`${base}/api/v1/auth/sso/${SLUG}/callback`], users });
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await idp?.close();
  await stopTestApp(app, db);
}, 60_000);

describe("identity providers: the operators' admin API", () => {
  it("only operators manage providers; an issuer that does not answer is refused with the reason", async () => {
    const body = {
      kind: "oidc",
      slug: SLUG,
      name: PROVIDER_NAME,
      issuer: idp.issuer,
      clientId: idp.clientId,
      clientSecret: idp.clientSecret,
      scopes: ["openid", "email", "profile", "groups"],
      allowedDomains: ["example.test"],
      defaultWorkspaceId: teamId,
      groupClaim: "groups",
      groupRoles: { "reef-admins": "admin" },
    };
    expect((await owner.client.post("/api/v1/admin/identity-providers", body)).statusCode).toBe(403);
    expect((await owner.client.get("/api/v1/admin/identity-providers")).statusCode).toBe(403);

    const unreachable = await operator.client.post("/api/v1/admin/identity-providers", {
      ...body,
      issuer: "http://127.0.0.1:9/nothing-here",
    });
    expect(unreachable.statusCode).toBe(400);
    expect(unreachable.json().code).toBe("SSO_FAILED");
    expect(unreachable.json().message).toMatch(/Could not read the OpenID configuration of http:\/\/127\.0\.0\.1:9/);

    const missingWorkspace = await operator.client.post("/api/v1/admin/identity-providers", {
      ...body,
      defaultWorkspaceId: "00000000-0000-4000-8000-000000000000",
    });
    expect(missingWorkspace.statusCode).toBe(404);

    const created = await operator.client.post("/api/v1/admin/identity-providers", body);
    expect(created.statusCode).toBe(201);
    const view = created.json();
    providerId = view.id;
    expect(view.callbackUrl).toBe(`${base}/api/v1/auth/sso/${SLUG}/callback`);
    expect(view.oidc).toEqual({
      issuer: idp.issuer,
      clientId: idp.clientId,
      scopes: body.scopes,
      hasClientSecret: true,
    });
    expect(created.body).not.toContain(idp.clientSecret);

    const again = await operator.client.post("/api/v1/admin/identity-providers", body);
    expect(again.statusCode).toBe(409);

    const patched = await operator.client.patch(`/api/v1/admin/identity-providers/${providerId}`, {
      kind: "oidc",
      clientSecret: idp.clientSecret,
      name: PROVIDER_NAME,
    });
    expect(patched.statusCode).toBe(200);
    expect(
      (await owner.client.patch(`/api/v1/admin/identity-providers/${providerId}`, { kind: "oidc" })).statusCode,
    ).toBe(403);
    expect((await owner.client.delete(`/api/v1/admin/identity-providers/${providerId}`)).statusCode).toBe(403);

    const list = await operator.client.get("/api/v1/admin/identity-providers");
    expect(list.json().items.map((p: { slug: string }) => p.slug)).toEqual([SLUG]);
    const one = await operator.client.get(`/api/v1/admin/identity-providers/${providerId}`);
    for (const res of [list, one, patched]) expect(res.body).not.toContain(idp.clientSecret);

    const audit = await operator.client.get("/api/v1/admin/audit?limit=200");
    const entries = audit.json().items as { action: string; details: Record<string, unknown> }[];
    const create = entries.find((e) => e.action === "identity_provider.create");
    expect(create?.details).toMatchObject({ slug: SLUG, kind: "oidc" });
    expect(create?.details.fields).toContain("clientSecret");
    expect(entries.some((e) => e.action === "identity_provider.update")).toBe(true);
    expect(audit.body).not.toContain(idp.clientSecret);

    // The sign-in page lists it, to anyone.
    const state = await new ApiClient(app).get("/api/v1/auth/state");
    expect(state.statusCode).toBe(200);
    expect(state.json().providers).toContainEqual({ slug: SLUG, name: PROVIDER_NAME, kind: "oidc" });
  });
});

describe("signing in with OIDC in a real browser", () => {
  it("a new person lands in Reef signed in, in the team workspace with the role their group maps to", async () => {
    const { context, page } = await newPage();
    const landed = await signInAtIdp(page, "ada", "/");
    expect(landed.pathname).not.toBe("/signin");
    const me = await meOf(context);
    expect(me.status).toBe(200);
    expect(me.body.user.email).toBe(users.ada.email);
    expect(me.body.user.name).toBe(users.ada.name);
    expect(await teamRoleOf(users.ada.email)).toBe("admin");
    // PKCE with S256 and a nonce were sent; the state is Reef's single-use token.
    const auth = idp.authorizations.at(-1);
    expect(auth?.get("code_challenge_method")).toBe("S256");
    expect(auth?.get("nonce")).toBeTruthy();
    expect(auth?.get("state")).toMatch(/^rss_/);

    const identities = await context.request.get(`${base}/api/v1/me/identities`);
    expect(identities.status()).toBe(200);
    expect((await identities.json()).items).toMatchObject([
      { provider: { slug: SLUG, name: PROVIDER_NAME, kind: "oidc" }, email: users.ada.email },
    ]);
  });

  it("someone without a mapped group gets the provider's default role", async () => {
    const { context, page } = await newPage();
    await signInAtIdp(page, "bob");
    expect((await meOf(context)).body.user.email).toBe(users.bob.email);
    expect(await teamRoleOf(users.bob.email)).toBe("member");
  });

  it("an account at another domain is refused, and /signin says why", async () => {
    const { context, page } = await newPage();
    const landed = await signInAtIdp(page, "mallory");
    expect(landed.pathname).toBe("/signin");
    expect(landed.searchParams.get("error")).toBe("SSO_DOMAIN_NOT_ALLOWED");
    expect(landed.searchParams.get("message")).toBe(
      `Accounts at evil.test may not sign in with ${PROVIDER_NAME}. Ask your administrator.`,
    );
    expect((await meOf(context)).status).toBe(401);
    await page
      .locator("[role=alert]")
      .filter({ hasText: `Accounts at evil.test may not sign in with ${PROVIDER_NAME}` })
      .waitFor({ timeout: 10_000 });
  });

  it("a callback with a tampered state is refused and signs no one in", async () => {
    const { context, page } = await newPage();
    const url = new URL(await callbackUrlFor(page, "tess"));
    const state = url.searchParams.get("state") ?? "";
    const last = state.at(-1) === "A" ? "B" : "A";
    url.searchParams.set("state", `${state.slice(0, -1)}${last}`);
    await page.goto(url.href);
    const landed = new URL(page.url());
    expect(landed.pathname).toBe("/signin");
    expect(["SSO_FAILED", "LINK_INVALID"]).toContain(landed.searchParams.get("error"));
    expect((await meOf(context)).status).toBe(401);
    expect(await teamRoleOf(users.tess.email)).toBeUndefined();
  });

  it("a callback replayed in another browser (its state belongs to another flow) is refused", async () => {
    const first = await newPage();
    const stolen = await callbackUrlFor(first.page, "tess");
    const second = await newPage();
    // The other browser has a sign-in of its own in flight (its own cookie), then is sent the stolen response.
    await second.page.goto(`${base}/api/v1/auth/sso/${SLUG}/start?next=/`);
    await second.page.goto(stolen);
    const landed = new URL(second.page.url());
    expect(landed.pathname).toBe("/signin");
    expect(landed.searchParams.get("error")).toBe("LINK_INVALID");
    expect(landed.searchParams.get("message")).toMatch(/different browser/);
    expect((await meOf(second.context)).status).toBe(401);
    expect(await teamRoleOf(users.tess.email)).toBeUndefined();
  });

  it("an id token carrying another nonce is refused", async () => {
    const { context, page } = await newPage();
    idp.tamperNextNonce();
    const landed = await signInAtIdp(page, "nina");
    expect(landed.pathname).toBe("/signin");
    expect(landed.searchParams.get("error")).toBe("SSO_FAILED");
    expect(landed.searchParams.get("message")).toMatch(/could not be verified/);
    expect((await meOf(context)).status).toBe(401);
    expect(await teamRoleOf(users.nina.email)).toBeUndefined();
  });

  it("an existing password account must prove its password once to link, then signs in with the provider", async () => {
    const { context, page } = await newPage();
    const landed = await signInAtIdp(page, "pat");
    expect(landed.pathname).toBe("/signin/link");
    expect(landed.searchParams.get("email")).toBe(users.pat.email);
    expect(landed.searchParams.get("provider")).toBe(PROVIDER_NAME);
    const token = landed.searchParams.get("token") ?? "";
    expect(token).toMatch(/^rsl_/);
    expect((await meOf(context)).status).toBe(401);

    const wrong = await context.request.post(`${base}/api/v1/auth/sso/link`, {
      data: { token, password: "not the password" },
    });
    expect(wrong.status()).toBe(401);
    expect((await meOf(context)).status).toBe(401);

    const right = await context.request.post(`${base}/api/v1/auth/sso/link`, {
      data: { token, password: "correct horse battery" },
    });
    expect(right.status()).toBe(200);
    expect((await right.json()).user.email).toBe(users.pat.email);
    expect((await meOf(context)).body.user.email).toBe(users.pat.email);
    // Single use.
    const replay = await context.request.post(`${base}/api/v1/auth/sso/link`, {
      data: { token, password: "correct horse battery" },
    });
    expect(replay.ok()).toBe(false);

    // From now on the provider signs Pat in directly.
    const fresh = await newPage();
    const again = await signInAtIdp(fresh.page, "pat");
    expect(again.pathname).not.toMatch(/^\/signin/);
    expect((await meOf(fresh.context)).body.user.email).toBe(users.pat.email);
  });

  it("start refuses an unknown provider and keeps `next` on Reef", async () => {
    const unknown = await owner.client.get("/api/v1/auth/sso/nope/start");
    expect(unknown.statusCode).toBe(404);
    const { context, page } = await newPage();
    const landed = await signInAtIdp(page, "bob", "//evil.test/steal");
    expect(landed.origin).toBe(base);
    expect(landed.pathname).toBe("/");
    expect((await meOf(context)).status).toBe(200);
  });
});

describe("root key rotation", () => {
  it("`reef rotate-keys` reseals the client secret under the new root key", async () => {
    const newKey = randomBytes(32);
    const resealed = await resealPlatformSecrets(db.database.db, { current: newKey, previous: [rootKey] });
    expect(resealed).toBeGreaterThanOrEqual(1);
    const [row] = await withScope(db.database.db, { platform: true }, (tx) =>
      tx.select().from(schema.identityProviders),
    );
    expect(row?.secretSealed).toBeTruthy();
    expect(row?.secretSealed).not.toContain(idp.clientSecret);
    // Opens with the new key alone; the old key alone no longer does.
    expect(createPlatformSealer(newKey).open(row?.secretSealed ?? "", providerSecretAad(providerId))).toBe(
      idp.clientSecret,
    );
    expect(() => createPlatformSealer(rootKey).open(row?.secretSealed ?? "", providerSecretAad(providerId))).toThrow();
  });
});
