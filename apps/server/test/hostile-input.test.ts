import { routeTable } from "@reef/server";
import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JsonSchema, type OpenApi, type Operation, operationsOf, resolveSchema } from "./openapi-doc.ts";

// Input an attacker controls must never reach Postgres in a shape it rejects:
// NUL characters (which text columns cannot hold) in any body field, query
// parameter or path segment, and tampered pagination cursors on every list.
// The walk reads the routes and their shapes from the app's own OpenAPI document,
// so a new route is covered without anyone remembering to add it here.

const NUL = "ab\u0000cd";
const UUID = "00000000-0000-4000-8000-000000000000";

let t: TestApp;
let owner: Awaited<ReturnType<typeof signUp>>;
let doc: OpenApi;
/** The OpenAI-compatible routes take API keys only (docs/openai-api.md): they are probed with one. */
let keyClient: ApiClient;
beforeAll(async () => {
  t = await buildTestApp();
  owner = await signUp(t.app); // the first account: super_admin, so admin routes are reached too
  doc = (await owner.client.get("/api/openapi.json")).json();
  const made = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/api-keys`, {
    name: "openai",
    role: "member",
  });
  keyClient = new ApiClient(t.app, { bearer: made.json().key });
});
afterAll(() => t.close());

const resolve = (s: JsonSchema) => resolveSchema(doc, s);

/** A value the schema accepts (best effort), so a NUL in one field is what gets judged. */
function sample(schema: JsonSchema): unknown {
  const s = resolve(schema);
  if (s.const !== undefined) return s.const;
  if (s.enum?.length) return s.enum.find((v) => v !== null) ?? s.enum[0];
  const options = s.anyOf ?? s.oneOf;
  if (options) return sample(options.find((o) => resolve(o).type !== "null") ?? options[0] ?? {});
  if (s.allOf?.length) return Object.assign({}, ...s.allOf.map((p) => sample(p) as object));
  const type = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  switch (type) {
    case "object":
      return Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, sample(v)]));
    case "array":
      return s.items ? [sample(s.items)] : [];
    case "integer":
    case "number":
      return Math.max(s.minimum ?? 1, 1);
    case "boolean":
      return false;
    case "string":
      if (s.format === "uuid") return UUID;
      if (s.format === "email") return "someone@example.test";
      if (s.format === "date-time") return new Date().toISOString();
      if (s.format === "uri" || s.format === "url") return "https://example.test";
      return "x".repeat(Math.max(s.minLength ?? 1, 12));
    default:
      return "x".repeat(12);
  }
}

/** Every string leaf of `value`, as a path of keys and indices. */
function stringPaths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (typeof value === "string") return [at];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringPaths(v, [...at, i]));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => stringPaths(v, [...at, k]));
  return [];
}

function withNul(value: unknown, path: (string | number)[]): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  const old = String(node[last]);
  // Keep an email an email, so the NUL is the only thing wrong with it.
  node[last] = old.includes("@") ? `a\u0000${old}` : NUL;
  return copy;
}

interface Probe {
  method: string;
  url: string;
  body?: unknown;
  label: string;
}

const operations = () => operationsOf(doc);

function fillPath(path: string, op: Operation, nulIn?: string): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (name === nulIn) return encodeURIComponent(NUL);
    if (name === "wid" || name === "workspaceId") return owner.workspaceId;
    const schema = op.parameters?.find((p) => p.in === "path" && p.name === name)?.schema ?? {};
    return encodeURIComponent(String(sample(schema)));
  });
}

function nulProbes(): Probe[] {
  const probes: Probe[] = [];
  for (const { method, path, op } of operations()) {
    const bodySchema = op.requestBody?.content?.["application/json"]?.schema;
    const body = bodySchema ? sample(bodySchema) : undefined;
    const query = (op.parameters ?? []).filter((p) => p.in === "query");
    const validQuery = new URLSearchParams();
    for (const p of query) {
      if (p.name !== "cursor") validQuery.set(p.name, String(sample(p.schema ?? {})));
    }
    const url = (nulIn?: string, q = validQuery) => `${fillPath(path, op, nulIn)}${q.size ? `?${q}` : ""}`;
    for (const at of stringPaths(body)) {
      probes.push({ method, url: url(), body: withNul(body, at), label: `${method} ${path} body.${at.join(".")}` });
    }
    for (const p of query) {
      const q = new URLSearchParams(validQuery);
      q.set(p.name, NUL);
      probes.push({ method, url: url(undefined, q), body, label: `${method} ${path} ?${p.name}` });
    }
    for (const p of (op.parameters ?? []).filter((x) => x.in === "path")) {
      probes.push({ method, url: url(p.name), body, label: `${method} ${path} /{${p.name}}` });
    }
  }
  return probes;
}

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** Cursors no list can accept. */
const BAD_CURSORS: [string, string][] = [
  ["random bytes", Buffer.from("9f3c1a7e55d2b08e4417c0de", "hex").toString("base64url")],
  ["not base64 at all", "!!!%%%***"],
  ["JSON null", b64(null)],
  ["JSON array", b64([1, 2])],
  ["JSON string", b64("page-2")],
  ["empty object", b64({})],
  ["wrong types", b64({ id: { $gt: "" }, createdAt: [], userId: true, email: 5 })],
  ["fractional and huge numbers", b64('{"id":1.5,"createdAt":1e400,"userId":-1,"email":null}')],
  ["NUL bytes", b64({ id: "\u0000", createdAt: "\u0000", userId: "\u0000", email: "a\u0000b" })],
  ["not a uuid, not a date", b64({ id: "1 or 1=1", createdAt: "yesterday", userId: "me", email: "x" })],
  [
    "integer beyond bigint, dates beyond range",
    b64({ id: "99999999999999999999999", createdAt: "-271821-04-20T00:00:00.000Z", userId: "0", email: "x" }),
  ],
];
/** Cursors some lists accept (their keys are right for them); none may fail with a 5xx. */
const ODD_CURSORS: [string, string][] = [
  ["uuid ids", b64({ id: UUID, createdAt: "2020-01-01T00:00:00.000Z", userId: UUID, email: "a@example.test" })],
  ["integer ids", b64({ id: 12, createdAt: "2999-12-31T23:59:59.999Z", userId: UUID, email: "" })],
  ["integer ids as text", b64({ id: "12", createdAt: "2020-02-30T00:00:00Z", userId: UUID, email: "zzz" })],
];

async function send(client: ApiClient, probe: Probe) {
  return client.request(probe.method as "GET", probe.url, probe.body);
}

describe("hostile input", () => {
  it("the OpenAPI document covers every route the app answers", () => {
    const documented = new Set(operations().map((o) => `${o.method} ${o.path.replace(/\{(\w+)\}/g, ":$1")}`));
    const missing = routeTable(t.app)
      .filter((r) => !r.hidden && r.method !== "HEAD" && r.url.startsWith("/api/v1/"))
      .map((r) => `${r.method} ${r.url}`)
      .filter((r) => !documented.has(r));
    expect(missing).toEqual([]);
  });

  it("a NUL character anywhere in a body, query or path answers 400 on every route, never 5xx", async () => {
    const probes = nulProbes();
    expect(probes.length).toBeGreaterThan(60);
    const failures: string[] = [];
    for (const probe of probes) {
      // The OpenAI-compatible routes answer in OpenAI's error shape.
      const openai = probe.url.includes("/openai/v1/");
      const res = await send(openai ? keyClient : owner.client, probe);
      const refused = openai
        ? res.json().error?.type === "invalid_request_error"
        : res.json().code === "VALIDATION_FAILED";
      if (res.statusCode !== 400 || !refused) {
        failures.push(`${probe.label}: ${res.statusCode} ${res.body.slice(0, 120)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("a NUL in the sign-in email or signup fields answers 400, not 500", async () => {
    const anonymous = new ApiClient(t.app, { ip: "192.0.2.50" });
    const login = await anonymous.post("/api/v1/auth/login", {
      email: "a\u0000@example.test",
      password: "whatever1234",
    });
    expect(login.statusCode).toBe(400);
    expect(login.json()).toMatchObject({ code: "VALIDATION_FAILED", details: [{ in: "body", path: "email" }] });
    const signup = await anonymous.post("/api/v1/auth/signup", {
      email: "new@example.test",
      password: "correct horse battery",
      name: "Eve\u0000",
    });
    expect(signup.statusCode).toBe(400);
    // A NUL in a key is refused as well.
    const key = await anonymous.post("/api/v1/auth/login", { email: "a@example.test", password: "x", "\u0000": 1 });
    expect(key.statusCode).toBe(400);
  });

  it("tampered cursors answer 400 on every list, never 5xx", async () => {
    const lists = operations().filter((o) => o.method === "GET" && o.op.parameters?.some((p) => p.name === "cursor"));
    expect(lists.length).toBeGreaterThan(8);
    const failures: string[] = [];
    for (const { path, op } of lists) {
      const base = fillPath(path, op);
      for (const [name, cursor] of [...BAD_CURSORS, ...ODD_CURSORS]) {
        const res = await owner.client.get(`${base}?cursor=${encodeURIComponent(cursor)}`);
        const bad = BAD_CURSORS.some(([n]) => n === name);
        const body = res.json();
        const ok = bad
          ? res.statusCode === 400 && ["BAD_REQUEST", "VALIDATION_FAILED"].includes(body.code)
          : res.statusCode < 500 && (res.statusCode < 400 || typeof body.code === "string");
        if (!ok) failures.push(`GET ${path} cursor ${name}: ${res.statusCode} ${res.body.slice(0, 120)}`);
        if (bad && res.statusCode === 400 && body.code === "BAD_REQUEST") {
          expect(body.message, `${path} ${name}`).toMatch(/cursor/i);
        }
      }
    }
    expect(failures).toEqual([]);
  });
});
