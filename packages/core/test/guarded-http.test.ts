import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

// DNS as an attacker's name server answers: whatever the test says, and nothing real.
const answers = new Map<string, { address: string; family: number }[]>();
vi.mock("node:dns/promises", () => ({
  lookup: vi.fn(async (host: string) => {
    const a = answers.get(host);
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return a;
  }),
}));

const { EgressRefusedError, guardedGet } = await import("../src/shared/guarded-http.ts");

const server = createServer((_req, res) => res.end("pinned"));
let port = 0;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("guardedGet", () => {
  it("connects to the address it checked, without a second lookup DNS rebinding could answer", async () => {
    // The name resolves only through the checked answer: a connection that looked it up again would fail.
    answers.set("rebind.test", [{ address: "127.0.0.1", family: 4 }]);
    const res = await guardedGet(`http://rebind.test:${port}/`, {
      headers: {},
      timeoutMs: 2000,
      allowedHosts: [`127.0.0.1:${port}`],
    });
    expect(res).toEqual({ status: 200, text: "pinned" });
  });

  it("refuses a name with any non-public answer, even next to a public one", async () => {
    answers.set("mixed.test", [
      { address: "8.8.8.8", family: 4 },
      { address: "127.0.0.1", family: 4 },
    ]);
    await expect(
      guardedGet(`http://mixed.test:${port}/`, { headers: {}, timeoutMs: 2000, allowedHosts: [] }),
    ).rejects.toBeInstanceOf(EgressRefusedError);
    answers.set("mapped.test", [{ address: "::ffff:127.0.0.1", family: 6 }]);
    await expect(
      guardedGet(`http://mapped.test:${port}/`, { headers: {}, timeoutMs: 2000, allowedHosts: [] }),
    ).rejects.toBeInstanceOf(EgressRefusedError);
  });

  it("refuses schemes other than http and https", async () => {
    await expect(
      guardedGet("file:///etc/passwd", { headers: {}, timeoutMs: 2000, allowedHosts: ["localhost"] }),
    ).rejects.toBeInstanceOf(EgressRefusedError);
  });
});
