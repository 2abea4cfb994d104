import { spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LlmStandIn, startLlmStandIn } from "@reef/testing/llm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RuntimeHandle } from "../src/driver.ts";
import type { GatewaySettings } from "../src/openclaw-config.ts";
import { ProcessDriver } from "../src/process/process-driver.ts";
import { runtimeUserName } from "../src/process/runtime-users.ts";
import { describeDriverConformance } from "./driver-conformance.ts";

const PROVIDER_KEY = `sk-canary-${randomBytes(8).toString("hex")}`;
let llm: LlmStandIn;
let root: string;

beforeAll(async () => {
  llm = await startLlmStandIn({ apiKey: PROVIDER_KEY });
  root = await mkdtemp(join(tmpdir(), "reef-runtimes-"));
  spawnSync("chmod", ["755", root]);
});
afterAll(async () => {
  await llm?.close();
});

const settings = (): GatewaySettings => ({
  providers: [
    {
      id: "standin",
      baseUrl: llm.baseUrl,
      apiKey: PROVIDER_KEY,
      api: "openai-completions",
      models: [{ id: "stand-in-model" }],
    },
  ],
  agents: [{ id: "main", name: "Main", model: "standin/stand-in-model" }],
});

describeDriverConformance("process", {
  makeDriver: () => new ProcessDriver({ rootDir: join(root, "conformance") }),
  settings,
  servesHttp: true,
  async leftovers(workspaceId) {
    const left: string[] = [];
    const dir = join(root, "conformance", workspaceId);
    if (existsSync(dir)) left.push(dir);
    // As root each runtime has its own OS user, and OpenClaw a lock folder for that uid in /tmp.
    const user = runtimeUserName(workspaceId);
    const id = spawnSync("id", ["-u", user], { encoding: "utf8" });
    if (id.status === 0) {
      left.push(`user ${user}`);
      if (existsSync(`/tmp/openclaw-state-locks-${id.stdout.trim()}`)) left.push("lock folder");
    }
    return left;
  },
});

async function chat(endpoint: URL, token: string, text: string) {
  const res = await fetch(new URL("/v1/chat/completions", endpoint), {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      "x-openclaw-session-key": "reef-test",
    },
    body: JSON.stringify({ model: "openclaw/main", stream: false, messages: [{ role: "user", content: text }] }),
  });
  return { status: res.status, body: (await res.json()) as { choices?: { message: { content: string } }[] } };
}

// Unsandboxed (where the host has no bubblewrap): gateways on loopback ports, calling their providers directly.
// The sandboxed driver has its own tests (process-sandbox.test.ts).
describe("process driver: two workspaces side by side, unsandboxed", () => {
  const driver = new ProcessDriver({ rootDir: join(tmpdir(), `reef-rt-pair-${Date.now()}`), sandbox: false });
  const a = { workspaceId: randomUUID(), token: randomBytes(24).toString("base64url") };
  const b = { workspaceId: randomUUID(), token: randomBytes(24).toString("base64url") };
  let ha: RuntimeHandle & { endpoint: URL };
  let hb: RuntimeHandle & { endpoint: URL };

  beforeAll(async () => {
    const limits = { memoryMb: 2048, cpus: 2, pids: 512 };
    const [ra, rb] = await Promise.all([
      driver.start({ ...a, gateway: settings(), limits }, AbortSignal.timeout(120_000)),
      driver.start({ ...b, gateway: settings(), limits }, AbortSignal.timeout(120_000)),
    ]);
    ha = { workspaceId: a.workspaceId, state: ra.state, endpoint: ra.endpoint };
    hb = { workspaceId: b.workspaceId, state: rb.state, endpoint: rb.endpoint };
  }, 180_000);
  afterAll(async () => {
    await driver.destroy(ha).catch(() => {});
    await driver.destroy(hb).catch(() => {});
  }, 60_000);

  it("each runs a real agent turn against the stand-in LLM, and rejects the other's token", async () => {
    const ra = await chat(ha.endpoint, a.token, "hello from A");
    expect(ra.status).toBe(200);
    expect(ra.body.choices?.[0]?.message.content).toBe("Stand-in reply to: hello from A");
    const rb = await chat(hb.endpoint, b.token, "hello from B");
    expect(rb.body.choices?.[0]?.message.content).toBe("Stand-in reply to: hello from B");
    expect((await chat(hb.endpoint, a.token, "crossing")).status).toBe(401);
    expect(llm.requests.every((r) => r.authorization === `Bearer ${PROVIDER_KEY}`)).toBe(true);
  }, 120_000);

  it("no provider key or token in any gateway process's environment or command line", async () => {
    const pids = spawnSync("pgrep", ["-g", String(ha.state.pid)])
      .stdout.toString()
      .trim()
      .split("\n")
      .filter(Boolean);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) {
      const environ = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      for (const secret of [PROVIDER_KEY, a.token]) {
        expect(environ.includes(secret), `environ of ${pid}`).toBe(false);
        expect(cmdline.includes(secret), `cmdline of ${pid}`).toBe(false);
      }
    }
  });

  it.runIf(process.getuid?.() === 0)(
    "as root, each gateway runs as its own user and cannot read the other's state",
    async () => {
      expect(ha.state.user).not.toBe(hb.state.user);
      const owner = spawnSync("stat", ["-c", "%U %a", join(String(hb.state.dir), "state", "openclaw.json")])
        .stdout.toString()
        .trim();
      expect(owner).toBe(`${hb.state.user} 600`);
      // Try it: read B's config (which holds B's token and keys) as A's user.
      const attempt = spawnSync("setpriv", [
        `--reuid=${ha.state.user}`,
        `--regid=${ha.state.user}`,
        "--init-groups",
        "cat",
        join(String(hb.state.dir), "state", "openclaw.json"),
      ]);
      expect(attempt.status).not.toBe(0);
      expect(attempt.stderr.toString()).toMatch(/Permission denied/);
      const list = spawnSync("setpriv", [
        `--reuid=${ha.state.user}`,
        `--regid=${ha.state.user}`,
        "--init-groups",
        "ls",
        String(hb.state.dir),
      ]);
      expect(list.status).not.toBe(0);
    },
  );

  it("killing one gateway leaves the other serving", async () => {
    process.kill(-Number(ha.state.pid), "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    expect((await driver.poll(ha)).status).toBe("exited");
    expect(await driver.poll(hb)).toEqual({ status: "running" });
    expect((await chat(hb.endpoint, b.token, "still there?")).status).toBe(200);
  }, 60_000);
});
