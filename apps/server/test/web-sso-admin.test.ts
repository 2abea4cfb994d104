/**
 * Single sign-on administration in a real browser (issue 17): the operator adds an OpenID Connect provider on the
 * admin page against a local discovery document (a minimal `/.well-known/openid-configuration` on 127.0.0.1), with
 * its provisioning rules; a bad issuer shows the server's sentence; the redirect URI is shown before and after
 * saving; the client secret never reaches the page; "Require single sign-on" is refused while no provider is
 * enabled, then saved; an operator resets someone's two-factor; a workspace admin requires two-factor for members.
 * No console errors (but the one 400 the bad issuer answers), and axe finds nothing serious.
 */
import { mkdirSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { DEFAULT_WEB_DIST } from "@reef/server";
import {
  ApiClient,
  createBrowserWatch,
  launchChromium,
  listenTestApp,
  type SamlStandIn,
  SCREENSHOTS_DIR as SHOTS,
  shotIfFailed,
  signedInContext,
  signUp,
  startSamlStandIn,
  stopTestApp,
  type TestDatabase,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { generate } from "otplib";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let idp: http.Server;
let saml: SamlStandIn;
let issuer = "";
let acmeWid = "";
let owner: Awaited<ReturnType<typeof signUp>>;
let member: Awaited<ReturnType<typeof signUp>>;
let page: Page;
const CLIENT_SECRET = "oidc-client-secret-web-sso-4242";
// The bad issuer's 400 and the refused two-factor switch's 403 are expected; the browser logs every failed
// request as a console error.
const { watch, shot, audit, consoleErrors, a11yViolations } = createBrowserWatch({ ignore: /status of (400|403)/ });

/** Just enough of an OpenID provider for discovery: its configuration document, under /realms/acme. */
function startDiscovery(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const { port } = server.address() as AddressInfo;
    const iss = `http://127.0.0.1:${port}/realms/acme`;
    if (req.url === "/realms/acme/.well-known/openid-configuration") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          issuer: iss,
          authorization_endpoint: `${iss}/auth`,
          token_endpoint: `${iss}/token`,
          jwks_uri: `${iss}/jwks`,
          userinfo_endpoint: `${iss}/userinfo`,
          response_types_supported: ["code"],
          subject_types_supported: ["public"],
          id_token_signing_alg_values_supported: ["RS256"],
          code_challenge_methods_supported: ["S256"],
        }),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  idp = await startDiscovery();
  saml = await startSamlStandIn();
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/realms/acme`;
  ({ app, db, base } = await listenTestApp({ webDistDir: DEFAULT_WEB_DIST, config: { ssoAllowHttp: true } }));
  browser = await launchChromium();
  // The first account is the operator.
  owner = await signUp(app, { name: "Ada Admin" });
  member = await signUp(app, { name: "Mo Member" });
  // Redirect URIs are built on the public URL: the address the browser uses here.
  const publicUrl = await owner.client.patch("/api/v1/admin/settings", { publicUrl: base });
  expect(publicUrl.statusCode, publicUrl.body).toBe(200);
  const acme = await owner.client.post("/api/v1/workspaces", { name: "Acme" });
  expect(acme.statusCode).toBe(201);
  acmeWid = acme.json().id;
  const context = await signedInContext(browser, base, owner.client, { viewport: { width: 1280, height: 900 } });
  page = watch(await context.newPage(), "operator");
}, 60_000);

afterEach((ctx) => shotIfFailed(ctx, { admin: page }));

afterAll(async () => {
  await browser?.close();
  await stopTestApp(app, db);
  await new Promise((r) => idp?.close(r));
  await saml?.close();
}, 60_000);

const providers = async () => (await owner.client.get("/api/v1/admin/identity-providers")).json().items;
const ssoSection = () => page.getByRole("region", { name: "Single sign-on" });

describe("single sign-on administration in the browser", () => {
  it("with no provider yet, the list says so and single sign-on cannot be required", async () => {
    await page.goto(`${base}/admin`);
    await ssoSection().getByText("No identity providers yet.").waitFor();
    const requireSso = page.getByLabel("Require single sign-on");
    await requireSso.waitFor();
    expect(await requireSso.isDisabled()).toBe(true);
    await page.getByText("No identity provider is enabled: add or switch one on above first.").waitFor();
    expect(await page.getByLabel("Require two-factor for everyone").isChecked()).toBe(false);
  }, 60_000);

  it("adds an OpenID Connect provider: redirect URI shown first, a bad issuer gets the server's sentence", async () => {
    await page.getByRole("button", { name: "Add provider" }).click();
    await page.getByRole("button", { name: "OpenID Connect" }).click();
    const form = page.getByRole("form", { name: "Add OpenID Connect provider" });
    await form.getByLabel("Button label").fill("Acme SSO");
    // The slug follows the label, and the redirect URI follows the slug, before anything is saved.
    expect(await form.getByLabel("Slug").inputValue()).toBe("acme-sso");
    await form.getByText(`${base}/api/v1/auth/sso/acme-sso/callback`).waitFor();
    expect(await form.getByLabel("Scopes").inputValue()).toBe("openid email profile");
    await form.getByText("How to register Reef at Keycloak").click();
    await form.getByRole("region", { name: "Microsoft Entra ID" }).waitFor();
    await form.screenshot({ path: join(SHOTS, "sso-add-oidc-form.png") });
    await shot(page, "sso-add-oidc");

    await form.getByLabel("Issuer URL").fill(`${issuer.replace("/realms/acme", "")}/nowhere`);
    await form.getByLabel("Client ID").fill("reef");
    await form.getByLabel("Client secret").fill(CLIENT_SECRET);
    await form.getByRole("button", { name: "Add provider" }).click();
    await form
      .getByRole("alert")
      .getByText(/Could not read the OpenID configuration of http:\/\/127\.0\.0\.1:\d+\/nowhere/)
      .waitFor();
    expect(await providers()).toEqual([]);

    await form.getByLabel("Issuer URL").fill(issuer);
    await form.getByLabel("Allowed email domains").fill("example.com, Example.org");
    await form.getByRole("list", { name: "Allowed domains" }).getByText("example.org").waitFor();
    await form.getByLabel("Where new people land").selectOption({ label: "Acme" });
    await form.getByLabel("Their role in it").selectOption("viewer");
    await form.getByLabel("Group claim (optional)").fill("groups");
    await form.getByRole("button", { name: "Add a group" }).click();
    await form.getByLabel("Group 1", { exact: true }).fill("reef-admins");
    await form.getByLabel("Role for group 1").selectOption("admin");
    await form.getByRole("button", { name: "Add provider" }).click();
    await page.getByText("Acme SSO added. Register the redirect URI").waitFor();

    const [saved] = await providers();
    expect(saved).toMatchObject({
      kind: "oidc",
      slug: "acme-sso",
      name: "Acme SSO",
      enabled: true,
      allowedDomains: ["example.com", "example.org"],
      defaultWorkspaceId: acmeWid,
      defaultRole: "viewer",
      groupClaim: "groups",
      groupRoles: { "reef-admins": "admin" },
      callbackUrl: `${base}/api/v1/auth/sso/acme-sso/callback`,
      oidc: { issuer, clientId: "reef", scopes: ["openid", "email", "profile"], hasClientSecret: true },
    });
    expect(JSON.stringify(saved)).not.toContain(CLIENT_SECRET);
  }, 60_000);

  it("lists the provider with its rules and redirect URI; the secret never reaches the page", async () => {
    await page.goto(`${base}/admin`);
    const item = ssoSection().getByRole("list", { name: "Identity providers" }).getByRole("listitem").first();
    await item.getByRole("heading", { name: "Acme SSO" }).waitFor();
    await item.getByText("OIDC", { exact: true }).waitFor();
    await item.getByText("example.com, example.org").waitFor();
    await item.getByText("Acme", { exact: true }).waitFor();
    await item.getByText(`${base}/api/v1/auth/sso/acme-sso/callback`).waitFor();
    expect(await item.getByLabel("Acme SSO enabled").isChecked()).toBe(true);
    await item.getByRole("button", { name: "Edit Acme SSO" }).click();
    const form = page.getByRole("form", { name: "Edit Acme SSO" });
    await form.getByText("— never shown").waitFor();
    await form.getByRole("button", { name: "Replace client secret" }).waitFor();
    expect(await form.getByLabel("Slug").isDisabled()).toBe(true);
    await ssoSection().screenshot({ path: join(SHOTS, "sso-list-and-edit-section.png") });
    await shot(page, "sso-list-and-edit");
    expect(await page.content()).not.toContain(CLIENT_SECRET);
  }, 60_000);

  it("requires single sign-on once a provider is enabled, after a confirmation", async () => {
    await page.goto(`${base}/admin`);
    const requireSso = page.getByLabel("Require single sign-on");
    await requireSso.waitFor();
    await page.waitForFunction(() => {
      const el = [...document.querySelectorAll("label")].find((l) => l.textContent?.includes("Require single sign-on"));
      return el?.querySelector("input")?.disabled === false;
    });
    await requireSso.check();
    await page.getByRole("button", { name: "Save sign-in policy" }).click();
    const dialog = page.getByRole("dialog", { name: "Require single sign-on for everyone?" });
    await dialog.getByText("breakglass accounts").waitFor();
    await dialog.getByRole("button", { name: "Require single sign-on" }).click();
    await page.getByText("Saved. It applies to the next sign-in").waitFor();
    const settings = (await owner.client.get("/api/v1/admin/settings")).json();
    expect(settings.requireSso).toEqual({ value: true, source: "settings" });
    expect(settings.requireTwoFactor.value).toBe(false);
    // And off again, so the rest of the test signs in as before.
    await requireSso.uncheck();
    await page.getByRole("button", { name: "Save sign-in policy" }).click();
    await page.waitForFunction(async () => {
      const r = await fetch("/api/v1/admin/settings");
      return (await r.json()).requireSso.value === false;
    });
  }, 60_000);

  it("switching a provider off and deleting it ask nothing more than needed, and the delete names it", async () => {
    const item = ssoSection().getByRole("list", { name: "Identity providers" }).getByRole("listitem").first();
    await item.getByLabel("Acme SSO enabled").uncheck();
    await item.getByText("Off: nobody can sign in with it").waitFor();
    await expect.poll(async () => (await providers())[0].enabled, { timeout: 10_000 }).toBe(false);
    await item.getByRole("button", { name: "Delete Acme SSO" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete the provider Acme SSO?" });
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Delete provider" }).click();
    await ssoSection().getByText("No identity providers yet.").waitFor();
    expect(await providers()).toEqual([]);
  }, 60_000);

  it("adds a SAML provider from its metadata URL, shows what to register and the certificates, rotates by hand", async () => {
    await page.getByRole("button", { name: "Add provider" }).click();
    await page.getByRole("button", { name: "SAML 2.0" }).click();
    const form = page.getByRole("form", { name: "Add SAML 2.0 provider" });
    await form.getByLabel("Button label").fill("Acme SAML");
    await form
      .getByLabel("Metadata URL", { exact: true })
      .fill(`${saml.metadataUrl}${saml.metadataUrl.includes("?") ? "&" : "?"}certs=primary,rotated`);
    await form.getByRole("button", { name: "Add provider" }).click();
    await page.getByText("Acme SAML added.").waitFor();
    const edit = page.getByRole("form", { name: "Edit Acme SAML" });
    const [saved] = await providers();
    expect(saved.kind).toBe("saml");
    // The entity ID is the metadata URL: both shown, each with its copy button.
    expect(await edit.getByText(saved.saml.spEntityId, { exact: true }).count()).toBeGreaterThan(0);
    await edit.getByRole("button", { name: "Copy SP metadata URL" }).waitFor();
    expect(await edit.getByText(saved.saml.spMetadataUrl, { exact: true }).count()).toBeGreaterThan(0);
    await edit.getByText(`${base}/api/v1/auth/sso/acme-saml/acs`, { exact: true }).waitFor();
    const certs = edit.getByRole("list", { name: "Identity provider certificates" });
    await certs.getByText(/Stand-in IdP primary/).waitFor();
    await certs.getByText(/Stand-in IdP rotated/).waitFor();
    await edit.screenshot({ path: join(SHOTS, "sso-saml-saved.png") });
    await audit(page, "sso-saml-saved");

    // Rotation by hand: the new certificate alone replaces the list.
    await edit.getByLabel("Enter the sign-on URL and certificate by hand").check();
    await edit.getByRole("button", { name: "Add a certificate" }).click();
    await edit.getByLabel("Certificate 1", { exact: true }).fill(saml.certs.rotated);
    await edit.getByRole("button", { name: "Save provider" }).click();
    await page.getByText("Saved.", { exact: true }).waitFor();
    const after = page.getByRole("form", { name: "Edit Acme SAML" });
    await after
      .getByRole("list", { name: "Identity provider certificates" })
      .getByText(/Stand-in IdP rotated/)
      .waitFor();
    expect(await after.getByText(/Stand-in IdP primary/).count()).toBe(0);
    expect((await providers())[0].saml.idpCerts).toHaveLength(1);
    await after.getByRole("button", { name: "Close" }).click();
  }, 60_000);

  it("an operator resets someone's two-factor after a confirmation", async () => {
    const memberRow = () =>
      page
        .getByRole("table", { name: "Users" })
        .getByRole("row", { name: new RegExp(member.email.replace(/\./g, "\\.")) });
    const resetButton = () => page.getByRole("button", { name: "Reset two-factor of Mo Member" });
    // Without an authenticator there is nothing to reset: no badge, no button.
    await memberRow().waitFor();
    expect(await resetButton().count()).toBe(0);
    expect(await memberRow().getByText("2FA", { exact: true }).count()).toBe(0);

    // Mo sets up an authenticator: the list now says so and offers the reset.
    const setup = await member.client.post("/api/v1/me/two-factor/setup", { password: member.password });
    expect(setup.statusCode, setup.body).toBe(200);
    const { secret } = setup.json() as { secret: string };
    const confirmed = await member.client.post("/api/v1/me/two-factor/confirm", {
      code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) }),
    });
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    await page.reload();
    await memberRow().getByText("2FA", { exact: true }).waitFor();
    // Never on the operator's own row.
    expect(await page.getByRole("button", { name: "Reset two-factor of Ada Admin" }).count()).toBe(0);

    await resetButton().click();
    const dialog = page.getByRole("dialog", { name: "Reset two-factor for Mo Member?" });
    await dialog.getByText(member.email, { exact: false }).waitFor();
    await dialog.getByRole("button", { name: "Reset two-factor" }).click();
    await page.getByText("Two-factor reset: they set up a new authenticator").waitFor();
    // Gone: the badge and the button leave the row.
    await expect.poll(() => resetButton().count(), { timeout: 10_000 }).toBe(0);
    expect(await memberRow().getByText("2FA", { exact: true }).count()).toBe(0);
  }, 60_000);

  it("a workspace admin requires two-factor for its members, from a session with a second factor only", async () => {
    const toggleOn = async (p: Page) => {
      await p.goto(`${base}/w/${acmeWid}/settings`);
      const toggle = p.getByLabel("Require two-factor for members");
      await toggle.waitFor();
      await p.waitForFunction(() => {
        const el = [...document.querySelectorAll("label")].find((l) => l.textContent?.includes("Require two-factor"));
        return el?.querySelector("input")?.disabled === false;
      });
      expect(await toggle.isChecked()).toBe(false);
      await toggle.click();
      const dialog = p.getByRole("dialog", { name: "Require two-factor for members?" });
      await dialog.getByRole("button", { name: "Require two-factor" }).click();
      return toggle;
    };
    const requiredNow = async () =>
      (await db.owner.query("select require_two_factor from workspaces where id = $1", [acmeWid])).rows[0]
        .require_two_factor;

    // Signed in with a password only: turning it on would lock Ada out, so the server refuses and says why.
    const refused = await toggleOn(page);
    await page.getByRole("alert").getByText("Sign in with two-factor first").waitFor();
    // Said next to the toggle: the settings page stays (a refused action is not "this workspace shuts you out").
    expect(await page.getByText("This workspace requires two-factor authentication").count()).toBe(0);
    await page.getByRole("heading", { name: "Workspace settings" }).waitFor();
    expect(await refused.isChecked()).toBe(false);
    expect(await requiredNow()).toBe(false);

    // Ada sets up an authenticator and signs in with it (a recovery code stands in for a second code).
    const setup = await owner.client.post("/api/v1/me/two-factor/setup", { password: owner.password });
    expect(setup.statusCode, setup.body).toBe(200);
    const { secret } = setup.json() as { secret: string };
    const confirmed = await owner.client.post("/api/v1/me/two-factor/confirm", {
      code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) }),
    });
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    const [recoveryCode] = confirmed.json().recoveryCodes as string[];
    const withTotp = new ApiClient(app);
    const login = await withTotp.post("/api/v1/auth/login", { email: owner.email, password: owner.password });
    expect(login.json().next, login.body).toBe("two_factor");
    const second = await withTotp.post("/api/v1/auth/two-factor", { challenge: login.json().challenge, recoveryCode });
    expect(second.statusCode, second.body).toBe(200);

    const context = await signedInContext(browser, base, withTotp, { viewport: { width: 1280, height: 900 } });
    const totpPage = watch(await context.newPage(), "operator-2fa");
    const toggle = await toggleOn(totpPage);
    await totpPage.getByText("Two-factor is now required in this workspace.").waitFor();
    expect(await toggle.isChecked()).toBe(true);
    expect(await requiredNow()).toBe(true);
    await shot(totpPage, "workspace-require-two-factor");
    // Still usable by Ada in this session: the page reloads without the "requires two-factor" panel.
    await totpPage.reload();
    await expect
      .poll(() => totpPage.getByLabel("Require two-factor for members").isChecked(), { timeout: 15_000 })
      .toBe(true);
    expect(await totpPage.getByText("This workspace requires two-factor authentication").count()).toBe(0);
    await context.close();
  }, 90_000);

  it("no console errors and no accessibility violations", () => {
    expect(consoleErrors).toEqual([]);
    expect(a11yViolations).toEqual([]);
  });
});
