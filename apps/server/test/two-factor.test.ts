/**
 * Two-factor sign-in (issue 17): TOTP enrolment with codes computed here (otplib), the second sign-in
 * step, codes accepted once, recovery codes once each, lockout after wrong codes (audited once), disable
 * with the password, operators' reset, platform and workspace policies, and the seed kept secret.
 */
import { randomBytes } from "node:crypto";
import { createPlatformSealer, resealPlatformSecrets } from "@reef/core";
import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import type { LightMyRequestResponse } from "fastify";
import { generate } from "otplib";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

let t: TestApp;
const rootKey = randomBytes(32);
let operator: Awaited<ReturnType<typeof signUp>>;

// Reef's clock and the test's authenticator move together: each fresh code is from the next 30-second step
// (a code is accepted once, and so is every earlier one).
const realNow = Date.now.bind(Date);
let skewMs = 0;
vi.spyOn(Date, "now").mockImplementation(() => realNow() + skewMs);

async function nextCode(secret: string): Promise<string> {
  skewMs += 30_000;
  return generate({ secret, epoch: Math.floor(Date.now() / 1000) });
}
/** A code for the current step (already accepted ones are refused). */
const currentCode = (secret: string) => generate({ secret, epoch: Math.floor(Date.now() / 1000) });

/** Every response body seen after some seed was shown, to prove it never comes back. */
const seen: string[] = [];
/** Every seed an enrolment showed. */
const secrets: string[] = [];
function record(res: LightMyRequestResponse): LightMyRequestResponse {
  seen.push(res.body);
  return res;
}

beforeAll(async () => {
  t = await buildTestApp({ config: { secretKey: rootKey } });
  operator = await signUp(t.app, { name: "Operator" });
  expect(operator.user.platformRole).toBe("super_admin");
});
afterAll(async () => {
  vi.restoreAllMocks();
  await t.close();
});

/** Turns two-factor on from the account page. @returns the secret and the recovery codes. */
async function enrol(client: ApiClient, password: string) {
  const setup = await client.post("/api/v1/me/two-factor/setup", { password });
  expect(setup.statusCode, setup.body).toBe(200);
  const { secret, otpauthUri } = setup.json() as { secret: string; otpauthUri: string };
  secrets.push(secret);
  const confirm = record(await client.post("/api/v1/me/two-factor/confirm", { code: await nextCode(secret) }));
  expect(confirm.statusCode, confirm.body).toBe(200);
  return { secret, otpauthUri, recoveryCodes: confirm.json().recoveryCodes as string[] };
}

/** Password first: answers the client and the challenge. */
async function passwordStep(email: string, password: string) {
  const client = new ApiClient(t.app);
  const res = record(await client.post("/api/v1/auth/login", { email, password }));
  expect(res.statusCode, res.body).toBe(200);
  return { client, body: res.json() as { next?: string; challenge?: string; user?: unknown } };
}

async function signInWithTotp(email: string, password: string, secret: string) {
  const { client, body } = await passwordStep(email, password);
  expect(body.next).toBe("two_factor");
  const res = record(
    await client.post("/api/v1/auth/two-factor", { challenge: body.challenge, code: await nextCode(secret) }),
  );
  expect(res.statusCode, res.body).toBe(200);
  return client;
}

async function platformAudit(action: string) {
  const res = await operator.client.get(`/api/v1/admin/audit?action=${action}&limit=100`);
  expect(res.statusCode).toBe(200);
  return res.json().items as { action: string; targetId: string | null; outcome: string; details: unknown }[];
}

describe("enrolment and sign-in", () => {
  it("enrols with a code from the app, then signs in with password and code; a code works once", async () => {
    const ann = await signUp(t.app, { name: "Ann" });
    const before = await ann.client.get("/api/v1/me/two-factor");
    expect(before.json()).toMatchObject({ enabled: false, recoveryCodesLeft: 0, required: false });

    const wrongPassword = await ann.client.post("/api/v1/me/two-factor/setup", { password: "not my password" });
    expect(wrongPassword.statusCode).toBe(403);

    const { secret, otpauthUri, recoveryCodes } = await enrol(ann.client, ann.password);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUri).toMatch(/^otpauth:\/\/totp\/Reef:/);
    expect(decodeURIComponent(otpauthUri)).toContain(ann.email);
    expect(otpauthUri).toContain("issuer=Reef");
    expect(recoveryCodes).toHaveLength(10);
    for (const code of recoveryCodes) expect(code).toMatch(/^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$/);
    expect(new Set(recoveryCodes).size).toBe(10);
    const status = record(await ann.client.get("/api/v1/me/two-factor"));
    expect(status.json()).toMatchObject({ enabled: true, recoveryCodesLeft: 10, required: false });

    // Password alone no longer signs in: it answers the second step.
    const { client, body } = await passwordStep(ann.email, ann.password);
    expect(body).toEqual({ next: "two_factor", challenge: expect.any(String) });
    expect(client.cookies.has("reef_session")).toBe(false);
    // The code the enrolment used is spent.
    const replayed = await client.post("/api/v1/auth/two-factor", {
      challenge: body.challenge,
      code: await currentCode(secret),
    });
    expect(replayed.statusCode).toBe(401);
    expect(replayed.json().code).toBe("TWO_FACTOR_INVALID");
    const code = await nextCode(secret);
    const ok = record(await client.post("/api/v1/auth/two-factor", { challenge: body.challenge, code }));
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ user: { email: ann.email }, recoveryCodeUsed: false });
    expect((await client.get("/api/v1/me")).statusCode).toBe(200);
    const sessions = (await client.get("/api/v1/me/sessions")).json().items as { current: boolean; method: string }[];
    expect(sessions.find((s) => s.current)?.method).toBe("password+totp");

    // The same code again, on a new challenge: refused. The used challenge is gone too.
    const again = await passwordStep(ann.email, ann.password);
    const reuse = await again.client.post("/api/v1/auth/two-factor", { challenge: again.body.challenge, code });
    expect(reuse.json().code).toBe("TWO_FACTOR_INVALID");
    const usedChallenge = await again.client.post("/api/v1/auth/two-factor", {
      challenge: body.challenge,
      code: await nextCode(secret),
    });
    expect(usedChallenge.statusCode).toBe(400);
    expect(usedChallenge.json().code).toBe("LINK_INVALID");

    const logins = await platformAudit("auth.login");
    expect(
      logins.some((e) => e.targetId === ann.user.id && (e.details as { method?: string }).method === "password+totp"),
    ).toBe(true);
    expect((await platformAudit("user.two_factor_enable")).some((e) => e.targetId === ann.user.id)).toBe(true);
  });

  it("each recovery code signs in once; a new set voids the old one", async () => {
    const bo = await signUp(t.app, { name: "Bo" });
    const { secret, recoveryCodes } = await enrol(bo.client, bo.password);
    const first = await passwordStep(bo.email, bo.password);
    const used = record(
      await first.client.post("/api/v1/auth/two-factor", {
        challenge: first.body.challenge,
        recoveryCode: recoveryCodes[0]?.toUpperCase(),
      }),
    );
    expect(used.statusCode, used.body).toBe(200);
    expect(used.json()).toMatchObject({ recoveryCodeUsed: true, recoveryCodesLeft: 9 });
    const login = (await platformAudit("auth.login")).find((e) => e.targetId === bo.user.id);
    expect(login?.details).toMatchObject({ method: "password+totp", recoveryCodeUsed: true });

    const second = await passwordStep(bo.email, bo.password);
    const reused = await second.client.post("/api/v1/auth/two-factor", {
      challenge: second.body.challenge,
      recoveryCode: recoveryCodes[0],
    });
    expect(reused.statusCode).toBe(401);
    expect(reused.json().code).toBe("TWO_FACTOR_INVALID");
    const other = await second.client.post("/api/v1/auth/two-factor", {
      challenge: second.body.challenge,
      recoveryCode: recoveryCodes[1],
    });
    expect(other.statusCode).toBe(200);
    expect((await second.client.get("/api/v1/me/two-factor")).json().recoveryCodesLeft).toBe(8);

    expect(
      (await second.client.post("/api/v1/me/two-factor/recovery-codes", { password: "wrong one" })).statusCode,
    ).toBe(403);
    const fresh = record(await second.client.post("/api/v1/me/two-factor/recovery-codes", { password: bo.password }));
    expect(fresh.statusCode).toBe(200);
    const newCodes = fresh.json().recoveryCodes as string[];
    expect(newCodes).toHaveLength(10);
    const third = await passwordStep(bo.email, bo.password);
    const old = await third.client.post("/api/v1/auth/two-factor", {
      challenge: third.body.challenge,
      recoveryCode: recoveryCodes[2],
    });
    expect(old.json().code).toBe("TWO_FACTOR_INVALID");
    const viaNew = await third.client.post("/api/v1/auth/two-factor", {
      challenge: third.body.challenge,
      recoveryCode: newCodes[0],
    });
    expect(viaNew.statusCode).toBe(200);
    expect(secret).toBeTruthy();
  });

  it("five wrong codes lock the account's second factor (429, Retry-After), audited exactly once", async () => {
    const cy = await signUp(t.app, { name: "Cy" });
    const { secret } = await enrol(cy.client, cy.password);
    const { client, body } = await passwordStep(cy.email, cy.password);
    const statuses: number[] = [];
    let last: LightMyRequestResponse | undefined;
    for (let i = 0; i < 5; i++) {
      last = await client.post("/api/v1/auth/two-factor", { challenge: body.challenge, code: "000000" });
      statuses.push(last.statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429]);
    expect(last?.json().code).toBe("TWO_FACTOR_LOCKED");
    expect(Number(last?.headers["retry-after"])).toBeGreaterThan(0);
    // Locked: even the right code on a new challenge is refused, and the old challenge is void.
    const again = await passwordStep(cy.email, cy.password);
    const right = await again.client.post("/api/v1/auth/two-factor", {
      challenge: again.body.challenge,
      code: await nextCode(secret),
    });
    expect(right.statusCode).toBe(429);
    expect(right.json().code).toBe("TWO_FACTOR_LOCKED");
    const old = await client.post("/api/v1/auth/two-factor", {
      challenge: body.challenge,
      code: await nextCode(secret),
    });
    expect([400, 429]).toContain(old.statusCode);
    expect(client.cookies.has("reef_session")).toBe(false);

    const lockouts = (await platformAudit("auth.two_factor_lockout")).filter((e) => e.targetId === cy.user.id);
    expect(lockouts).toHaveLength(1);
    expect(lockouts[0]).toMatchObject({ outcome: "failure", targetId: cy.user.id });
    const failures = (await platformAudit("auth.two_factor")).filter((e) => e.targetId === cy.user.id);
    expect(failures).toHaveLength(4);
  });

  it("turning two-factor off needs the password; then password alone signs in", async () => {
    const di = await signUp(t.app, { name: "Di" });
    await enrol(di.client, di.password);
    const wrong = await di.client.post("/api/v1/me/two-factor/disable", { password: "definitely wrong" });
    expect(wrong.statusCode).toBe(403);
    expect((await di.client.get("/api/v1/me/two-factor")).json().enabled).toBe(true);
    expect((await di.client.post("/api/v1/me/two-factor/disable", { password: di.password })).statusCode).toBe(204);
    expect((await di.client.get("/api/v1/me/two-factor")).json()).toMatchObject({
      enabled: false,
      recoveryCodesLeft: 0,
    });
    const { body } = await passwordStep(di.email, di.password);
    expect(body.user).toBeDefined();
    expect((await platformAudit("user.two_factor_disable")).some((e) => e.targetId === di.user.id)).toBe(true);
  });
});

describe("workspace and platform policies", () => {
  it("a workspace requiring two-factor refuses members signed in with a password only, and admits them with TOTP", async () => {
    const owner = await signUp(t.app, { name: "Olive Owner" });
    const wid = owner.workspaceId;
    const join = async (name: string) => {
      const person = await signUp(t.app, { name });
      const inv = await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: person.email, role: "member" });
      expect(inv.statusCode, inv.body).toBe(201);
      expect((await person.client.post(`/api/v1/invites/${inv.json().token}/accept`)).statusCode).toBe(200);
      return person;
    };
    const a = await join("Member A");
    const b = await join("Member B");

    // The owner's own password session cannot switch it on (it would lock them out): first sign in with TOTP.
    const refused = await owner.client.patch(`/api/v1/workspaces/${wid}`, { requireTwoFactor: true });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().code).toBe("TWO_FACTOR_REQUIRED");
    const ownerTotp = await enrol(owner.client, owner.password);
    const strongOwner = await signInWithTotp(owner.email, owner.password, ownerTotp.secret);
    const on = await strongOwner.patch(`/api/v1/workspaces/${wid}`, { requireTwoFactor: true });
    expect(on.statusCode, on.body).toBe(200);
    expect(on.json().requireTwoFactor).toBe(true);
    // Members cannot change it.
    expect((await a.client.patch(`/api/v1/workspaces/${wid}`, { requireTwoFactor: false })).statusCode).toBe(403);

    // Member A on a password session: refused with a sentence; their own workspace still works.
    const blocked = await a.client.get(`/api/v1/workspaces/${wid}`);
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json()).toMatchObject({ code: "TWO_FACTOR_REQUIRED", message: expect.stringMatching(/two-factor/) });
    expect((await a.client.get(`/api/v1/workspaces/${wid}/agents`)).json().code).toBe("TWO_FACTOR_REQUIRED");
    expect((await a.client.get(`/api/v1/workspaces/${a.workspaceId}`)).statusCode).toBe(200);
    expect((await a.client.get("/api/v1/me/two-factor")).json().required).toBe(true);

    // Enrolling does not upgrade the session already open; signing in again with a code does.
    const aTotp = await enrol(a.client, a.password);
    expect((await a.client.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(403);
    const strongA = await signInWithTotp(a.email, a.password, aTotp.secret);
    expect((await strongA.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(200);
    expect((await strongA.get(`/api/v1/workspaces/${wid}/agents`)).statusCode).toBe(200);
    // …and the requirement keeps them from turning it off.
    const off = await strongA.post("/api/v1/me/two-factor/disable", { password: a.password });
    expect(off.statusCode).toBe(403);
    expect(off.json()).toMatchObject({ code: "TWO_FACTOR_REQUIRED", message: expect.stringContaining("workspace") });

    // API keys are the workspace's own credentials: not affected.
    const key = await strongOwner.post(`/api/v1/workspaces/${wid}/api-keys`, { name: "ci", role: "member" });
    expect(key.statusCode, key.body).toBe(201);
    const bot = new ApiClient(t.app, { bearer: key.json().key });
    expect((await bot.get(`/api/v1/workspaces/${wid}/agents`)).statusCode).toBe(200);

    // Member A cannot touch member B's two-factor: the /me routes are their own, the reset is for operators.
    const bTotp = await enrol(b.client, b.password);
    expect((await strongA.post(`/api/v1/admin/users/${b.user.id}/two-factor/reset`)).statusCode).toBe(403);
    expect((await strongOwner.post(`/api/v1/admin/users/${b.user.id}/two-factor/reset`)).statusCode).toBe(403);
    const aStatus = (await strongA.get("/api/v1/me/two-factor")).json();
    expect(aStatus.enabled).toBe(true);
    const strongB = await signInWithTotp(b.email, b.password, bTotp.secret);
    expect((await strongB.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(200);

    const flips = await strongOwner.get(`/api/v1/workspaces/${wid}/audit?action=workspace.require_two_factor`);
    expect(flips.json().items).toHaveLength(1);
    expect(flips.json().items[0].details).toEqual({ from: false, to: true });

    // Operators see who has an authenticator, and reset a lost one: codes gone, every session of B's ended, B
    // enrols again.
    const listedB = async () =>
      (await operator.client.get(`/api/v1/admin/users?q=${encodeURIComponent(b.email)}`)).json().items[0];
    expect(await listedB()).toMatchObject({ id: b.user.id, twoFactorEnabled: true });
    const reset = await operator.client.post(`/api/v1/admin/users/${b.user.id}/two-factor/reset`);
    expect(reset.statusCode).toBe(204);
    expect(await listedB()).toMatchObject({ id: b.user.id, twoFactorEnabled: false });
    expect((await strongB.get("/api/v1/me")).statusCode).toBe(401);
    expect((await b.client.get("/api/v1/me")).statusCode).toBe(401);
    const afterReset = await passwordStep(b.email, b.password);
    expect(afterReset.body.user).toBeDefined();
    expect((await afterReset.client.get("/api/v1/me/two-factor")).json().enabled).toBe(false);
    expect((await afterReset.client.get(`/api/v1/workspaces/${wid}`)).statusCode).toBe(403);
    const resets = (await platformAudit("user.two_factor_reset")).filter((e) => e.targetId === b.user.id);
    expect(resets).toHaveLength(1);
  });

  it("with the platform requiring two-factor, a password sign-in enrols an authenticator before any session", async () => {
    const ed = await signUp(t.app, { name: "Ed" });
    const on = await operator.client.patch("/api/v1/admin/settings", { requireTwoFactor: true });
    expect(on.statusCode, on.body).toBe(200);
    expect(on.json().requireTwoFactor).toEqual({ value: true, source: "settings" });
    try {
      const { client, body } = await passwordStep(ed.email, ed.password);
      expect(body).toEqual({ next: "two_factor_enrol", challenge: expect.any(String) });
      expect((await client.get("/api/v1/me")).statusCode).toBe(401);
      // The two-factor step does not take a code for an account with no authenticator yet.
      const start = await client.post("/api/v1/auth/two-factor/enrol", { challenge: body.challenge });
      expect(start.statusCode, start.body).toBe(200);
      const { secret } = start.json() as { secret: string };
      const wrong = await client.post("/api/v1/auth/two-factor/enrol/confirm", {
        challenge: body.challenge,
        code: "123456",
      });
      expect(wrong.json().code).toBe("TWO_FACTOR_INVALID");
      const done = record(
        await client.post("/api/v1/auth/two-factor/enrol/confirm", {
          challenge: body.challenge,
          code: await nextCode(secret),
        }),
      );
      expect(done.statusCode, done.body).toBe(200);
      expect(done.json().recoveryCodes).toHaveLength(10);
      expect((await client.get("/api/v1/me")).statusCode).toBe(200);
      const status = (await client.get("/api/v1/me/two-factor")).json();
      expect(status).toMatchObject({ enabled: true, required: true });
      const off = await client.post("/api/v1/me/two-factor/disable", { password: ed.password });
      expect(off.json().code).toBe("TWO_FACTOR_REQUIRED");
      // An account that has an authenticator cannot swap it through the enrol step with the password alone.
      const next = await passwordStep(ed.email, ed.password);
      expect(next.body.next).toBe("two_factor");
      const swap = await next.client.post("/api/v1/auth/two-factor/enrol", { challenge: next.body.challenge });
      expect(swap.statusCode).toBe(400);
      secrets.push(secret);
    } finally {
      await operator.client.patch("/api/v1/admin/settings", { requireTwoFactor: null });
    }
  });
});

describe("the seed stays secret", () => {
  it("is only in the setup answer: never in later responses, the audit trail, or the database in clear", async () => {
    const fi = await signUp(t.app, { name: "Fi" });
    const { secret } = await enrol(fi.client, fi.password);
    await signInWithTotp(fi.email, fi.password, secret);
    record(await fi.client.get("/api/v1/me/two-factor"));
    record(await operator.client.get("/api/v1/admin/audit?limit=200"));
    record(await fi.client.get(`/api/v1/workspaces/${fi.workspaceId}/audit?limit=200`));
    const { rows } = await t.db.owner.query<{ user_id: string; secret_sealed: string }>(
      "select user_id, secret_sealed from user_totp",
    );
    const audit = await t.db.owner.query<{ details: unknown }>(
      "select details from platform_audit_log union all select details from audit_log",
    );
    const auditText = JSON.stringify(audit.rows);
    for (const s of secrets) {
      for (const body of seen) expect(body).not.toContain(s);
      expect(auditText).not.toContain(s);
      for (const row of rows) expect(row.secret_sealed).not.toContain(s);
    }
    const sealed = rows.find((r) => r.user_id === fi.user.id)?.secret_sealed;
    expect(sealed).toBeTruthy();
    expect(sealed).not.toContain(secret);
    expect(sealed).not.toContain(secret.toLowerCase());
  });

  it("is resealed under the new root key by `reef rotate-keys`", async () => {
    const gus = await signUp(t.app, { name: "Gus" });
    const { secret } = await enrol(gus.client, gus.password);
    const newKey = randomBytes(32);
    const seeds = (await t.db.owner.query("select count(*)::int as n from user_totp")).rows[0].n as number;
    expect(seeds).toBeGreaterThan(1);
    // Every seed (and no other platform secret: none is set here) is resealed once; a second run has nothing left.
    expect(await resealPlatformSecrets(t.db.database.db, { current: newKey, previous: [rootKey] })).toBe(seeds);
    expect(await resealPlatformSecrets(t.db.database.db, { current: newKey, previous: [rootKey] })).toBe(0);
    const { rows } = await t.db.owner.query<{ secret_sealed: string }>(
      "select secret_sealed from user_totp where user_id = $1",
      [gus.user.id],
    );
    const sealed = rows[0]?.secret_sealed ?? "";
    // Only the new key opens it now (this app, still on the old key, is done after this test).
    expect(createPlatformSealer({ current: newKey, previous: [] }).open(sealed, `totp:${gus.user.id}`)).toBe(secret);
    expect(() => createPlatformSealer(rootKey).open(sealed, `totp:${gus.user.id}`)).toThrow();
  });
});
