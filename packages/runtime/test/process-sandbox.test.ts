import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, readFile, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type LlmStandIn, startLlmStandIn } from "@reef/testing/llm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayIntegrityError, type RuntimeHandle } from "../src/driver.ts";
import { streamChatTurn } from "../src/gateway-chat-client.ts";
import { gatewayFetch } from "../src/gateway-endpoint.ts";
import { deleteGatewaySessions } from "../src/gateway-session-client.ts";
import type { GatewaySettings } from "../src/openclaw-config.ts";
import { listListeners, processTree, socketInodesOf } from "../src/process/listeners.ts";
import { ProcessDriver } from "../src/process/process-driver.ts";
import { probeSandbox } from "../src/process/sandbox-probe.ts";
import { createOutboundStub, type OutboundStub } from "./outbound-stub.ts";

const sandboxable = probeSandbox().available;
const asRoot = process.getuid?.() === 0;
const KEY = `sk-canary-${randomBytes(8).toString("hex")}`;
const limits = { memoryMb: 2048, cpus: 2, pids: 512 };
const root = join(tmpdir(), `reef-sbx-${process.pid}`);
let llm: LlmStandIn;
let stub: OutboundStub;
/** A file on the host's /tmp, outside every runtime directory. */
const hostMarker = join(tmpdir(), `reef-sbx-marker-${process.pid}`);

beforeAll(async () => {
  llm = await startLlmStandIn({
    apiKey: KEY,
    toolCalls: (text) =>
      text.startsWith("probe:") ? [{ name: "exec", arguments: { command: text.slice(6) } }] : undefined,
  });
  stub = createOutboundStub({ upstream: llm.baseUrl, apiKey: KEY });
  await mkdir(root, { recursive: true, mode: 0o755 });
  await chmod(root, 0o755);
  await writeFile(hostMarker, "host-only\n");
});
afterAll(async () => {
  await llm?.close();
  await rm(hostMarker, { force: true });
  await rm(root, { recursive: true, force: true });
});

/** The vendor's address is never dialled by the gateway: its calls go to Reef's outbound socket. */
const settings = (tools?: ("shell" | "files")[]): GatewaySettings => ({
  providers: [
    {
      id: "standin",
      baseUrl: "https://vendor.invalid/v1",
      api: "openai-completions",
      models: [{ id: "stand-in-model" }],
    },
  ],
  agents: [{ id: "main", name: "Main", model: "standin/stand-in-model", ...(tools ? { tools } : {}) }],
});

async function turn(endpoint: URL, token: string, text: string, sessionKey = "reef-test") {
  let answer = "";
  for await (const ev of streamChatTurn({
    endpoint,
    token,
    agentId: "main",
    sessionKey,
    text,
    signal: AbortSignal.timeout(90_000),
  })) {
    if (ev.type === "delta") answer += ev.text;
    if (ev.type === "error") throw new Error(ev.message);
  }
  return answer;
}

/** The gateway's own process (it retitles itself), found in its tree. */
async function gatewayPid(pid: number): Promise<number> {
  for (const p of await processTree(pid)) {
    const comm = await readFile(`/proc/${p}/comm`, "utf8").catch(() => "");
    if (comm.startsWith("openclaw-gatew")) return p;
  }
  throw new Error("no gateway process in the tree");
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

describe.runIf(sandboxable)("process driver: sandboxed gateways", () => {
  const warnings: string[] = [];
  let driver: ProcessDriver;
  const a = { workspaceId: randomUUID(), token: randomBytes(24).toString("base64url"), cred: `cred-a-${randomUUID()}` };
  const b = { workspaceId: randomUUID(), token: randomBytes(24).toString("base64url"), cred: `cred-b-${randomUUID()}` };
  let ha: RuntimeHandle & { endpoint: URL };
  let hb: RuntimeHandle & { endpoint: URL };

  beforeAll(async () => {
    driver = new ProcessDriver({ rootDir: join(root, "pair"), sandbox: true, onWarning: (m) => warnings.push(m) });
    const [ra, rb] = await Promise.all(
      [a, b].map((w) =>
        driver.start(
          {
            workspaceId: w.workspaceId,
            token: w.token,
            gateway: settings(["shell", "files"]),
            limits,
            outbound: stub.outbound({ standin: w.cred }),
          },
          AbortSignal.timeout(150_000),
        ),
      ),
    );
    ha = { workspaceId: a.workspaceId, state: ra?.state ?? {}, endpoint: ra?.endpoint as URL };
    hb = { workspaceId: b.workspaceId, state: rb?.state ?? {}, endpoint: rb?.endpoint as URL };
  }, 180_000);
  afterAll(async () => {
    if (ha) await driver.destroy(ha).catch(() => {});
    if (hb) await driver.destroy(hb).catch(() => {});
  }, 60_000);

  it("is reached over a Unix socket in its runtime directory, and answers /readyz there", async () => {
    expect(ha.endpoint.protocol).toBe("unix:");
    expect(ha.endpoint.pathname).toBe(join(root, "pair", a.workspaceId, "sock", "gateway.sock"));
    expect(statSync(ha.endpoint.pathname).isSocket()).toBe(true);
    const ready = await gatewayFetch(ha.endpoint, "/readyz");
    expect(ready.status).toBe(200);
    expect(await driver.poll(ha)).toEqual({ status: "running" });
    await expect(driver.verify(ha)).resolves.toBeUndefined();
  });

  it("runs a real agent turn through the socket, its LLM calls through Reef's outbound socket with its own credential", async () => {
    expect(await turn(ha.endpoint, a.token, "hello from A")).toBe("Stand-in reply to: hello from A");
    expect(await turn(hb.endpoint, b.token, "hello from B")).toBe("Stand-in reply to: hello from B");
    expect(stub.calls.some((c) => c.credential === a.cred)).toBe(true);
    expect(stub.calls.some((c) => c.credential === b.cred)).toBe(true);
    expect(stub.refused.filter((r) => r.kind === "credential")).toEqual([]);
    // The other workspace's token is refused at its socket.
    await expect(turn(hb.endpoint, a.token, "crossing")).rejects.toThrow(/HTTP 401/);
  }, 120_000);

  it("speaks the control protocol (WebSocket) over the socket", async () => {
    const res = await deleteGatewaySessions({ endpoint: ha.endpoint, token: a.token }, ["agent:main:never-used"]);
    expect(res).toEqual({ failed: [] });
  }, 30_000);

  it("listens on nothing of the host's network: its ports are in its own namespace", async () => {
    const tree = await processTree(Number(ha.state.pid));
    const held = await socketInodesOf(tree);
    const hostListeners = await listListeners();
    expect(hostListeners.filter((l) => held.has(l.inode))).toEqual([]);
    const gw = await gatewayPid(Number(ha.state.pid));
    expect(await readlink(`/proc/${gw}/ns/net`)).not.toBe(await readlink("/proc/self/ns/net"));
    expect(await readlink(`/proc/${gw}/ns/pid`)).not.toBe(await readlink("/proc/self/ns/pid"));
    expect(await readlink(`/proc/${gw}/ns/mnt`)).not.toBe(await readlink("/proc/self/ns/mnt"));
  });

  it("sees only its own directory, the install and /usr, with no privileges", async () => {
    const gw = await gatewayPid(Number(ha.state.pid));
    const view = `/proc/${gw}/root`;
    expect(existsSync(`${view}${String(ha.state.dir)}/state/openclaw.json`)).toBe(true);
    expect(existsSync(`${view}${String(hb.state.dir)}`)).toBe(false);
    expect(existsSync(`${view}${hostMarker}`)).toBe(false);
    expect(existsSync(`${view}/etc/shadow`)).toBe(false);
    expect(existsSync(`${view}/root`)).toBe(false);
    expect(readFileSync(`${view}/etc/passwd`, "utf8").split("\n").filter(Boolean)).toHaveLength(3);
    const status = await readFile(`/proc/${gw}/status`, "utf8");
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^CapBnd:\s+0+$/m);
    if (asRoot) expect(status).toMatch(new RegExp(`^Uid:\\s+${Number(ha.state.uid)}\\s`, "m"));
  });

  it("runs an agent's shell commands inside the sandbox", async () => {
    const probe = [
      "id -u",
      `ls ${String(hb.state.dir)} 2>&1 | head -1`,
      `cat ${hostMarker} 2>&1`,
      `(echo > /dev/tcp/127.0.0.1/${new URL(llm.baseUrl).port}) 2>&1 | tail -1`,
      "touch /usr/reef-probe 2>&1",
      `echo wrote > ${String(ha.state.dir)}/home/own-file && echo own-ok`,
    ].join("; ");
    const answer = await turn(ha.endpoint, a.token, `probe:bash -c '${probe}'`, "reef-probe");
    expect(answer).toContain("Stand-in saw tool results:");
    expect(answer).toMatch(new RegExp(`${String(hb.state.dir)}.*No such file or directory`));
    expect(answer).toMatch(new RegExp(`${hostMarker}.*No such file or directory`));
    expect(answer).toMatch(/Connection refused|Network is unreachable/);
    expect(answer).toMatch(/reef-probe.*(Read-only file system|Permission denied)/);
    expect(answer).toContain("own-ok");
  }, 120_000);

  it("keeps the vendor key off its disk, its environment and its command lines", async () => {
    for (const file of filesUnder(String(ha.state.dir))) {
      expect(readFileSync(file).includes(KEY), file).toBe(false);
    }
    for (const pid of await processTree(Number(ha.state.pid))) {
      const environ = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      for (const secret of [KEY, a.token, a.cred]) {
        expect(environ.includes(secret), `environ of ${pid}`).toBe(false);
        expect(cmdline.includes(secret), `cmdline of ${pid}`).toBe(false);
      }
    }
    // The stand-in still got it, from Reef's side.
    expect(llm.requests.length).toBeGreaterThan(0);
    expect(llm.requests.every((r) => r.authorization === `Bearer ${KEY}`)).toBe(true);
  });

  it("verify refuses a socket swapped for a link, and accepts it back", async () => {
    const sock = ha.endpoint.pathname;
    await rename(sock, `${sock}.real`);
    await symlink(`${sock}.real`, sock);
    try {
      await expect(driver.verify(ha)).rejects.toBeInstanceOf(GatewayIntegrityError);
    } finally {
      await rm(sock);
      await rename(`${sock}.real`, sock);
    }
    await expect(driver.verify(ha)).resolves.toBeUndefined();
  });

  it("measures the whole tree's memory", async () => {
    const stats = await driver.stats(ha);
    expect(stats?.rssBytes).toBeGreaterThan(50 * 1024 * 1024);
  });

  it("stop ends the whole tree, removes its control groups and closes Reef's outbound listener", async () => {
    const tree = await processTree(Number(hb.state.pid));
    expect(tree.size).toBeGreaterThan(3);
    const groups = (hb.state.cgroup as { dirs: string[] } | null)?.dirs ?? [];
    expect(groups.length, "the gateway runs in control groups").toBeGreaterThan(0);
    await driver.stop(hb, { graceful: true });
    expect([...tree].filter((p) => existsSync(`/proc/${p}`) && !isZombie(p))).toEqual([]);
    // A group left behind outlives its workspace (nothing stops that gateway again to retry).
    expect(groups.filter((d) => existsSync(d))).toEqual([]);
    expect(stub.closed).toContain(join(String(hb.state.dir), "sock", "outbound.sock"));
    expect((await driver.poll(hb)).status).toBe("exited");
    await expect(driver.verify(hb)).rejects.toBeInstanceOf(GatewayIntegrityError);
  }, 60_000);

  it("raised no warning (cgroups and tools as asked)", () => {
    expect(warnings.filter((w) => /tools were dropped/.test(w))).toEqual([]);
  });
});

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

/** Starts a sandboxed gateway from another Node process, which prints its state and then waits. */
const STARTER = `
import { ProcessDriver } from ${JSON.stringify(fileURLToPath(new URL("../src/process/process-driver.ts", import.meta.url)))};
const [rootDir, workspaceId] = process.argv.slice(2);
const driver = new ProcessDriver({ rootDir, sandbox: true });
const r = await driver.start(
  { workspaceId, token: "t".repeat(32), gateway: { providers: [], agents: [] }, limits: { memoryMb: 2048, cpus: 2, pids: 512 } },
  AbortSignal.timeout(150_000),
);
console.log(JSON.stringify(r.state));
setInterval(() => {}, 1 << 30);
`;

describe.runIf(sandboxable)("process driver: a sandbox dies with Reef", () => {
  let starter: ChildProcess | undefined;
  const workspaceId = randomUUID();
  const rootDir = join(root, "orphans");
  afterAll(async () => {
    starter?.kill("SIGKILL");
    await new ProcessDriver({ rootDir, sandbox: true }).destroy({ workspaceId, state: {} });
  }, 60_000);

  it("when the Reef process that started a gateway is killed, the whole sandbox goes with it", async () => {
    const script = join(root, "starter.ts");
    await writeFile(script, STARTER);
    starter = spawn(process.execPath, [script, rootDir, workspaceId], { stdio: ["ignore", "pipe", "inherit"] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: starter?.stdout as NodeJS.ReadableStream }).once("line", resolve);
      starter?.once("exit", (code) => reject(new Error(`the starter exited with ${code}`)));
    });
    const state = JSON.parse(line) as { pid: number };
    const tree = await processTree(state.pid);
    expect(tree.size).toBeGreaterThan(3);
    starter.kill("SIGKILL");
    const deadline = Date.now() + 10_000;
    const left = () => [...tree].filter((p) => existsSync(`/proc/${p}`) && !isZombie(p));
    while (left().length && Date.now() < deadline) await sleep(100);
    expect(left()).toEqual([]);
  }, 180_000);
});

describe("process driver: no sandbox", () => {
  const warnings: string[] = [];
  const driver = new ProcessDriver({
    rootDir: join(root, "bare"),
    sandbox: false,
    ports: { from: 48_900, to: 49_500 },
    onWarning: (m) => warnings.push(m),
  });
  const w = { workspaceId: randomUUID(), token: randomBytes(24).toString("base64url"), cred: `cred-${randomUUID()}` };
  let h: RuntimeHandle & { endpoint: URL };

  beforeAll(async () => {
    const r = await driver.start(
      {
        workspaceId: w.workspaceId,
        token: w.token,
        gateway: settings(["shell", "files"]),
        limits,
        outbound: stub.outbound({ standin: w.cred }),
      },
      AbortSignal.timeout(150_000),
    );
    h = { workspaceId: w.workspaceId, state: r.state, endpoint: r.endpoint };
  }, 180_000);
  afterAll(async () => {
    if (h) await driver.destroy(h).catch(() => {});
  }, 60_000);

  it("serves on a loopback port, drops shell and file tools, and says so", async () => {
    expect(driver.sandboxed).toBe(false);
    expect(h.endpoint.protocol).toBe("http:");
    expect(warnings.some((m) => /shell and file tools were dropped for main/.test(m))).toBe(true);
    const config = JSON.parse(readFileSync(join(String(h.state.dir), "state", "openclaw.json"), "utf8"));
    expect(config.agents.entries.main.tools.deny).toEqual(expect.arrayContaining(["group:fs", "group:runtime"]));
    expect(config.agents.entries.main.tools.alsoAllow).toBeUndefined();
  });

  it("still sends its LLM calls through Reef's outbound socket (a bridge on its own port block)", async () => {
    const before = stub.calls.length;
    expect(await turn(h.endpoint, w.token, "hello bare")).toBe("Stand-in reply to: hello bare");
    expect(stub.calls.slice(before).every((c) => c.credential === w.cred)).toBe(true);
    expect(stub.calls.length).toBeGreaterThan(before);
    expect(h.state.outboundPort).toBe(Number(h.state.port) + 119);
    await expect(driver.verify(h)).resolves.toBeUndefined();
  }, 120_000);
});
