import { createHash, randomBytes } from "node:crypto";
import { createPlatformSealer, providerSecretAad } from "@reef/core";
import { buildApp } from "@reef/server";
import {
  ApiClient,
  type DumpableDatabase,
  dumpableDatabase,
  linkToken,
  type OidcStandIn,
  recordingLogger,
  type SamlStandIn,
  type SmtpStandIn,
  signUp,
  startOidcStandIn,
  startSamlStandIn,
  startSmtpStandIn,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import { generate } from "otplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PUBLIC_URL = "http://127.0.0.1:7420";
const OIDC_SECRET = `oidc-secret-canary-${randomBytes(12).toString("hex")}`;
const rootKey = randomBytes(32);
const sealer = createPlatformSealer({ current: rootKey, previous: [] });
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** A secret to look for, and how many API answers came before it was legitimately shown (the answer that showed it included). */
interface Canary {
  what: string;
  value: string;
  shownIn: number;
}
const canaries: Canary[] = [];
/** Every answer the app sent (headers and body), in order. */
const responses: string[] = [];
const logLines: string[] = [];

let d: DumpableDatabase;
let app: FastifyInstance;
let smtp: SmtpStandIn;
let oidc: OidcStandIn;
let saml: SamlStandIn;
let operator: Awaited<ReturnType<typeof signUp>>;

beforeAll(async () => {
  smtp = await startSmtpStandIn();
  oidc = await startOidcStandIn({
    clientSecret: OIDC_SECRET,
    redirectUris: [`${PUBLIC_URL}/api/v1/auth/sso/corp/callback`],
    users: { olga: { email: "olga@corp.example", name: "Olga Oidc" } },
  });
  saml = await startSamlStandIn();
  d = await dumpableDatabase();
  app = await buildApp({
    config: testAppConfig({
      publicUrl: PUBLIC_URL,
      ssoAllowHttp: true,
      secretKey: rootKey,
      smtpUrl: smtp.url,
      smtpFrom: "Reef <noreply@reef.test>",
    }),
    database: d.database,
    logger: recordingLogger(logLines, "trace"),
  });
  app.addHook("onSend", async (_req, reply, payload) => {
    const body = typeof payload === "string" || Buffer.isBuffer(payload) ? String(payload) : "";
    responses.push(`${JSON.stringify(reply.getHeaders())}\n${body}`);
    return payload;
  });
  await app.ready();
  operator = await signUp(app, { name: "Operator" });
  expect(operator.user.platformRole).toBe("super_admin");
}, 180_000);

afterAll(async () => {
  await app?.close();
  await d?.close();
  await Promise.all([smtp?.close(), oidc?.close(), saml?.close()]);
}, 120_000);

/** The token of the link to `page` in the first mail to `to` that has one (mail goes out in the background). */
async function mailedToken(to: string, page: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    for (const text of smtp.mailsTo(to)) {
      const token = linkToken(text, page);
      if (token) return token;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no /${page} link mailed to ${to}`);
}

/** A browser at the IdP, driven over HTTP: follows redirects itself and keeps the IdP's cookies. */
async function oidcSignIn(login: string): Promise<ApiClient> {
  const browser = new ApiClient(app);
  const start = await browser.get("/api/v1/auth/sso/corp/start?next=/");
  expect(start.statusCode, start.body).toBe(302);
  const jar = new Map<string, string>();
  const callback = `${PUBLIC_URL}/api/v1/auth/sso/corp/callback`;
  let url = String(start.headers.location);
  let init: RequestInit = {};
  for (let hops = 0; !url.startsWith(callback); hops++) {
    expect(hops, `stuck at the IdP: ${url}`).toBeLessThan(12);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await fetch(url, { ...init, redirect: "manual", headers: { ...(init.headers ?? {}), cookie } });
    for (const set of res.headers.getSetCookie()) {
      const [pair = ""] = set.split(";");
      const eq = pair.indexOf("=");
      jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    init = {};
    const location = res.headers.get("location");
    if (location) {
      url = new URL(location, url).href;
      continue;
    }
    // The IdP's login form: any password, the login names the person.
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    expect(action, `no login form at ${url}: ${res.status} ${html.slice(0, 300)}`).toBeTruthy();
    url = new URL(String(action).replace(/&amp;/g, "&"), url).href;
    init = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ prompt: "login", login, password: "anything" }).toString(),
    };
  }
  const back = new URL(url);
  const landed = await browser.get(`${back.pathname}${back.search}`);
  expect(landed.statusCode, landed.body).toBe(302);
  expect(landed.headers.location).toBe("/");
  return browser;
}

describe("sign-in secrets: sealed, never returned, never logged, never audited", () => {
  it("an OIDC provider's client secret is used at the token endpoint in a full sign-in", async () => {
    const created = await operator.client.post("/api/v1/admin/identity-providers", {
      kind: "oidc",
      slug: "corp",
      name: "Corp OIDC",
      issuer: oidc.issuer,
      clientId: oidc.clientId,
      clientSecret: OIDC_SECRET,
      scopes: ["openid", "email", "profile"],
    });
    expect(created.statusCode, created.body).toBe(201);
    canaries.push({ what: "the OIDC client secret", value: OIDC_SECRET, shownIn: 0 });
    const browser = await oidcSignIn("olga");
    const me = await browser.get("/api/v1/me");
    expect(me.statusCode).toBe(200);
    expect(me.json().user.email).toBe("olga@corp.example");
  });

  it("a SAML provider's SP private key signs a real sign-in", async () => {
    const created = await operator.client.post("/api/v1/admin/identity-providers", {
      kind: "saml",
      slug: "acme",
      name: "Acme SAML",
      metadataXml: saml.metadataXml(),
    });
    expect(created.statusCode, created.body).toBe(201);
    const providerId = created.json().id as string;
    const metadata = await app.inject({ method: "GET", url: "/api/v1/auth/sso/acme/metadata" });
    expect(metadata.statusCode).toBe(200);
    saml.trustSp(metadata.body);

    const browser = new ApiClient(app);
    const start = await browser.get("/api/v1/auth/sso/acme/start");
    expect(start.statusCode).toBe(302);
    const form = await saml.signIn(String(start.headers.location), { nameId: "sam@acme.example", name: "Sam" });
    const acs = await browser.request(
      "POST",
      "/api/v1/auth/sso/acme/acs",
      new URLSearchParams({ SAMLResponse: form.SAMLResponse, RelayState: form.RelayState ?? "" }).toString(),
      { "content-type": "application/x-www-form-urlencoded" },
    );
    expect(acs.statusCode).toBe(302);
    expect(acs.headers.location).toBe("/");
    expect((await browser.get("/api/v1/me")).json().user.email).toBe("sam@acme.example");

    const { rows } = await d.owner.query<{ secret_sealed: string }>(
      "select secret_sealed from identity_providers where id = $1",
      [providerId],
    );
    const pem = sealer.open(rows[0]?.secret_sealed ?? "", providerSecretAad(providerId));
    expect(pem).toContain("PRIVATE KEY");
    const lines = pem.split("\n").filter((l) => /^[A-Za-z0-9+/]{64}$/.test(l));
    expect(lines.length).toBeGreaterThan(10);
    canaries.push({ what: "the SAML SP private key", value: lines[Math.floor(lines.length / 2)] ?? "", shownIn: 0 });
  });

  it("a magic-link token signs in once", async () => {
    const mia = await signUp(app, { name: "Mia Magic" });
    const browser = new ApiClient(app);
    expect((await browser.post("/api/v1/auth/magic-link", { email: mia.email })).statusCode).toBe(202);
    const token = await mailedToken(mia.email, "magic");
    const used = await browser.post("/api/v1/auth/magic-link/consume", { token });
    expect(used.statusCode, used.body).toBe(200);
    expect(used.json().user.id).toBe(mia.user.id);
    canaries.push({ what: "a magic-link token", value: token, shownIn: 0 });
  });

  it("a password-reset token sets a new password once", async () => {
    const rex = await signUp(app, { name: "Rex Reset" });
    expect((await new ApiClient(app).post("/api/v1/auth/password-reset", { email: rex.email })).statusCode).toBe(202);
    const token = await mailedToken(rex.email, "reset-password");
    const done = await new ApiClient(app).post("/api/v1/auth/password-reset/complete", {
      token,
      password: "a much better horse battery",
    });
    expect(done.statusCode, done.body).toBe(204);
    canaries.push({ what: "a password-reset token", value: token, shownIn: 0 });
    const login = await new ApiClient(app).post("/api/v1/auth/login", {
      email: rex.email,
      password: "a much better horse battery",
    });
    expect(login.statusCode).toBe(200);
  });

  it("a TOTP seed and recovery codes, each then used to sign in", async () => {
    const tom = await signUp(app, { name: "Tom Totp" });
    const setup = await tom.client.post("/api/v1/me/two-factor/setup", { password: tom.password });
    expect(setup.statusCode, setup.body).toBe(200);
    const secret = setup.json().secret as string;
    expect(responses.at(-1)).toContain(secret);
    canaries.push({ what: "the TOTP seed", value: secret, shownIn: responses.length });

    const now = () => Math.floor(Date.now() / 1000);
    const confirm = await tom.client.post("/api/v1/me/two-factor/confirm", {
      code: await generate({ secret, epoch: now() }),
    });
    expect(confirm.statusCode, confirm.body).toBe(200);
    const codes = confirm.json().recoveryCodes as string[];
    expect(codes).toHaveLength(10);
    codes.forEach((value, i) => {
      canaries.push({ what: `recovery code ${i + 1}`, value, shownIn: responses.length });
    });

    // Password, then a code (the next step's: the enrolment spent this one; one step of drift is allowed).
    const first = new ApiClient(app);
    const login = await first.post("/api/v1/auth/login", { email: tom.email, password: tom.password });
    expect(login.json().next).toBe("two_factor");
    const withCode = await first.post("/api/v1/auth/two-factor", {
      challenge: login.json().challenge,
      code: await generate({ secret, epoch: now() + 30 }),
    });
    expect(withCode.statusCode, withCode.body).toBe(200);

    // Password, then a recovery code.
    const second = new ApiClient(app);
    const again = await second.post("/api/v1/auth/login", { email: tom.email, password: tom.password });
    const withRecovery = await second.post("/api/v1/auth/two-factor", {
      challenge: again.json().challenge,
      recoveryCode: codes[3],
    });
    expect(withRecovery.statusCode, withRecovery.body).toBe(200);
    expect(withRecovery.json()).toMatchObject({ recoveryCodeUsed: true, recoveryCodesLeft: 9 });

    const { rows } = await d.owner.query<{ secret_sealed: string }>(
      "select secret_sealed from user_totp where user_id = $1 and confirmed_at is not null",
      [tom.user.id],
    );
    expect(rows).toHaveLength(1);
    const sealed = rows[0]?.secret_sealed ?? "";
    expect(sealed).not.toContain(secret);
    expect(sealer.open(sealed, `totp:${tom.user.id}`)).toBe(secret);
  });

  it("appears in no later API answer, no log line, no audit row and nowhere in a pg_dump", async () => {
    expect(canaries.map((c) => c.what)).toEqual([
      "the OIDC client secret",
      "the SAML SP private key",
      "a magic-link token",
      "a password-reset token",
      "the TOTP seed",
      ...Array.from({ length: 10 }, (_, i) => `recovery code ${i + 1}`),
    ]);
    // Something to look in: the log is written at trace, the audit trail recorded the sign-ins.
    const logged = logLines.join("");
    for (const url of [
      "/sso/corp/callback?code=",
      "/sso/acme/acs",
      "/magic-link/consume",
      "/password-reset/complete",
    ]) {
      expect(logged).toContain(url);
    }
    expect(logged.match(/"url":"\/api\/v1\/auth\/two-factor"/g)).toHaveLength(2);
    const audit = await d.owner.query<{ row: string }>(
      "select row_to_json(a)::text as row from audit_log a union all select row_to_json(p)::text from platform_audit_log p",
    );
    expect(audit.rows.some((r) => r.row.includes("auth.login"))).toBe(true);
    const dump = d.dump();
    expect(dump).toContain("COPY public.user_totp");
    expect(dump).toContain("olga@corp.example");
    const sealedSecrets = await d.owner.query<{ s: string }>("select secret_sealed as s from identity_providers");
    for (const { s } of sealedSecrets.rows) expect(dump).toContain(s);

    const leaks: string[] = [];
    for (const c of canaries) {
      responses.forEach((r, i) => {
        const at = r.indexOf(c.value);
        if (i >= c.shownIn && at >= 0) leaks.push(`${c.what}: API answer #${i + 1}: …${r.slice(at - 120, at + 80)}`);
      });
      for (const line of logLines) if (line.includes(c.value)) leaks.push(`${c.what}: log line ${line.slice(0, 300)}`);
      for (const r of audit.rows)
        if (r.row.includes(c.value)) leaks.push(`${c.what}: audit row ${r.row.slice(0, 300)}`);
      const at = dump.indexOf(c.value);
      if (at >= 0) {
        const table = dump.slice(0, at).lastIndexOf("COPY ");
        leaks.push(
          `${c.what}: pg_dump, ${dump.slice(table, dump.indexOf("(", table))} …${dump.slice(at - 80, at + 80)}`,
        );
      }
    }
    expect(leaks).toEqual([]);
  });

  it("keeps them only sealed or hashed", async () => {
    const idp = await d.owner.query<{ id: string; secret_sealed: string }>(
      "select id, secret_sealed from identity_providers where slug = 'corp'",
    );
    const sealed = idp.rows[0]?.secret_sealed ?? "";
    expect(sealed).not.toBe(OIDC_SECRET);
    expect(sealed).not.toContain(OIDC_SECRET);
    expect(sealer.open(sealed, providerSecretAad(idp.rows[0]?.id ?? ""))).toBe(OIDC_SECRET);

    for (const c of canaries.filter((x) => x.what.endsWith("token"))) {
      const { rows } = await d.owner.query<{ token_hash: string; used_at: Date | null }>(
        "select token_hash, used_at from auth_tokens where token_hash = $1 or token_hash = $2",
        [sha256(c.value), c.value],
      );
      expect(rows, c.what).toHaveLength(1);
      expect(rows[0]?.token_hash).toBe(sha256(c.value));
      expect(rows[0]?.token_hash).not.toBe(c.value);
      expect(rows[0]?.used_at, `${c.what} is spent`).not.toBeNull();
    }
    const codes = canaries.filter((x) => x.what.startsWith("recovery code")).map((x) => x.value);
    const stored = await d.owner.query<{ code_hash: string }>("select code_hash from recovery_codes");
    expect(stored.rows.length).toBeGreaterThanOrEqual(10);
    for (const r of stored.rows) for (const code of codes) expect(r.code_hash).not.toContain(code);
  });
});
