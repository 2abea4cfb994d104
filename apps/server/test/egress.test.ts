import { createServer as createHttpServer, type IncomingHttpHeaders, request, type Server } from "node:http";
import net, { type AddressInfo } from "node:net";
import {
  createEgressPolicy,
  createEgressProxy,
  createEgressRefusalRecorder,
  type EgressRefusalRecorder,
  type EgressResolver,
  REFUSED_HEADER,
} from "@reef/core";
import { buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

/**
 * Reef's egress proxy for gateways (issue 12, item 4), driven through a real
 * node http.Server whose 'connect' and 'request' events call it, as the
 * outbound server does. DNS is a fake: public-looking names resolve where a
 * test needs them (loopback for rebinding), and "public" addresses are dialed
 * through a connector that records the address and reaches a local server.
 */

type User = Awaited<ReturnType<typeof signUp>>;

/** Public addresses the fake DNS hands out; the test connector maps them to local servers. */
const PUBLIC_A = "8.8.8.8";
const PUBLIC_B = "8.8.4.4";

let t: TestApp;
let operator: User;
let owner: User;
let wid: string;

/** A TCP server that echoes back what it reads (upper-cased, so the answer is not the request). */
let echo: net.Server;
let echoPort: number;
let echoConnections = 0;
/** An HTTP server that records requests and answers per path. */
let web: Server;
let webPort: number;
let webHits: { url: string; headers: IncomingHttpHeaders }[] = [];

let dns: Record<string, string[]> = {};
let dnsCalls: string[] = [];
let dialed: string[] = [];
let recorder: EgressRefusalRecorder;

const resolver: EgressResolver = async (host) => {
  dnsCalls.push(host);
  const answer = dns[host];
  if (!answer) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: "ENOTFOUND" });
  return answer.map((address) => ({ address, family: net.isIP(address) }));
};

/** Dials what the proxy asks, recording it; the fake public addresses lead to the local test servers. */
function connector(opts: { host: string; port: number }): net.Socket {
  dialed.push(`${opts.host}:${opts.port}`);
  if (opts.host === PUBLIC_A) return net.connect({ host: "127.0.0.1", port: echoPort });
  if (opts.host === PUBLIC_B) return net.connect({ host: "127.0.0.1", port: webPort });
  return net.connect(opts);
}

async function listen<S extends net.Server>(server: S): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

/** What the outbound server of one workspace's gateway does: CONNECT and absolute URIs go to the proxy. */
async function proxyFor(workspaceId: string, opts: { operatorAllowed?: string[]; idleTimeoutMs?: number } = {}) {
  const policy = createEgressPolicy({
    db: t.db.database.db,
    operatorAllowedHosts: async () => opts.operatorAllowed ?? [],
    resolve: resolver,
    cacheMs: 0,
  });
  const proxy = createEgressProxy({
    policy,
    refusals: recorder,
    connect: connector,
    connectTimeoutMs: 2000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 10_000,
  });
  const server = createHttpServer((req, res) => proxy.forward(req, res, { workspaceId }));
  server.on("connect", (req, socket, head) => proxy.connect(req, socket, head, { workspaceId }));
  const port = await listen(server);
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface ConnectResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  socket: net.Socket;
}

/** Sends CONNECT by hand and reads the answer's head (and, for a refusal, its body). */
function connectVia(proxyPort: number, authority: string): Promise<ConnectResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: proxyPort });
    let buf = Buffer.alloc(0);
    socket.on("error", reject);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const [statusLine = "", ...lines] = buf.subarray(0, end).toString().split("\r\n");
      const status = Number(statusLine.split(" ")[1]);
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
      );
      const rest = buf.subarray(end + 4);
      if (status === 200) {
        socket.off("data", onData);
        if (rest.length) socket.unshift(rest);
        return resolve({ status, headers, body: "", socket });
      }
      const length = Number(headers["content-length"] ?? 0);
      if (rest.length >= length) {
        socket.off("data", onData);
        resolve({ status, headers, body: rest.subarray(0, length).toString(), socket });
        socket.destroy();
      }
    };
    socket.on("data", onData);
  });
}

/** A plain-HTTP request through the proxy (absolute URI), as HTTP_PROXY clients send it. */
function getVia(
  proxyPort: number,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: proxyPort, path: url, headers: { host: new URL(url).host, ...headers } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function refusals(user: User, workspaceId = wid) {
  await recorder.flush();
  const res = await user.client.get(`/api/v1/workspaces/${workspaceId}/egress/refusals?limit=200`);
  return res;
}

async function setLists(body: { allowHosts?: string[] | null; denyHosts?: string[] | null }, workspaceId = wid) {
  const res = await operator.client.patch(`/api/v1/admin/workspaces/${workspaceId}/egress`, body);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

async function join(role: string): Promise<User> {
  const p = await signUp(t.app);
  const { token } = (await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: p.email, role })).json();
  expect((await p.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
  return p;
}

beforeAll(async () => {
  t = await buildTestApp();
  operator = await signUp(t.app, { email: "egress-operator@example.test" });
  expect(operator.user.platformRole).toBe("super_admin");
  owner = await signUp(t.app);
  wid = owner.workspaceId;
  recorder = createEgressRefusalRecorder({ db: t.db.database.db, flushMs: 50 });
  echo = net.createServer((s) => {
    echoConnections += 1;
    s.on("data", (d) => s.write(d.toString().toUpperCase()));
    s.on("error", () => {});
  });
  echoPort = await listen(echo);
  web = createHttpServer((req, res) => {
    webHits.push({ url: req.url ?? "", headers: req.headers });
    if (req.url === "/redirect") {
      res.writeHead(302, { location: `http://127.0.0.1:${echoPort}/inside` });
      return res.end();
    }
    res.writeHead(200, { "content-type": "text/plain", "set-cookie": ["a=1", "b=2"] });
    res.end(`hello ${req.url}`);
  });
  webPort = await listen(web);
});

afterAll(async () => {
  await recorder?.close();
  await t?.close();
  echo?.close();
  web?.close();
});

beforeEach(() => {
  dns = {};
  dnsCalls = [];
  dialed = [];
  webHits = [];
  echoConnections = 0;
});

describe("CONNECT through the egress proxy", () => {
  it("refuses loopback, private, IPv6 loopback and IPv4-mapped targets without dialing, and counts them", async () => {
    const other = await signUp(t.app);
    const proxy = await proxyFor(other.workspaceId);
    try {
      for (const target of [
        `127.0.0.1:${echoPort}`,
        "10.1.2.3:443",
        "[::1]:443",
        `[::ffff:127.0.0.1]:${echoPort}`,
        "169.254.169.254:80",
        "0.0.0.0:80",
      ]) {
        const res = await connectVia(proxy.port, target);
        expect(res.status, target).toBe(403);
        expect(res.headers[REFUSED_HEADER], target).toBe("private_address");
        expect(res.body).toMatch(/private or local/);
      }
      // Again, to see the count add up rather than a second row.
      expect((await connectVia(proxy.port, `127.0.0.1:${echoPort}`)).status).toBe(403);
      expect(dialed).toEqual([]);
      expect(echoConnections).toBe(0);

      const listed = await refusals(other, other.workspaceId);
      expect(listed.statusCode, listed.body).toBe(200);
      const rows = listed.json().items as { host: string; port: number; reason: string; count: number }[];
      expect(rows).toHaveLength(6);
      expect(rows.find((r) => r.host === "127.0.0.1")).toMatchObject({ port: echoPort, count: 2 });
      expect(rows.find((r) => r.host === "0:0:0:0:0:0:0:1")).toMatchObject({ port: 443, count: 1 });
      expect(rows.every((r) => r.reason === "private_address")).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it("refuses a public-looking name that resolves to loopback (rebinding), resolving it only once", async () => {
    dns["rebind.example.com"] = ["127.0.0.1"];
    dns["mixed.example.com"] = [PUBLIC_A, "127.0.0.1"];
    const proxy = await proxyFor(wid);
    try {
      for (const host of ["rebind.example.com", "mixed.example.com"]) {
        const res = await connectVia(proxy.port, `${host}:${echoPort}`);
        expect(res.status, host).toBe(403);
        expect(res.headers[REFUSED_HEADER]).toBe("private_address");
      }
      expect(dnsCalls).toEqual(["rebind.example.com", "mixed.example.com"]);
      expect(dialed).toEqual([]);
      expect(echoConnections).toBe(0);
      const rows = (await refusals(owner)).json().items;
      expect(rows).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ host: "rebind.example.com", port: echoPort, reason: "private_address", count: 1 }),
        ]),
      );
    } finally {
      await proxy.close();
    }
  });

  it("tunnels bytes both ways to a public host, dialing the checked address rather than the name", async () => {
    dns["public.example.com"] = [PUBLIC_A];
    const proxy = await proxyFor(wid);
    try {
      const res = await connectVia(proxy.port, "public.example.com:443");
      expect(res.status).toBe(200);
      // Were the name looked up again now, it would lead home: only the answer that was checked may be used.
      dns["public.example.com"] = ["127.0.0.1"];
      const answer = new Promise<string>((r) => res.socket.once("data", (d) => r(d.toString())));
      res.socket.write("ping through the tunnel");
      expect(await answer).toBe("PING THROUGH THE TUNNEL");
      res.socket.destroy();
      expect(dialed).toEqual([`${PUBLIC_A}:443`]);
      expect(dnsCalls).toEqual(["public.example.com"]);
    } finally {
      await proxy.close();
    }
  });

  it("tunnels to a non-public host the operator allowed, and to no other port of it", async () => {
    dns["intranet.corp"] = ["127.0.0.1"];
    const proxy = await proxyFor(wid, { operatorAllowed: [`intranet.corp:${echoPort}`] });
    try {
      const res = await connectVia(proxy.port, `intranet.corp:${echoPort}`);
      expect(res.status).toBe(200);
      const answer = new Promise<string>((r) => res.socket.once("data", (d) => r(d.toString())));
      res.socket.write("hi");
      expect(await answer).toBe("HI");
      res.socket.destroy();
      expect(echoConnections).toBe(1);
      const other = await connectVia(proxy.port, "intranet.corp:5432");
      expect(other.status).toBe(403);
      expect(other.headers[REFUSED_HEADER]).toBe("private_address");
    } finally {
      await proxy.close();
    }
  });

  it("closes an idle tunnel", async () => {
    dns["public.example.com"] = [PUBLIC_A];
    const proxy = await proxyFor(wid, { idleTimeoutMs: 200 });
    try {
      const res = await connectVia(proxy.port, "public.example.com:443");
      expect(res.status).toBe(200);
      const started = Date.now();
      await new Promise((r) => res.socket.once("close", r));
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await proxy.close();
    }
  });

  it("answers 400 to a malformed target and 403 dns_failed to a name that does not resolve", async () => {
    const proxy = await proxyFor(wid);
    try {
      expect((await connectVia(proxy.port, "no-port.example.com")).status).toBe(400);
      expect((await connectVia(proxy.port, "::1:443")).status).toBe(400);
      const res = await connectVia(proxy.port, "nowhere.example.com:443");
      expect(res.status).toBe(403);
      expect(res.headers[REFUSED_HEADER]).toBe("dns_failed");
    } finally {
      await proxy.close();
    }
  });
});

describe("a workspace's allow and deny lists", () => {
  afterAll(() => setLists({ allowHosts: null, denyHosts: null }));

  it("deny wins over allow, and a non-empty allow list admits only its hosts", async () => {
    dns["public.example.com"] = [PUBLIC_A];
    dns["api.allowed.example"] = [PUBLIC_A];
    dns["blocked.allowed.example"] = [PUBLIC_A];
    dns["other.example.org"] = [PUBLIC_A];
    const lists = await setLists({
      allowHosts: ["*.Allowed.example", "public.example.com"],
      denyHosts: ["blocked.allowed.example", "public.example.com"],
    });
    expect(lists).toEqual({
      allowHosts: ["*.allowed.example", "public.example.com"],
      denyHosts: ["blocked.allowed.example", "public.example.com"],
    });
    const proxy = await proxyFor(wid);
    try {
      const ok = await connectVia(proxy.port, "api.allowed.example:443");
      expect(ok.status).toBe(200);
      ok.socket.destroy();
      const cases = [
        ["public.example.com:443", "denied_host"],
        ["blocked.allowed.example:443", "denied_host"],
        ["other.example.org:443", "not_allowed_host"],
        ["allowed.example:443", "not_allowed_host"],
      ] as const;
      for (const [target, reason] of cases) {
        const res = await connectVia(proxy.port, target);
        expect(res.status, target).toBe(403);
        expect(res.headers[REFUSED_HEADER], target).toBe(reason);
      }
      expect(dialed).toEqual([`${PUBLIC_A}:443`]);
      const rows = (await refusals(owner)).json().items as { host: string; reason: string }[];
      expect(rows).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ host: "public.example.com", reason: "denied_host" }),
          expect.objectContaining({ host: "other.example.org", reason: "not_allowed_host" }),
        ]),
      );
    } finally {
      await proxy.close();
    }
  });

  it("a deny entry naming an address also refuses names that resolve to it", async () => {
    dns["alias.example.net"] = [PUBLIC_A];
    await setLists({ allowHosts: null, denyHosts: [PUBLIC_A] });
    const proxy = await proxyFor(wid);
    try {
      const res = await connectVia(proxy.port, "alias.example.net:443");
      expect(res.headers[REFUSED_HEADER]).toBe("denied_host");
      expect(dialed).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it("are set by operators only, validated and audited; the workspace's admins read them", async () => {
    const url = `/api/v1/admin/workspaces/${wid}/egress`;
    expect((await owner.client.patch(url, { denyHosts: ["x.example"] })).statusCode).toBe(403);
    expect((await owner.client.get(url)).statusCode).toBe(403);
    const bad = await operator.client.patch(url, { denyHosts: ["https://x.example/path"] });
    expect(bad.statusCode).toBe(400);
    const badPort = await operator.client.patch(url, { allowHosts: ["x.example:443"] });
    expect(badPort.statusCode).toBe(400);
    expect((await operator.client.patch(`/api/v1/admin/workspaces/${crypto.randomUUID()}/egress`, {})).statusCode).toBe(
      400,
    );
    expect(
      (await operator.client.patch(`/api/v1/admin/workspaces/${crypto.randomUUID()}/egress`, { denyHosts: [] }))
        .statusCode,
    ).toBe(404);

    await setLists({ allowHosts: ["*.docs.example"], denyHosts: ["evil.example"] });
    expect((await operator.client.get(url)).json()).toEqual({
      allowHosts: ["*.docs.example"],
      denyHosts: ["evil.example"],
    });
    const seen = await owner.client.get(`/api/v1/workspaces/${wid}/egress`);
    expect(seen.statusCode, seen.body).toBe(200);
    expect(seen.json()).toEqual({ allowHosts: ["*.docs.example"], denyHosts: ["evil.example"] });

    const trail = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?action=workspace.egress_update`)).json();
    expect(trail.items[0]).toMatchObject({
      action: "workspace.egress_update",
      actorId: operator.user.id,
      details: { allowHosts: { to: ["*.docs.example"] }, denyHosts: { to: ["evil.example"] } },
    });
    const platform = (await operator.client.get("/api/v1/admin/audit?action=workspace.egress_update")).json();
    expect(platform.items[0]).toMatchObject({ targetId: wid });
  });
});

describe("plain HTTP through the proxy (forward)", () => {
  it("forwards to a public host without Proxy-* headers, and passes redirects back unfollowed", async () => {
    dns["web.example.com"] = [PUBLIC_B];
    const proxy = await proxyFor(wid);
    try {
      const res = await getVia(proxy.port, "http://web.example.com/page?q=1", {
        "proxy-authorization": "Basic c2VjcmV0",
        "proxy-connection": "keep-alive",
        "x-kept": "yes",
      });
      expect(res.status).toBe(200);
      expect(res.body).toBe("hello /page?q=1");
      expect(res.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
      expect(dialed).toEqual([`${PUBLIC_B}:80`]);
      expect(webHits[0]?.url).toBe("/page?q=1");
      expect(webHits[0]?.headers.host).toBe("web.example.com");
      expect(webHits[0]?.headers["x-kept"]).toBe("yes");
      expect(Object.keys(webHits[0]?.headers ?? {}).filter((h) => h.startsWith("proxy-"))).toEqual([]);

      const hop = await getVia(proxy.port, "http://web.example.com/redirect");
      expect(hop.status).toBe(302);
      expect(echoConnections).toBe(0);
      // The client follows the redirect, back through the proxy, which refuses it.
      const followed = await getVia(proxy.port, hop.headers.location ?? "");
      expect(followed.status).toBe(403);
      expect(followed.headers[REFUSED_HEADER]).toBe("private_address");
      expect(echoConnections).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it("refuses private targets and names resolving to them, and refuses non-http URLs as malformed", async () => {
    dns["rebind.example.com"] = ["192.168.1.1"];
    const proxy = await proxyFor(wid);
    try {
      for (const url of [`http://127.0.0.1:${webPort}/`, "http://[::1]/", "http://rebind.example.com/"]) {
        const res = await getVia(proxy.port, url);
        expect(res.status, url).toBe(403);
        expect(res.headers[REFUSED_HEADER], url).toBe("private_address");
      }
      expect(webHits).toEqual([]);
      expect(dialed).toEqual([]);
      expect((await getVia(proxy.port, "https://web.example.com/")).status).toBe(400);
    } finally {
      await proxy.close();
    }
  });

  it("forwards to a non-public host the operator allowed", async () => {
    const proxy = await proxyFor(wid, { operatorAllowed: [`127.0.0.1:${webPort}`] });
    try {
      const res = await getVia(proxy.port, `http://127.0.0.1:${webPort}/allowed`);
      expect(res.status).toBe(200);
      expect(res.body).toBe("hello /allowed");
    } finally {
      await proxy.close();
    }
  });
});

describe("the refusals API", () => {
  it("lists refusals to the workspace's admins only, newest first and paginated", async () => {
    dns["one.example.com"] = ["10.0.0.1"];
    dns["two.example.com"] = ["10.0.0.2"];
    dns["three.example.com"] = ["10.0.0.3"];
    const proxy = await proxyFor(wid);
    try {
      for (const host of ["one", "two", "three"]) {
        expect((await connectVia(proxy.port, `${host}.example.com:443`)).status).toBe(403);
        await recorder.flush();
      }
    } finally {
      await proxy.close();
    }
    const first = (await owner.client.get(`/api/v1/workspaces/${wid}/egress/refusals?limit=2`)).json();
    expect(first.items.map((r: { host: string }) => r.host)).toEqual(["three.example.com", "two.example.com"]);
    const second = (
      await owner.client.get(`/api/v1/workspaces/${wid}/egress/refusals?limit=2&cursor=${first.nextCursor}`)
    ).json();
    expect(second.items[0].host).toBe("one.example.com");
    expect(second.items.map((r: { host: string }) => r.host)).not.toContain("two.example.com");

    const admin = await join("admin");
    expect((await admin.client.get(`/api/v1/workspaces/${wid}/egress/refusals`)).statusCode).toBe(200);
    const member = await join("member");
    expect((await member.client.get(`/api/v1/workspaces/${wid}/egress/refusals`)).statusCode).toBe(403);
    expect((await member.client.get(`/api/v1/workspaces/${wid}/egress`)).statusCode).toBe(403);
    // Another workspace's owner, and an operator who is no member, learn nothing.
    const stranger = await signUp(t.app);
    expect((await stranger.client.get(`/api/v1/workspaces/${wid}/egress/refusals`)).statusCode).toBe(404);
    expect((await operator.client.get(`/api/v1/workspaces/${wid}/egress/refusals`)).statusCode).toBe(404);
    const theirs = (await stranger.client.get(`/api/v1/workspaces/${stranger.workspaceId}/egress/refusals`)).json();
    expect(theirs.items).toEqual([]);
    expect((await owner.client.get(`/api/v1/workspaces/${wid}/egress/refusals?cursor=not-a-cursor`)).statusCode).toBe(
      400,
    );
  });
});
