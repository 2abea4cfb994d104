import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Issue 11 item 13: the CSRF token is bound to the session (an HMAC of its id),
// so a cookie and header pair an attacker makes up, or a token of another
// session, proves nothing. On https the cookies carry the `__Host-` prefix.

let http: TestApp;
let https: TestApp;
beforeAll(async () => {
  http = await buildTestApp();
  https = await buildTestApp({ config: { publicUrl: "https://reef.example.test" } });
});
afterAll(async () => {
  await http?.close();
  await https?.close();
});

/** A cookie-authenticated POST with exactly the cookies and CSRF header given. */
function post(t: TestApp, cookies: Record<string, string>, csrf: string | undefined) {
  return t.app.inject({
    method: "POST",
    url: "/api/v1/workspaces",
    headers: {
      cookie: Object.entries(cookies)
        .map(([k, v]) => `${k}=${v}`)
        .join("; "),
      ...(csrf === undefined ? {} : { "x-csrf-token": csrf }),
    },
    payload: { name: "Made by CSRF" },
  });
}

describe("CSRF tokens bound to the session", () => {
  it("refuses a self-made cookie and header pair (the reported attack)", async () => {
    const victim = await signUp(http.app);
    const session = victim.client.cookies.get("reef_session") as string;
    const forged = await post(http, { reef_session: session, reef_csrf: "attacker-chosen" }, "attacker-chosen");
    expect(forged.statusCode).toBe(403);
    expect(forged.json().code).toBe("CSRF_FAILED");
    // Even a value shaped like a real token (32 bytes, base64url) is refused.
    const shaped = "A".repeat(43);
    expect((await post(http, { reef_session: session, reef_csrf: shaped }, shaped)).statusCode).toBe(403);
    expect((await post(http, { reef_session: session }, undefined)).statusCode).toBe(403);
  });

  it("refuses another session's token, even the same person's", async () => {
    const victim = await signUp(http.app);
    const laptop = new ApiClient(http.app);
    const login = await laptop.post("/api/v1/auth/login", { email: victim.email, password: victim.password });
    expect(login.statusCode, login.body).toBe(200);
    const attacker = await signUp(http.app);

    const session = victim.client.cookies.get("reef_session") as string;
    for (const other of [laptop, attacker.client]) {
      const token = other.cookies.get("reef_csrf") as string;
      const res = await post(http, { reef_session: session, reef_csrf: token }, token);
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe("CSRF_FAILED");
    }
    expect(laptop.cookies.get("reef_csrf")).not.toBe(victim.client.cookies.get("reef_csrf"));
  });

  it("accepts the session's own token, with or without the cookie", async () => {
    const person = await signUp(http.app);
    const session = person.client.cookies.get("reef_session") as string;
    const token = person.client.cookies.get("reef_csrf") as string;
    expect((await post(http, { reef_session: session, reef_csrf: token }, token)).statusCode).toBe(201);
    // The cookie only carries the token to the page; the header is what counts.
    expect((await post(http, { reef_session: session }, token)).statusCode).toBe(201);
    // A page whose CSRF cookie is missing or stale (a retired root key) gets the current one back.
    const me = await http.app.inject({
      method: "GET",
      url: "/api/v1/me",
      headers: { cookie: `reef_session=${session}` },
    });
    expect(me.cookies.find((c) => c.name === "reef_csrf")?.value).toBe(token);
    const current = await http.app.inject({
      method: "GET",
      url: "/api/v1/me",
      headers: { cookie: `reef_session=${session}; reef_csrf=${token}` },
    });
    expect(current.cookies).toEqual([]);
    // Bearer API keys need no token.
    const key = (
      await person.client.post(`/api/v1/workspaces/${person.workspaceId}/api-keys`, {
        name: "k",
        role: "admin",
      })
    ).json().key as string;
    const bot = new ApiClient(http.app, { bearer: key });
    expect((await bot.patch(`/api/v1/workspaces/${person.workspaceId}`, { name: "By key" })).statusCode).toBe(200);
  });

  it("on https, uses __Host- cookies (Secure, Path=/, no Domain) and ignores plain-named ones", async () => {
    const person = await signUp(https.app);
    const signup = await https.app.inject({
      method: "POST",
      url: "/api/v1/auth/login",
      payload: { email: person.email, password: person.password },
    });
    const byName = new Map(signup.cookies.map((c) => [c.name, c]));
    expect([...byName.keys()].sort()).toEqual(["__Host-reef_csrf", "__Host-reef_session"]);
    for (const c of byName.values()) {
      expect(c).toMatchObject({ secure: true, path: "/" });
      expect(c.domain).toBeUndefined();
    }
    expect(byName.get("__Host-reef_session")?.httpOnly).toBe(true);
    expect(byName.get("__Host-reef_csrf")?.httpOnly).toBeFalsy();

    // The browser-like client finds the prefixed CSRF cookie, as the web app does.
    expect((await person.client.post("/api/v1/workspaces", { name: "Over https" })).statusCode).toBe(201);
    const session = person.client.cookies.get("__Host-reef_session") as string;
    const token = person.client.cookies.get("__Host-reef_csrf") as string;
    expect((await post(https, { reef_session: session, reef_csrf: token }, token)).statusCode).toBe(401);
    const forged = await post(https, { "__Host-reef_session": session, "__Host-reef_csrf": "x" }, "x");
    expect(forged.json().code).toBe("CSRF_FAILED");
  });
});
