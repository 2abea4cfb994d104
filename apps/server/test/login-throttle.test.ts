import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Wrong passwords slow an account down (progressive delay, capped at a few
// seconds, reset on success) instead of locking it: an attacker from other
// addresses cannot keep its owner out, and each attacking address runs into the
// per-IP limit.

const IP_LIMIT = 8;
const FREE_FAILURES = 3;
/** The longest an attempt is held (the shipped cap), plus slack for a loaded machine. */
const MAX_HOLD_MS = 4_000 + 3_000;

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({
    config: {
      rateLimitLoginIp: { points: IP_LIMIT, durationSec: 900 },
      rateLimitLoginAccount: { points: FREE_FAILURES, durationSec: 900 },
    },
  });
});
afterAll(() => t.close());

const login = (client: ApiClient, email: string, password: string) =>
  client.post("/api/v1/auth/login", { email, password });

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

describe("sign-in brute force", () => {
  it("an attacker hammering from several addresses cannot lock the owner out; each attacking address gets 429", async () => {
    const { email, password } = await signUp(t.app);
    const attackers = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"].map(
      (ip) => new ApiClient(t.app, { ip }),
    );
    const hammer = (a: ApiClient) =>
      Promise.all(Array.from({ length: IP_LIMIT }, (_, i) => login(a, email, `wrong-guess-${a.ip}-${i}`)));
    // Three addresses spend their whole per-IP allowance on this account, at once...
    const first = (await Promise.all(attackers.slice(0, 3).map(hammer))).flat();
    // ...and a fourth keeps hammering while the owner signs in from their own address.
    const second = hammer(attackers[3] as ApiClient);
    await new Promise((r) => setTimeout(r, 300));
    const owner = new ApiClient(t.app, { ip: "198.51.100.9" });
    const during = await timed(() => login(owner, email, password));
    expect(during.value.statusCode).toBe(200);
    expect(during.ms).toBeLessThan(MAX_HOLD_MS);
    const results = [...first, ...(await second)];
    expect(results.map((r) => r.statusCode)).toEqual(Array(4 * IP_LIMIT).fill(401));
    // Each attacking address is now out of attempts, whatever account it tries.
    for (const a of attackers) {
      const res = await login(a, email, password);
      expect(res.statusCode).toBe(429);
      expect(res.json().code).toBe("RATE_LIMITED");
      expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
    }
    // And once the flood is over the owner still signs in, at most after a short hold.
    const after = await timed(() => login(new ApiClient(t.app, { ip: "198.51.100.10" }), email, password));
    expect(after.value.statusCode).toBe(200);
    expect(after.ms).toBeLessThan(MAX_HOLD_MS);
  });

  it("slows failures down progressively, caps the hold, audits once, and resets on success", async () => {
    const { email, password } = await signUp(t.app);
    // Distinct addresses, so only the per-account delay is at work.
    let n = 0;
    const fresh = () => new ApiClient(t.app, { ip: `192.0.2.${++n}` });
    const holds: number[] = [];
    for (let i = 0; i < FREE_FAILURES + 4; i++) {
      const r = await timed(() => login(fresh(), email, `wrong-${i}-xxxxxxxx`));
      expect(r.value.statusCode).toBe(401);
      holds.push(r.ms);
    }
    // Past the free failures each attempt is held at least 0.5 s, 1 s, 2 s, 4 s.
    expect(holds[FREE_FAILURES]).toBeGreaterThanOrEqual(500);
    expect(holds[FREE_FAILURES + 1]).toBeGreaterThanOrEqual(1_000);
    expect(holds[FREE_FAILURES + 2]).toBeGreaterThanOrEqual(2_000);
    expect(holds[FREE_FAILURES + 3]).toBeGreaterThanOrEqual(4_000);
    expect(Math.max(...holds)).toBeLessThan(MAX_HOLD_MS);

    const ok = await login(fresh(), email, password);
    expect(ok.statusCode).toBe(200);
    // Success resets the account: the next mistake is answered at once.
    const quick = await timed(() => login(fresh(), email, "wrong-after-success"));
    expect(quick.value.statusCode).toBe(401);
    expect(quick.ms).toBeLessThan(1_500);

    const { rows } = await t.db.owner.query(
      "select action, details from platform_audit_log where action like 'rate_limit.%' and details->>'email' = $1",
      [email.toLowerCase()],
    );
    expect(rows.map((r) => r.action)).toEqual(["rate_limit.login_delayed"]);
  });

  it("an unknown email is slowed the same way, so timing does not reveal which accounts exist", async () => {
    let n = 0;
    const fresh = () => new ApiClient(t.app, { ip: `192.0.2.${100 + ++n}` });
    const holds: number[] = [];
    for (let i = 0; i < FREE_FAILURES + 2; i++) {
      const r = await timed(() => login(fresh(), "nobody-here@example.test", `wrong-${i}-xxxxxxxx`));
      expect(r.value.statusCode).toBe(401);
      holds.push(r.ms);
    }
    expect(holds[FREE_FAILURES + 1]).toBeGreaterThanOrEqual(1_000);
  });
});
