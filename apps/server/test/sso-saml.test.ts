import { randomBytes } from "node:crypto";
import { createPlatformSealer } from "@reef/core";
import {
  ApiClient,
  buildTestApp,
  type SamlPost,
  type SamlStandIn,
  type SamlUser,
  type SamlVariant,
  signUp,
  startSamlStandIn,
  type TestApp,
} from "@reef/testing";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A local SAML identity provider (samlify) stands in for the organisation's IdP.
let idp: SamlStandIn;
let t: TestApp;
let operator: Awaited<ReturnType<typeof signUp>>;
const secretKey = randomBytes(32);
/** Every API answer the operator saw, to check no SP private key ever leaves Reef. */
const seen: string[] = [];

beforeAll(async () => {
  idp = await startSamlStandIn();
  t = await buildTestApp({ config: { ssoAllowHttp: true, secretKey } });
  operator = await signUp(t.app, { name: "Operator" });
  expect(operator.user.platformRole).toBe("super_admin");
}, 60_000);
afterAll(async () => {
  await t?.close();
  await idp?.close();
});

async function createProvider(body: Record<string, unknown>) {
  const res = await operator.client.post("/api/v1/admin/identity-providers", { kind: "saml", ...body });
  seen.push(res.body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as {
    id: string;
    slug: string;
    callbackUrl: string;
    saml: { idpCerts: { fingerprint: string }[]; spEntityId: string; spMetadataUrl: string; entryPoint: string };
  };
}

/** Reef's SP metadata for a provider, handed to the stand-in IdP as an operator would. */
async function trust(slug: string): Promise<string> {
  const res = await t.app.inject({ method: "GET", url: `/api/v1/auth/sso/${slug}/metadata` });
  seen.push(res.body);
  expect(res.statusCode).toBe(200);
  expect(res.headers["content-type"]).toContain("xml");
  idp.trustSp(res.body);
  return res.body;
}

/** A fresh browser starts at Reef and is sent to the IdP. */
async function start(slug: string, next?: string) {
  const browser = new ApiClient(t.app);
  const qs = next ? `?next=${encodeURIComponent(next)}` : "";
  const res = await browser.get(`/api/v1/auth/sso/${slug}/start${qs}`);
  expect(res.statusCode, res.body).toBe(302);
  return { browser, redirectUrl: String(res.headers.location) };
}

function postAcs(browser: ApiClient, slug: string, form: { SAMLResponse: string; RelayState?: string | undefined }) {
  const body = new URLSearchParams({
    SAMLResponse: form.SAMLResponse,
    ...(form.RelayState !== undefined ? { RelayState: form.RelayState } : {}),
  }).toString();
  return browser.request("POST", `/api/v1/auth/sso/${slug}/acs`, body, {
    "content-type": "application/x-www-form-urlencoded",
  });
}

async function signInVia(slug: string, user: SamlUser, variant?: SamlVariant, next?: string) {
  const { browser, redirectUrl } = await start(slug, next);
  const form = await idp.signIn(redirectUrl, user, variant);
  const res = await postAcs(browser, slug, form);
  return { browser, form, res };
}

function refusal(res: LightMyRequestResponse) {
  expect(res.statusCode).toBe(302);
  const location = new URL(String(res.headers.location), "http://reef.test");
  expect(location.pathname).toBe("/signin");
  return { code: location.searchParams.get("error"), message: location.searchParams.get("message") ?? "" };
}

function expectNoSession(browser: ApiClient) {
  expect([...browser.cookies.keys()].some((k) => k.includes("reef_session"))).toBe(false);
}

const ALICE: SamlUser = { nameId: "alice@corp.example", name: "Alice Admin", groups: ["reef-admins", "staff"] };

describe("SAML single sign-on", () => {
  let acme: Awaited<ReturnType<typeof createProvider>>;

  it("an operator adds a SAML provider from the IdP's metadata XML; Reef serves its SP metadata", async () => {
    acme = await createProvider({
      slug: "acme",
      name: "Acme SAML",
      metadataXml: idp.metadataXml(),
      defaultWorkspaceId: operator.workspaceId,
      defaultRole: "viewer",
      groupClaim: "groups",
      groupRoles: { "reef-admins": "admin" },
    });
    expect(acme.saml.entryPoint).toBe(idp.ssoUrl);
    expect(acme.saml.idpCerts).toHaveLength(1);
    expect(acme.saml.spEntityId).toBe("http://127.0.0.1:7420/api/v1/auth/sso/acme/metadata");
    expect(acme.callbackUrl).toBe("http://127.0.0.1:7420/api/v1/auth/sso/acme/acs");

    const xml = await trust("acme");
    expect(xml).toContain('entityID="http://127.0.0.1:7420/api/v1/auth/sso/acme/metadata"');
    expect(xml).toMatch(
      /AssertionConsumerService[^>]+Location="http:\/\/127\.0\.0\.1:7420\/api\/v1\/auth\/sso\/acme\/acs"/,
    );
    expect(xml).toContain("X509Certificate");
    expect(xml).not.toContain("PRIVATE KEY");
  });

  it("a new person signs in: signed request, signed assertion, session cookie, JIT account with the mapped role", async () => {
    const { browser, redirectUrl } = await start("acme", "/w/welcome");
    const url = new URL(redirectUrl);
    expect(`${url.origin}${url.pathname}`).toBe(idp.ssoUrl);
    expect(url.searchParams.get("Signature")).toBeTruthy();
    expect(url.searchParams.get("RelayState")).toBeTruthy();

    const form = await idp.signIn(redirectUrl, ALICE);
    // The IdP checked the request's signature against Reef's SP metadata and saw Reef's entity id.
    expect(form.request.issuer).toBe(acme.saml.spEntityId);
    expect(form.request.id).toMatch(/^_[0-9a-f]{40}$/);
    expect(form.action).toBe(acme.callbackUrl);

    const res = await postAcs(browser, "acme", form);
    expect(res.statusCode, String(res.headers.location)).toBe(302);
    expect(res.headers.location).toBe("/w/welcome");
    const me = await browser.get("/api/v1/me");
    expect(me.statusCode).toBe(200);
    expect(me.json().user).toMatchObject({ email: "alice@corp.example", name: "Alice Admin" });

    const members = await operator.client.get(`/api/v1/workspaces/${operator.workspaceId}/members`);
    const alice = (members.json().items as { email: string; role: string }[]).find(
      (m) => m.email === "alice@corp.example",
    );
    expect(alice?.role).toBe("admin");

    // The same person again: the known identity signs in, no second account.
    const again = await signInVia("acme", ALICE);
    expect(again.res.statusCode).toBe(302);
    expect(again.res.headers.location).toBe("/");
    expect((await again.browser.get("/api/v1/me")).json().user.id).toBe(me.json().user.id);
  });

  it("an email that already has a password account must prove the password once to link", async () => {
    const existing = await signUp(t.app, { email: "pat@corp.example" });
    const { browser, res } = await signInVia("acme", { nameId: "pat@corp.example", name: "Pat" });
    expect(res.statusCode).toBe(302);
    const location = new URL(String(res.headers.location), "http://reef.test");
    expect(location.pathname).toBe("/signin/link");
    expect(location.searchParams.get("email")).toBe("pat@corp.example");
    expect(location.searchParams.get("provider")).toBe("Acme SAML");
    expectNoSession(browser);
    const linked = await browser.post("/api/v1/auth/sso/link", {
      token: location.searchParams.get("token"),
      password: existing.password,
    });
    expect(linked.statusCode, linked.body).toBe(200);
    const again = await signInVia("acme", { nameId: "pat@corp.example" });
    expect(again.res.headers.location).toBe("/");
    expect((await again.browser.get("/api/v1/me")).json().user.id).toBe(existing.user.id);
  });

  it("refuses an unsigned assertion", async () => {
    const { browser, res } = await signInVia("acme", { nameId: "mallory@corp.example" }, { signWith: "none" });
    const r = refusal(res);
    expect(r.code).toBe("SSO_FAILED");
    expect(r.message).toMatch(/signed/);
    expectNoSession(browser);
  });

  it("refuses an assertion signed with a key the provider does not list", async () => {
    const { browser, res } = await signInVia("acme", { nameId: "mallory@corp.example" }, { signWith: "stranger" });
    expect(refusal(res)).toMatchObject({ code: "SSO_FAILED", message: expect.stringMatching(/signed/) });
    expectNoSession(browser);
  });

  it("refuses an assertion meant for another service, and an expired one", async () => {
    const wrongAudience = await signInVia("acme", ALICE, { audience: "https://other.example/sp" });
    expect(refusal(wrongAudience.res)).toMatchObject({
      code: "SSO_FAILED",
      message: expect.stringMatching(/another service/),
    });
    expectNoSession(wrongAudience.browser);
    const expired = await signInVia("acme", ALICE, { expired: true });
    expect(refusal(expired.res)).toMatchObject({ code: "SSO_FAILED", message: expect.stringMatching(/expired/) });
    expectNoSession(expired.browser);
  });

  it("refuses a replayed response, with its own RelayState or a fresh one", async () => {
    const first = await signInVia("acme", ALICE);
    expect(first.res.statusCode).toBe(302);
    expect(first.res.headers.location).toBe("/");

    const thief = new ApiClient(t.app);
    const again = await postAcs(thief, "acme", first.form);
    expect(refusal(again).code).toBe("SSO_FAILED");
    expectNoSession(thief);

    // A new attempt's RelayState does not make an old response answer it (InResponseTo differs).
    const { browser, redirectUrl } = await start("acme");
    const fresh = new URL(redirectUrl).searchParams.get("RelayState") ?? "";
    const replay = await postAcs(browser, "acme", { SAMLResponse: first.form.SAMLResponse, RelayState: fresh });
    expect(refusal(replay)).toMatchObject({ code: "SSO_FAILED", message: expect.stringMatching(/does not answer/) });
    expectNoSession(browser);
  });

  it("a post that arrives with a session cookie and no CSRF header (same-site IdP) still signs in", async () => {
    const someone = await signUp(t.app);
    someone.client.csrf = false;
    const started = await someone.client.get("/api/v1/auth/sso/acme/start");
    expect(started.statusCode).toBe(302);
    const form = await idp.signIn(String(started.headers.location), ALICE);
    const res = await postAcs(someone.client, "acme", form);
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe("/");
    expect((await someone.client.get("/api/v1/me")).json().user.email).toBe("alice@corp.example");
  });

  it("refuses an unknown or missing RelayState (IdP-initiated posts are not accepted)", async () => {
    const browser = new ApiClient(t.app);
    const valid: SamlPost = await idp.signIn((await start("acme")).redirectUrl, ALICE);
    const unknown = await postAcs(browser, "acme", {
      SAMLResponse: valid.SAMLResponse,
      RelayState: "rss_forged-token-0000",
    });
    expect(refusal(unknown).code).toBe("SSO_FAILED");
    const missing = await postAcs(browser, "acme", { SAMLResponse: valid.SAMLResponse });
    expect(refusal(missing)).toMatchObject({ code: "SSO_FAILED", message: expect.stringMatching(/must start/) });
    const empty = await browser.request("POST", "/api/v1/auth/sso/acme/acs", "", {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(refusal(empty).code).toBe("SSO_FAILED");
    expectNoSession(browser);
  });

  it("rotates certificates: two listed (from a metadata URL), new key accepted, old key refused once removed", async () => {
    const rot = await createProvider({
      slug: "rotating",
      name: "Rotating IdP",
      metadataUrl: `${idp.metadataUrl}?certs=primary,rotated`,
    });
    expect(rot.saml.idpCerts).toHaveLength(2);
    await trust("rotating");
    const bob: SamlUser = { nameId: "bob@rot.example", name: "Bob" };
    const withNew = await signInVia("rotating", bob, { signWith: "rotated" });
    expect(withNew.res.headers.location).toBe("/");
    expect((await withNew.browser.get("/api/v1/me")).json().user.email).toBe("bob@rot.example");
    const withOld = await signInVia("rotating", bob, { signWith: "primary" });
    expect(withOld.res.headers.location).toBe("/");

    const patched = await operator.client.patch(`/api/v1/admin/identity-providers/${rot.id}`, {
      kind: "saml",
      idpCerts: [idp.certs.rotated],
    });
    seen.push(patched.body);
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json().saml.idpCerts).toHaveLength(1);
    expect(patched.json().saml.idpCerts[0].fingerprint).not.toBe(rot.saml.idpCerts[0]?.fingerprint);

    const oldAfter = await signInVia("rotating", bob, { signWith: "primary" });
    expect(refusal(oldAfter.res).code).toBe("SSO_FAILED");
    expectNoSession(oldAfter.browser);
    const newAfter = await signInVia("rotating", bob, { signWith: "rotated" });
    expect(newAfter.res.headers.location).toBe("/");
  });

  it("refuses bad metadata with a sentence", async () => {
    const res = await operator.client.post("/api/v1/admin/identity-providers", {
      kind: "saml",
      slug: "broken",
      name: "Broken",
      metadataXml: "<EntityDescriptor entityID='x'><SPSSODescriptor/></EntityDescriptor>",
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "SSO_FAILED", message: expect.stringMatching(/identity provider/) });
    const unreachable = await operator.client.post("/api/v1/admin/identity-providers", {
      kind: "saml",
      slug: "unreachable",
      name: "Unreachable",
      metadataUrl: "http://127.0.0.1:9/metadata",
    });
    expect(unreachable.statusCode).toBe(400);
    expect(unreachable.json().code).toBe("SSO_FAILED");
  });

  it("never shows the SP private key in an API answer or the audit trail", async () => {
    const list = await operator.client.get("/api/v1/admin/identity-providers");
    const one = await operator.client.get(`/api/v1/admin/identity-providers/${acme.id}`);
    const audit = await operator.client.get("/api/v1/admin/audit?limit=100");
    seen.push(list.body, one.body, audit.body);
    expect(audit.statusCode).toBe(200);

    const { rows } = await t.db.owner.query<{ id: string; secret_sealed: string; config: string }>(
      "select id, secret_sealed, config::text as config from identity_providers",
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const sealer = createPlatformSealer({ current: secretKey, previous: [] });
    const auditRows = await t.db.owner.query<{ row: string }>(
      "select row_to_json(a)::text as row from audit_log a union all select row_to_json(p)::text from platform_audit_log p",
    );
    for (const row of rows) {
      expect(row.config).not.toContain("PRIVATE KEY");
      const pem = sealer.open(row.secret_sealed, `idp:${row.id}`);
      expect(pem).toContain("PRIVATE KEY");
      const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
      const probe = body.slice(100, 160);
      for (const text of [...seen, ...auditRows.rows.map((r) => r.row)]) {
        expect(text).not.toContain(probe);
        expect(text).not.toContain("PRIVATE KEY");
        expect(text).not.toContain(row.secret_sealed);
      }
    }
  });

  it("answers 404 for the metadata of an unknown provider", async () => {
    const res = await t.app.inject({ method: "GET", url: "/api/v1/auth/sso/nobody/metadata" });
    expect(res.statusCode).toBe(404);
  });
});
