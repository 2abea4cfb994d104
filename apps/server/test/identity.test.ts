import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

describe("signup", () => {
  it("creates the account, a personal workspace it owns, and a session; the first account is super_admin", async () => {
    const client = new ApiClient(t.app);
    const res = await client.post("/api/v1/auth/signup", {
      email: "First@Example.test",
      password: "correct horse battery",
      name: "Ada",
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.user).toMatchObject({ email: "First@Example.test", name: "Ada", platformRole: "super_admin" });
    expect(body.workspace).toMatchObject({ role: "owner", name: "Ada's workspace" });
    expect(JSON.stringify(body)).not.toContain("correct horse");
    const session = res.cookies.find((c) => c.name === "reef_session");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" });
    expect(res.cookies.find((c) => c.name === "reef_csrf")?.httpOnly).toBeFalsy();

    const me = await client.get("/api/v1/me");
    expect(me.statusCode).toBe(200);
    expect(me.json().workspaces).toEqual([
      { id: body.workspace.id, name: "Ada's workspace", role: "owner", personal: true },
    ]);

    const second = await signUp(t.app);
    expect(second.user.platformRole).toBe("user");
  });

  it("refuses a taken email (any case) and weak passwords with clear messages", async () => {
    const a = await signUp(t.app, { email: "taken@example.test" });
    expect(a.user.email).toBe("taken@example.test");
    const dup = await new ApiClient(t.app).post("/api/v1/auth/signup", {
      email: "TAKEN@example.test",
      password: "another long password",
      name: "B",
    });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().code).toBe("CONFLICT");
    const weak = await new ApiClient(t.app).post("/api/v1/auth/signup", {
      email: "weak@example.test",
      password: "short",
      name: "W",
    });
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({
      code: "VALIDATION_FAILED",
      message: expect.stringMatching(/at least 10 characters/),
    });
    const common = await new ApiClient(t.app).post("/api/v1/auth/signup", {
      email: "weak@example.test",
      password: "Password123",
      name: "W",
    });
    expect(common.json().message).toMatch(/less common/);
    const bad = await new ApiClient(t.app).post("/api/v1/auth/signup", {
      email: "not-an-email",
      password: "long enough password",
      name: "X",
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().details[0]).toMatchObject({ path: "email" });
  });
});

describe("sessions", () => {
  it("logs in, lists sessions, revokes one, and logout ends the session at once", async () => {
    const { email, password } = await signUp(t.app);
    const laptop = new ApiClient(t.app);
    expect((await laptop.post("/api/v1/auth/login", { email: email.toUpperCase(), password })).statusCode).toBe(200);
    const phone = new ApiClient(t.app);
    expect((await phone.post("/api/v1/auth/login", { email, password })).statusCode).toBe(200);

    const list = await laptop.get("/api/v1/me/sessions");
    expect(list.statusCode).toBe(200);
    const sessions = list.json().items as { id: string; current: boolean; method: string | null }[];
    expect(sessions.length).toBe(3);
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    // How each signed in: the account's first session at sign-up, then two password sign-ins.
    expect(sessions.map((s) => s.method).sort()).toEqual(["password", "password", "signup"]);
    const phoneSession = (await phone.get("/api/v1/me/sessions"))
      .json()
      .items.find((s: { current: boolean }) => s.current);

    expect((await laptop.delete(`/api/v1/me/sessions/${phoneSession.id}`)).statusCode).toBe(204);
    expect((await phone.get("/api/v1/me")).statusCode).toBe(401);

    const stolen = new Map(laptop.cookies);
    expect((await laptop.post("/api/v1/auth/logout")).statusCode).toBe(204);
    expect(laptop.cookies.has("reef_session")).toBe(false);
    const replay = new ApiClient(t.app);
    for (const [k, v] of stolen) replay.cookies.set(k, v);
    expect((await replay.get("/api/v1/me")).statusCode).toBe(401);
  });

  it("wrong password and unknown email get the same 401", async () => {
    const { email } = await signUp(t.app);
    const wrong = await new ApiClient(t.app).post("/api/v1/auth/login", { email, password: "not the password" });
    const unknown = await new ApiClient(t.app).post("/api/v1/auth/login", {
      email: "nobody@example.test",
      password: "not the password",
    });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json().message).toBe(unknown.json().message);
  });

  // Repeated failures slow an account down instead of locking it: login-throttle.test.ts.
});

describe("CSRF", () => {
  it("rejects cookie-authenticated mutations without the token, accepts them with it", async () => {
    const { client } = await signUp(t.app);
    client.csrf = false;
    const blocked = await client.post("/api/v1/workspaces", { name: "No token" });
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json().code).toBe("CSRF_FAILED");
    const wrong = await client.request("POST", "/api/v1/workspaces", { name: "Wrong" }, { "x-csrf-token": "forged" });
    expect(wrong.json().code).toBe("CSRF_FAILED");
    client.csrf = true;
    expect((await client.post("/api/v1/workspaces", { name: "With token" })).statusCode).toBe(201);
    // Reads need no token.
    client.csrf = false;
    expect((await client.get("/api/v1/workspaces")).statusCode).toBe(200);
  });
});
