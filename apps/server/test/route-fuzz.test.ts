/**
 * Route fuzzer. Reads the app's own OpenAPI document and, for every operation,
 * sends requests fast-check generates from the operation's schemas: valid values,
 * boundary values (empty, max length ±1, 0, negatives, huge numbers, unicode,
 * lone surrogates, NUL), malformed ones (wrong types, missing required, extra
 * properties, bad JSON, the wrong content type) and path ids that are real, of
 * another tenant, random or not ids at all; as the workspace's owner (the
 * platform's first account, so admin routes are reached), as a plain member, with
 * an API key and with no credentials. No request may answer 5xx: a 5xx is printed
 * with its request and fails the test.
 *
 * Reproducible: a fixed seed, overridden with REEF_FUZZ_SEED; REEF_FUZZ_RUNS sets
 * the requests per operation. No gateway starts: the routes that would wake one
 * (runtime start/wake, chat messages, chat completions) never get a real chat
 * session, workspace or model id the caller may use, so they answer 4xx before any
 * runtime is touched; the last test checks no runtime left "stopped".
 */
import { servicesOf } from "@reef/server";
import { ApiClient, buildTestApp, type SmtpStandIn, signUp, startSmtpStandIn, type TestApp } from "@reef/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JsonSchema, type OpenApi, type Operation, operationsOf, resolveSchema } from "./openapi-doc.ts";

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

const SEED = Number(process.env.REEF_FUZZ_SEED ?? 20261218);
const RUNS = Number(process.env.REEF_FUZZ_RUNS ?? 32);
const PASSWORD = "correct horse battery";

/** Operations that would start a gateway when given ids the caller may use: they never get them. */
const WAKES = new Set([
  "POST /api/v1/workspaces/{wid}/runtime/start",
  "POST /api/v1/workspaces/{wid}/runtime/wake",
  "POST /api/v1/workspaces/{wid}/sessions/{chatSessionId}/messages",
  "POST /api/v1/workspaces/{wid}/openai/v1/chat/completions",
]);
/** Where a URL is taken, only loopback (on a closed port) or nonsense: the fuzzer reaches no other host. */
const URLS = [
  "http://127.0.0.1:9/v1",
  "https://127.0.0.1:9",
  "http://[::1]:9/x",
  "http://localhost:9/mcp",
  "ftp://127.0.0.1:9/",
  "javascript:alert(1)",
  "file:///etc/passwd",
  "http://127.0.0.1:99999",
  "http://user:pass@127.0.0.1:9/?a=%00",
  "//127.0.0.1:9",
  "not a url",
  "",
];
const URLISH = /(url|host|issuer|endpoint)$/i;

let t: TestApp;
let smtp: SmtpStandIn;
let doc: OpenApi;
let owner: Awaited<ReturnType<typeof signUp>>;
let member: Awaited<ReturnType<typeof signUp>>;
let keyClient: ApiClient;
const anonymous = () => new ApiClient(t.app, { ip: "198.51.100.7" });
/** Path parameter → the owner's real id, and another tenant's. */
const ids: Record<string, string> = {};
const otherIds: Record<string, string> = {};

const resolve = (s: JsonSchema | undefined) => resolveSchema(doc, s);

const knownUuids = () => [...Object.values(ids), ...Object.values(otherIds)].filter((v) => /^[0-9a-f-]{36}$/.test(v));

const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.string({ maxLength: 8 }),
  fc.constant([]),
  fc.constant({}),
  fc.constant([{ a: 1 }]),
  fc.constant({ $gt: "" }),
);

const UNICODE = [
  "\u0000",
  "a\u0000b",
  "\uD800",
  "x\uDFFFy",
  "\uFEFF",
  "\u202Eevil",
  "😀".repeat(40),
  "Ω≈ç√",
  " ",
  "\n",
];

/** Values at and just past the schema's edges, and the characters text columns choke on. */
function boundary(s: JsonSchema): fc.Arbitrary<unknown> {
  const type = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  if (type === "integer" || type === "number") {
    const edges = [0, -1, -0, 1.5, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_SAFE_INTEGER];
    for (const v of [s.minimum, s.maximum, s.exclusiveMinimum, s.exclusiveMaximum])
      if (v !== undefined) edges.push(v, v - 1, v + 1);
    return fc.constantFrom(...edges);
  }
  if (type === "array") {
    const n = s.maxItems ?? 0;
    return fc.constantFrom([], n ? Array.from({ length: n + 1 }, () => "x") : [null], [null, 1, "x"]);
  }
  if (type === "object") return fc.constantFrom({}, { "": 1 }, { __proto__: { a: 1 } }, { constructor: 1 });
  const lengths = [0, 1, s.minLength, s.maxLength].filter((n): n is number => n !== undefined);
  const sized = lengths.flatMap((n) => [n - 1, n, n + 1]).filter((n) => n >= 0 && n < 200_000);
  return fc.oneof(
    fc.constantFrom(...sized.map((n) => "x".repeat(n)), ...UNICODE),
    fc.string({ unit: "grapheme", maxLength: 30 }),
    fc.string({ unit: "binary", maxLength: 30 }),
  );
}

/** A value the schema accepts (best effort: patterns through fast-check's stringMatching). */
function valid(schema: JsonSchema | undefined, name = "", depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(schema);
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum?.length) return fc.constantFrom(...s.enum);
  const options = s.anyOf ?? s.oneOf;
  if (options?.length) return fc.oneof(...options.map((o) => valid(o, name, depth)));
  if (s.allOf?.length)
    return fc.tuple(...s.allOf.map((p) => valid(p, name, depth))).map((parts) => Object.assign({}, ...parts));
  if (Array.isArray(s.type)) return fc.oneof(...s.type.map((ty) => valid({ ...s, type: ty }, name, depth)));
  switch (s.type) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer":
    case "number": {
      const min = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -1000);
      const max = Math.min(s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : 1e6), 2 ** 31);
      return fc.integer({ min: Math.ceil(min), max: Math.max(Math.ceil(min), Math.floor(max)) });
    }
    case "array":
      return fc.array(valid(s.items, name, depth + 1), {
        minLength: s.minItems ?? 0,
        maxLength: Math.max(s.minItems ?? 0, Math.min(s.maxItems ?? 3, 3)),
      });
    case "object":
      return objectOf(s, depth, (p, n) => valid(p, n, depth + 1));
    case "string":
      return validString(s, name);
    default:
      return wrongType;
  }
}

function validString(s: JsonSchema, name: string): fc.Arbitrary<unknown> {
  const fit = (v: string) => v.slice(0, s.maxLength ?? v.length).padEnd(s.minLength ?? 0, "x");
  if (s.format === "uuid") return fc.oneof(fc.constantFrom(...knownUuids()), fc.uuid());
  if (s.format === "email") return fc.oneof(fc.emailAddress().map(fit), fc.constant(member.email));
  if (s.format === "date-time")
    return fc.date({ min: new Date(2000, 0), max: new Date(2100, 0), noInvalidDate: true }).map((d) => d.toISOString());
  if (s.format === "uri" || s.format === "url" || URLISH.test(name)) return fc.constantFrom(...URLS);
  if (s.pattern) {
    try {
      return fc.stringMatching(new RegExp(s.pattern)).map(fit);
    } catch {}
  }
  return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 40) });
}

/** An object with its required keys and some optional ones; `prop` makes each value. */
function objectOf(
  s: JsonSchema,
  depth: number,
  prop: (schema: JsonSchema, name: string) => fc.Arbitrary<unknown>,
): fc.Arbitrary<unknown> {
  if (depth > 4) return fc.constant({});
  const props = s.properties ?? {};
  const model = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, prop(v, k)]));
  const record = fc.record(model, { requiredKeys: (s.required ?? []).filter((k) => k in props) });
  const extra = s.additionalProperties;
  if (extra && typeof extra === "object" && !Object.keys(props).length)
    return fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), prop(extra, ""), { maxKeys: 3 });
  return record;
}

/** Mostly valid, with boundary and wrong-typed values, missing required keys and extra keys mixed in. */
function mixed(schema: JsonSchema | undefined, name = "", depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(schema);
  const type = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  if (type === "object" && s.properties && depth < 4) {
    const required = s.required ?? [];
    return fc
      .tuple(
        objectOf(s, depth, (p, n) => mixed(p, n, depth + 1)),
        fc.option(fc.constantFrom(...(required.length ? required : ["-"])), { freq: 4 }),
        fc.option(fc.dictionary(fc.string({ maxLength: 12 }), wrongType, { maxKeys: 2 }), { freq: 4 }),
      )
      .map(([o, drop, extra]) => {
        const copy = { ...(o as Record<string, unknown>), ...(extra ?? {}) };
        if (drop) delete copy[drop];
        return copy;
      });
  }
  if (s.anyOf || s.oneOf || s.allOf || s.enum || s.const !== undefined)
    return fc.oneof(
      { arbitrary: valid(s, name, depth), weight: 6 },
      { arbitrary: boundary(s), weight: 1 },
      { arbitrary: wrongType, weight: 1 },
    );
  if (type === "array")
    return fc.oneof(
      { arbitrary: fc.array(mixed(s.items, name, depth + 1), { maxLength: 3 }), weight: 5 },
      { arbitrary: boundary(s), weight: 1 },
      { arbitrary: wrongType, weight: 1 },
    );
  return fc.oneof(
    { arbitrary: valid(s, name, depth), weight: 5 },
    { arbitrary: boundary(s), weight: 2 },
    { arbitrary: wrongType, weight: 1 },
  );
}

const GARBAGE_IDS = [
  "x",
  "1",
  "-1",
  "0",
  "null",
  "..",
  "%2e%2e",
  "a%00b",
  "%F0%9F%98%80",
  "9".repeat(400),
  "%ED%A0%80",
];

function pathArb(key: string, path: string, op: Operation): fc.Arbitrary<string> {
  const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? "");
  const real = (n: string) => (WAKES.has(key) ? undefined : idFor(n, path));
  const one = (n: string): fc.Arbitrary<string> => {
    const own = real(n);
    const other = idFor(n, path, otherIds);
    const options: fc.WeightedArbitrary<string>[] = [
      { arbitrary: fc.uuid(), weight: 1 },
      { arbitrary: fc.constantFrom(...GARBAGE_IDS), weight: 1 },
      {
        arbitrary: valid(op.parameters?.find((p) => p.in === "path" && p.name === n)?.schema).map((v) =>
          encodeURIComponent(String(v)),
        ),
        // A uuid parameter's valid values include the caller's own ids, which a waking route must not get.
        weight: WAKES.has(key) ? 0 : 1,
      },
    ];
    if (own) options.push({ arbitrary: fc.constant(own), weight: 6 });
    if (other) options.push({ arbitrary: fc.constant(other), weight: 1 });
    return fc.oneof(...options);
  };
  return fc.tuple(...names.map(one)).map((values) => {
    let i = 0;
    return path.replace(/\{\w+\}/g, () => values[i++] ?? "");
  });
}

/** A parameter's id in `pool`; `providerId` names an identity provider under the admin routes. */
function idFor(name: string, path: string, pool = ids): string | undefined {
  if (name === "providerId" && path.includes("identity-providers")) return pool.idpId;
  return pool[name];
}

function queryArb(op: Operation): fc.Arbitrary<string> {
  const params = (op.parameters ?? []).filter((p) => p.in === "query");
  if (!params.length) return fc.constant("");
  return fc
    .tuple(...params.map((p) => fc.option(mixed(p.schema, p.name), { freq: p.required ? 8 : 2 })))
    .map((values) => {
      const q = new URLSearchParams();
      params.forEach((p, i) => {
        const v = values[i];
        if (v === null || v === undefined) return;
        for (const one of Array.isArray(v) ? v : [v])
          q.append(p.name, typeof one === "object" ? JSON.stringify(one) : String(one));
      });
      return q.size ? `?${q}` : "";
    });
}

type Actor = "owner" | "member" | "key" | "anonymous";
interface Sample {
  actor: Actor;
  url: string;
  /** A JSON value, or raw text sent with `contentType`. */
  body?: unknown;
  raw?: { text: string; contentType: string };
}

function sampleArb(key: string, path: string, op: Operation): fc.Arbitrary<Sample> {
  const schema = op.requestBody?.content?.["application/json"]?.schema;
  const actor = fc.constantFrom<Actor>("owner", "owner", "owner", "owner", "member", "key", "anonymous", "anonymous");
  const url = fc.tuple(pathArb(key, path, op), queryArb(op)).map(([p, q]) => p + q);
  const raw = fc.record({
    text: fc.constantFrom(
      '{"a":',
      "{'a':1}",
      "[1,2",
      "\u0000",
      "null",
      "a=b&c=d",
      "<x/>",
      '{"__proto__":{"x":1}}',
      "1e999",
    ),
    contentType: fc.constantFrom(
      "application/json",
      "text/plain",
      "application/x-www-form-urlencoded",
      "application/xml",
    ),
  });
  const body: fc.Arbitrary<Pick<Sample, "body" | "raw">> = schema
    ? fc.oneof(
        { arbitrary: mixed(schema).map((b) => ({ body: b })), weight: 8 },
        { arbitrary: wrongType.map((b) => ({ body: b })), weight: 1 },
        { arbitrary: raw.map((r) => ({ raw: r })), weight: 1 },
      )
    : fc.oneof(
        { arbitrary: fc.constant({}), weight: 6 },
        { arbitrary: wrongType.map((b) => ({ body: b })), weight: 1 },
        { arbitrary: raw.map((r) => ({ raw: r })), weight: 1 },
      );
  return fc.tuple(actor, url, body).map(([a, u, b]) => ({ actor: a, url: u, ...b }));
}

function clientFor(actor: Actor): ApiClient {
  if (actor === "owner") return owner.client;
  if (actor === "member") return member.client;
  if (actor === "key") return keyClient;
  return anonymous();
}

/** Sends one sample; the actor's cookies are put back afterwards (a signup must not swap who it is). */
async function send(method: Method, s: Sample) {
  const client = clientFor(s.actor);
  const cookies = new Map(client.cookies);
  try {
    const request = s.raw
      ? client.request(method, s.url, s.raw.text, { "content-type": s.raw.contentType })
      : client.request(method, s.url, method === "GET" ? undefined : s.body);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer in 15 s")), 15_000);
    });
    return await Promise.race([request, hang]).finally(() => clearTimeout(timer));
  } finally {
    client.cookies.clear();
    for (const [k, v] of cookies) client.cookies.set(k, v);
  }
}

/** Signs `who` in again when a fuzzed request ended their session (logout, revoke-all). */
async function stillSignedIn(who: Awaited<ReturnType<typeof signUp>>) {
  if ((await who.client.get("/api/v1/me")).statusCode !== 401) return;
  who.client.cookies.clear();
  const res = await who.client.post("/api/v1/auth/login", { email: who.email, password: PASSWORD });
  if (res.statusCode !== 200) throw new Error(`could not sign ${who.email} in again: ${res.statusCode} ${res.body}`);
}

/** Undoes platform settings that would lock the fuzzer out (SSO or two-factor required) or lose its mail server. */
async function restoreSettings() {
  await owner.client.patch("/api/v1/admin/settings", { requireSso: false, requireTwoFactor: false, email: null });
}

/** The invite token mailed to `email` (with a mail server, the API does not return it). */
async function mailedInviteToken(email: string): Promise<string> {
  const text = await smtp.waitForMail(email, /\/invites\//);
  const token = /\/invites\/(ri_[A-Za-z0-9_-]+)/.exec(text)?.[1];
  if (!token) throw new Error(`no invite link in the mail to ${email}`);
  return token;
}

/** A workspace with one of every cheap resource, pointing nowhere (providers and connectors at 127.0.0.1:9). */
async function furnish(who: Awaited<ReturnType<typeof signUp>>, into: Record<string, string>) {
  const wid = who.workspaceId;
  const ok = async (method: Method, url: string, body?: unknown) => {
    const res = await who.client.request(method, url, body ?? {});
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const provider = await ok("POST", `/api/v1/workspaces/${wid}/providers`, {
    name: "Nowhere",
    kind: "openai-compatible",
    baseUrl: "http://127.0.0.1:9/v1",
    apiKey: "sk-fuzz-0123456789",
    models: ["m"],
  });
  const agent = await ok("POST", `/api/v1/workspaces/${wid}/agents`, {
    name: "Fuzz",
    providerId: provider.id,
    model: "m",
  });
  const session = await ok("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id });
  const schedule = await ok("POST", `/api/v1/workspaces/${wid}/schedules`, {
    name: "Hook",
    agentId: agent.id,
    kind: "webhook",
    prompt: "Fuzz {{body}}",
  });
  const run = await ok("POST", `/api/v1/workspaces/${wid}/schedules/${schedule.id}/run`);
  const connector = await ok("POST", `/api/v1/workspaces/${wid}/connectors`, {
    name: "Nowhere",
    kind: "mcp",
    url: "http://127.0.0.1:9/mcp",
  });
  const invite = await ok("POST", `/api/v1/workspaces/${wid}/invites`, {
    email: `pending-${wid}@example.test`,
    role: "viewer",
  });
  const token = await mailedInviteToken(`pending-${wid}@example.test`);
  const key = await ok("POST", `/api/v1/workspaces/${wid}/api-keys`, { name: "target", role: "viewer" });
  // A second session of theirs, for the routes that end one.
  const again = new ApiClient(t.app);
  await again.post("/api/v1/auth/login", { email: who.email, password: PASSWORD });
  const sessions = (await who.client.get("/api/v1/me/sessions")).json().items as { id: string; current?: boolean }[];
  const sessionKey = `agent:${agent.id}:reef-${wid}-user-${who.user.id}-session-${session.id}`;
  const approval = await servicesOf(t.app).approvals.requested(
    {
      workspaceId: wid,
      sessionId: session.id,
      sessionKey,
      messageId: 1,
      agentId: agent.id,
      owner: { userId: who.user.id, apiKeyId: null },
      gateway: { endpoint: new URL("http://127.0.0.1:9"), token: "unused" },
    },
    { gatewayApprovalId: `gw-${wid}`, kind: "exec", subject: "ls", cwd: null, sessionKey, expiresAtMs: null },
  );
  Object.assign(into, {
    wid,
    providerId: provider.id,
    personalProviderId: provider.id,
    agentId: agent.id,
    chatSessionId: session.id,
    scheduleId: schedule.id,
    runId: run.id,
    connectorId: connector.id,
    inviteId: invite.invite.id,
    token,
    keyId: key.apiKey.id,
    sessionId: sessions.find((s) => !s.current)?.id ?? sessions[0]?.id ?? "",
    approvalId: approval?.id ?? "",
    slug: "no-such-provider",
  });
}

beforeAll(async () => {
  // A mail server, so the routes that send mail run to the end instead of answering "not configured".
  smtp = await startSmtpStandIn();
  t = await buildTestApp({
    config: { schedulerEnabled: false, connectorAllowedHosts: ["127.0.0.1"], smtpUrl: smtp.url },
  });
  owner = await signUp(t.app, { email: "fuzz-owner@example.test" }); // the first account: super_admin
  doc = (await owner.client.get("/api/openapi.json")).json();
  member = await signUp(t.app, { email: "fuzz-member@example.test" });
  const victim = await signUp(t.app, { email: "fuzz-victim@example.test" });
  const other = await signUp(t.app, { email: "fuzz-other@example.test" });
  for (const [who, role] of [
    [member, "member"],
    [victim, "admin"],
  ] as const) {
    await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/invites`, { email: who.email, role });
    const token = await mailedInviteToken(who.email);
    expect((await who.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
  }
  await furnish(owner, ids);
  await furnish(other, otherIds);
  // Routes about a person (members, admin users) act on the victim, never on the fuzzer's own accounts.
  ids.userId = victim.user.id;
  otherIds.userId = other.user.id;
  const idp = await owner.client.post("/api/v1/admin/identity-providers", {
    kind: "oidc",
    slug: "fuzz",
    name: "Fuzz",
    issuer: "http://127.0.0.1:9",
    clientId: "fuzz",
  });
  if (idp.statusCode === 201) ids.idpId = idp.json().id;
  const made = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/api-keys`, {
    name: "fuzz",
    role: "admin",
  });
  keyClient = new ApiClient(t.app, { bearer: made.json().key });
});
afterAll(async () => {
  if (t) await servicesOf(t.app).runtimeManager.stopAll("test over");
  await t?.close();
  await smtp?.close();
});

describe("route fuzz", () => {
  it("no generated request to any documented operation answers 5xx", { timeout: 600_000 }, async () => {
    const ops = operationsOf(doc)
      .map((o) => ({ ...o, method: o.method as Method }))
      // Deletions last, so the other routes still find what they act on.
      .sort((a, b) => Number(a.method === "DELETE") - Number(b.method === "DELETE"));
    expect(ops.length).toBeGreaterThan(100);
    const failures: string[] = [];
    let requests = 0;
    /** Operations that answered 2xx at least once: the fuzzer got past validation and auth into the handler. */
    const reached = new Set<string>();
    const wakers: string[] = [];
    const started = performance.now();
    for (const [i, { method, path, op }] of ops.entries()) {
      const key = `${method} ${path}`;
      const samples = fc.sample(sampleArb(key, path, op), { seed: SEED + i, numRuns: RUNS });
      for (const s of samples) {
        requests++;
        let status: number;
        let body: string;
        try {
          const res = await send(method, s);
          status = res.statusCode;
          body = res.body;
        } catch (err) {
          status = 599;
          body = String(err);
        }
        if (status < 300) reached.add(key);
        if (status >= 500) {
          const sent = s.raw ? `${s.raw.contentType}: ${s.raw.text}` : JSON.stringify(s.body);
          const line = `${method} ${s.url} as ${s.actor} (${key}, seed ${SEED + i})\n  body: ${sent?.slice(0, 500)}\n  → ${status} ${body.slice(0, 300)}`;
          console.error(`fuzz 5xx: ${line}`);
          failures.push(line);
        }
      }
      const woke = await t.db.owner.query("select workspace_id from runtimes where state <> 'stopped'");
      if (woke.rowCount && !wakers.length) wakers.push(`${key} (seed ${SEED + i}) woke ${woke.rows[0].workspace_id}`);
      await stillSignedIn(owner);
      await stillSignedIn(member);
      if (path.startsWith("/api/v1/admin/settings")) await restoreSettings();
      // A workspace that now requires two-factor sign-in shuts the fuzzer's accounts out of it: undone underneath.
      if (path === "/api/v1/workspaces/{wid}")
        await t.db.owner.query("update workspaces set require_two_factor = false");
    }
    console.log(`fuzz: ${ops.length} routes, ${requests} requests, ${failures.length} 5xx`);
    console.log(`fuzz: ${reached.size} of ${ops.length} routes answered 2xx at least once`);
    console.log(`fuzz: seed ${SEED}, ${RUNS} runs per route, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(failures).toEqual([]);
    expect(wakers, "an operation started a gateway").toEqual([]);
    // A fuzzer refused at the door everywhere would pass the line above while testing nothing.
    expect(reached.size).toBeGreaterThan(ops.length / 3);
  });

  // Found by this fuzzer: the runtime row's foreign key refused an id of no workspace with a 500.
  it("an operator stopping the gateway of a workspace that does not exist gets 404", async () => {
    const res = await owner.client.post("/api/v1/admin/runtimes/00000000-0000-4000-8000-000000000001/stop");
    expect(res.statusCode, res.body).toBe(404);
    expect(res.json().code).toBe("NOT_FOUND");
    const real = await owner.client.post(`/api/v1/admin/runtimes/${otherIds.wid}/stop`);
    expect(real.statusCode, real.body).toBe(200);
    expect(real.json().state).toBe("stopped");
  });

  // Found by this fuzzer: a 254-character address overflowed the rate limit's key column (a 500).
  it("asking for a link with the longest address the schema allows answers 202", async () => {
    for (const path of ["/api/v1/auth/password-reset", "/api/v1/auth/magic-link"]) {
      const res = await anonymous().post(path, { email: "x".repeat(254) });
      expect(res.statusCode, `${path}: ${res.body}`).toBe(202);
    }
  });

  it("the fuzzing started no gateway", async () => {
    const { rows } = await t.db.owner.query("select workspace_id, state from runtimes where state <> 'stopped'");
    expect(rows).toEqual([]);
    const res = await owner.client.get(`/api/v1/workspaces/${ids.wid}/runtime`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().state).toBe("stopped");
  });
});
