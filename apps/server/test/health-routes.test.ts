import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildTestApp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
let webDir: string;
const METRICS_TOKEN = "scrape-token-0123456789abcdef";

beforeAll(async () => {
  webDir = await mkdtemp(join(tmpdir(), "reef-web-"));
  await writeFile(join(webDir, "index.html"), "<!doctype html><title>Reef test page</title>");
  t = await buildTestApp({ webDistDir: webDir, config: { metricsToken: METRICS_TOKEN } });
});
afterAll(() => t.close());

describe("probes", () => {
  it("GET /healthz answers while the process is up", async () => {
    const res = await t.app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: "ok" });
  });

  it("GET /readyz is 200 with the database reachable and migrations applied", async () => {
    const res = await t.app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: "ready",
      checks: { database: { ok: true }, migrations: { ok: true, pending: [] } },
    });
  });

  it("GET /metrics, with the scrape token, exposes the HTTP latency histogram by route pattern", async () => {
    await t.app.inject({ method: "GET", url: "/healthz" });
    const res = await t.app.inject({
      method: "GET",
      url: "/metrics",
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/plain/);
    expect(res.body).toMatch(/reef_http_request_duration_seconds_bucket\{.*route="\/healthz".*\} \d+/);
    expect(res.body).toContain("reef_process_resident_memory_bytes");
  });

  // Issue 11 item 14: the metrics (routes, memory, request rates) were public.
  it("GET /metrics refuses a scraper without the right token", async () => {
    const wrong = [
      {},
      { authorization: "Bearer wrong-token-0123456789abcdef" },
      { authorization: `Bearer ${METRICS_TOKEN}x` },
      { authorization: `Basic ${Buffer.from(`metrics:${METRICS_TOKEN}`).toString("base64")}` },
      { authorization: METRICS_TOKEN },
    ];
    for (const headers of wrong) {
      const res = await t.app.inject({ method: "GET", url: "/metrics", headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(401);
      expect(res.headers["www-authenticate"]).toBe("Bearer");
      expect(res.body).not.toContain("reef_http_request_duration_seconds");
    }
  });

  it("GET /metrics is not served at all when no token is configured", async () => {
    const bare = await buildTestApp({ webDistDir: webDir });
    try {
      const res = await bare.app.inject({ method: "GET", url: "/metrics" });
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain("reef_");
      const guessed = await bare.app.inject({
        method: "GET",
        url: "/metrics",
        headers: { authorization: "Bearer undefined" },
      });
      expect(guessed.statusCode).toBe(404);
    } finally {
      await bare.close();
    }
  });
});

describe("request plumbing", () => {
  it("gives every response a request id, keeping a well-formed incoming one", async () => {
    const fresh = await t.app.inject({ method: "GET", url: "/healthz" });
    expect(fresh.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await t.app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "edge-123" } });
    expect(kept.headers["x-request-id"]).toBe("edge-123");
    const bogus = await t.app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "a b\nc" } });
    expect(bogus.headers["x-request-id"]).not.toBe("a b\nc");
  });

  it("sends security headers", async () => {
    const res = await t.app.inject({ method: "GET", url: "/" });
    expect(res.headers["content-security-policy"]).toContain("default-src 'self'");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["x-frame-options"]).toBe("SAMEORIGIN");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
  });

  it("sends HSTS only when the public URL is https", async () => {
    expect(
      (await t.app.inject({ method: "GET", url: "/healthz" })).headers["strict-transport-security"],
    ).toBeUndefined();
    const secure = await buildTestApp({ config: { publicUrl: "https://reef.example.org" } });
    const res = await secure.app.inject({ method: "GET", url: "/healthz" });
    expect(res.headers["strict-transport-security"]).toMatch(/max-age=\d+/);
    expect(res.headers["content-security-policy"]).toContain("upgrade-insecure-requests");
    await secure.close();
  });

  it("serves the web app at / and for client-side routes, JSON 404 for unknown API paths", async () => {
    const root = await t.app.inject({ method: "GET", url: "/" });
    expect(root.statusCode).toBe(200);
    expect(root.body).toContain("Reef test page");
    const deep = await t.app.inject({ method: "GET", url: "/workspaces/x/chat", headers: { accept: "text/html" } });
    expect(deep.statusCode).toBe(200);
    expect(deep.body).toContain("Reef test page");
    const api = await t.app.inject({ method: "GET", url: "/api/v1/nope", headers: { accept: "text/html" } });
    expect(api.statusCode).toBe(404);
    expect(api.json()).toMatchObject({ code: "NOT_FOUND", requestId: api.headers["x-request-id"] });
  });
});

describe("API documentation", () => {
  it("publishes an OpenAPI document generated from the routes", async () => {
    const res = await t.app.inject({ method: "GET", url: "/api/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.paths["/readyz"].get.responses).toHaveProperty("503");
    expect(doc.paths["/metrics"]).toBeUndefined();
  });

  it("serves the docs page", async () => {
    const res = await t.app.inject({ method: "GET", url: "/api/docs/" });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("swagger");
  });
});

describe("readiness when the database goes away", () => {
  it("answers 503 without leaking connection details", async () => {
    const own = await buildTestApp();
    await own.db.database.pool.end();
    const res = await own.app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      status: "not_ready",
      checks: { database: { ok: false, error: "database unreachable" } },
    });
    expect(res.body).not.toMatch(/postgres|127\.0\.0\.1|reef_app/);
    await own.app.close();
    await own.db.owner.end();
  });
});
