import { ConflictError, NotFoundError, RateLimitedError } from "@reef/contracts";
import { buildApp, routeTable } from "@reef/server";
import { buildTestApp, silentLogger, type TestApp, testAppConfig } from "@reef/testing";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";

let t: TestApp;
const BODY_LIMIT = 4096;

beforeAll(async () => {
  t = await buildTestApp({ config: { bodyLimitBytes: BODY_LIMIT } });
});
afterAll(() => t.close());

/**
 * The real app plus a route shaped like the product's (zod params, query and
 * body) and routes that throw each error kind, so the one error handler is
 * exercised end to end.
 */
async function buildProbeApp(): Promise<FastifyInstance> {
  const app = await buildApp({
    config: testAppConfig({ bodyLimitBytes: BODY_LIMIT }),
    database: t.db.database,
    logger: silentLogger,
  });
  app.withTypeProvider<ZodTypeProvider>().post(
    "/things/:id",
    {
      schema: {
        params: z.object({ id: z.uuid() }),
        querystring: z.object({ limit: z.coerce.number().int().min(1) }),
        body: z.object({ name: z.string().min(1) }),
      },
    },
    async (req) => ({ ok: true, name: req.body.name }),
  );
  app.get("/conflict", async () => {
    throw new ConflictError("Name taken.");
  });
  app.get("/missing", async () => {
    throw new NotFoundError();
  });
  app.get("/limited", async () => {
    throw new RateLimitedError(29.2);
  });
  app.get("/boom", async () => {
    throw new Error("database password is hunter2");
  });
  await app.ready();
  return app;
}

describe("error responses", () => {
  it("renders AppErrors as { requestId, code, message, details } with their status", async () => {
    const app = await buildProbeApp();
    const cases: [string, number, string][] = [
      ["/conflict", 409, "CONFLICT"],
      ["/missing", 404, "NOT_FOUND"],
      ["/limited", 429, "RATE_LIMITED"],
      ["/boom", 500, "INTERNAL"],
    ];
    for (const [url, status, code] of cases) {
      const res = await app.inject({ method: "GET", url });
      expect(res.statusCode, url).toBe(status);
      const body = res.json();
      expect(body).toMatchObject({ code, requestId: res.headers["x-request-id"] });
      expect(typeof body.message).toBe("string");
    }
    const limited = await app.inject({ method: "GET", url: "/limited" });
    expect(limited.headers["retry-after"]).toBe("30");
    const boom = await app.inject({ method: "GET", url: "/boom" });
    expect(boom.body).not.toContain("database password");
    await app.close();
  });

  it("reports validation failures with the field and place", async () => {
    const app = await buildProbeApp();
    const res = await app.inject({ method: "POST", url: "/things/abc?limit=zero", payload: { name: 42 } });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.code).toBe("VALIDATION_FAILED");
    expect(body.details[0]).toMatchObject({ in: expect.any(String), path: expect.any(String) });
    const okay = await app.inject({
      method: "POST",
      url: `/things/${crypto.randomUUID()}?limit=5`,
      payload: { name: "ok" },
    });
    expect(okay.statusCode).toBe(200);
    await app.close();
  });

  it("malformed JSON, oversized bodies, wrong media types and wrong types get their own codes", async () => {
    const app = await buildProbeApp();
    const url = `/things/${crypto.randomUUID()}?limit=1`;
    const json = { "content-type": "application/json" };
    const malformed = await app.inject({ method: "POST", url, payload: "{", headers: json });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe("MALFORMED_JSON");
    const big = await app.inject({
      method: "POST",
      url,
      payload: JSON.stringify({ name: "x".repeat(BODY_LIMIT) }),
      headers: json,
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().code).toBe("PAYLOAD_TOO_LARGE");
    const media = await app.inject({ method: "POST", url, payload: "a", headers: { "content-type": "text/csv" } });
    expect(media.statusCode).toBe(415);
    expect(media.json().code).toBe("UNSUPPORTED_MEDIA_TYPE");
    const wrongType = await app.inject({ method: "POST", url, payload: { name: ["x"] } });
    expect(wrongType.statusCode).toBe(400);
    expect(wrongType.json()).toMatchObject({ code: "VALIDATION_FAILED", details: [{ in: "body", path: "name" }] });
    await app.close();
  });
});

describe("no route answers 500 to bad input", () => {
  const json = { "content-type": "application/json" };
  const BAD_BODIES: { name: string; payload: string; headers: Record<string, string> }[] = [
    { name: "malformed JSON", payload: '{"name": ', headers: json },
    { name: "empty JSON body", payload: "", headers: json },
    { name: "prototype pollution", payload: '{"__proto__": {"x": 1}}', headers: json },
    { name: "wrong types", payload: '{"name": [1, {"a": null}], "id": true}', headers: json },
    { name: "oversized body", payload: JSON.stringify({ name: "x".repeat(BODY_LIMIT * 2) }), headers: json },
    {
      name: "unsupported content type",
      payload: "name=x",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    },
  ];

  it("walks every route of the real app with every kind of bad body", async () => {
    const routes = routeTable(t.app);
    expect(routes.map((r) => r.url)).toContain("/readyz");
    let cases = 0;
    for (const route of routes) {
      const url = route.url.replace(/:(\w+)/g, "00000000-0000-4000-8000-000000000000").replace("*", "x");
      for (const method of new Set([route.method, "POST", "PUT", "PATCH", "DELETE"])) {
        if (method === "GET" || method === "HEAD") continue;
        for (const bad of BAD_BODIES) {
          const res = await t.app.inject({ method: method as "POST", url, payload: bad.payload, headers: bad.headers });
          cases++;
          const label = `${method} ${url} with ${bad.name}`;
          // Routes that take no body may ignore it; none may fail with a 5xx.
          expect(res.statusCode, label).toBeLessThan(500);
          // Gateways call the LLM and MCP proxies, and clients the OpenAI-compatible API: those answer `{ error: { code, message } }`.
          const openaiShaped =
            url.startsWith("/internal/llm/") || url.startsWith("/internal/mcp/") || url.includes("/openai/v1/");
          if (res.statusCode >= 400 && openaiShaped && res.json().error) {
            expect(res.json(), label).toMatchObject({
              error: { code: expect.any(String), message: expect.any(String) },
            });
          } else if (res.statusCode >= 400) {
            expect(res.json(), label).toMatchObject({
              requestId: expect.any(String),
              code: expect.any(String),
              message: expect.any(String),
            });
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(50);
  });
});
