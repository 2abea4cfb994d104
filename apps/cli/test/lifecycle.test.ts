import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { alive, postmasterPid, reefCommand, startReef, tempDataDir, waitFor } from "./reef-process.ts";

/** Reads the running embedded cluster's data directly, as an operator with psql would. */
async function superuserQuery(dataDir: string, sql: string, params: unknown[] = []) {
  const password = (await readFile(join(dataDir, "postgres", "superuser.password"), "utf8")).trim();
  const port = Number((await readFile(join(dataDir, "postgres", "data", "postmaster.pid"), "utf8")).split("\n")[3]);
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "reef" });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe("reef start with the embedded database", () => {
  it("starts on a fresh data dir, is ready, and stops cleanly on SIGINT", async () => {
    const dataDir = await tempDataDir();
    const reef = await startReef({ REEF_DATA_DIR: dataDir });
    expect(reef.startMs).toBeLessThan(30_000);
    const ready = await fetch(`${reef.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(reef.output()).toContain("initialised a new embedded database");
    expect(reef.output()).toContain("generated a new root secret key");
    expect((await stat(join(dataDir, "secret.key"))).mode & 0o777).toBe(0o600);

    const pgPid = await postmasterPid(dataDir);
    expect(pgPid && alive(pgPid)).toBe(true);
    reef.child.kill("SIGINT");
    expect(await reef.exited).toBe(0);
    expect(alive(pgPid as number)).toBe(false);
    expect(await postmasterPid(dataDir)).toBeUndefined();
  });

  it("a second start reuses the same data and key", async () => {
    const dataDir = await tempDataDir();
    const first = await startReef({ REEF_DATA_DIR: dataDir });
    const id = crypto.randomUUID();
    await superuserQuery(dataDir, "insert into workspaces (id, name) values ($1, 'kept')", [id]);
    const key = await readFile(join(dataDir, "secret.key"), "utf8");
    first.child.kill("SIGINT");
    expect(await first.exited).toBe(0);

    const second = await startReef({ REEF_DATA_DIR: dataDir });
    expect(second.output()).toContain("started the embedded database from");
    expect(second.output()).not.toContain("initialised a new embedded database");
    expect(second.output()).not.toContain("generated a new root secret key");
    expect(await readFile(join(dataDir, "secret.key"), "utf8")).toBe(key);
    expect(await superuserQuery(dataDir, "select name from workspaces where id = $1", [id])).toEqual([
      { name: "kept" },
    ]);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });

  it("recovers after kill -9 left Postgres running without its parent", async () => {
    const dataDir = await tempDataDir();
    const first = await startReef({ REEF_DATA_DIR: dataDir });
    const orphan = await postmasterPid(dataDir);
    first.child.kill("SIGKILL");
    await first.exited;
    expect(orphan && alive(orphan)).toBe(true);

    const second = await startReef({ REEF_DATA_DIR: dataDir });
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
    await waitFor(() => !alive(orphan as number));
    const fresh = await postmasterPid(dataDir);
    expect(fresh).not.toBe(orphan);
    second.child.kill("SIGINT");
    expect(await second.exited, second.output().slice(-3000)).toBe(0);
    expect(alive(fresh as number)).toBe(false);
  });

  it("refuses to start a second Reef on a data dir in use, without harming the first", async () => {
    const dataDir = await tempDataDir();
    const first = await startReef({ REEF_DATA_DIR: dataDir });
    const second = await reefCommand(["start"], { REEF_DATA_DIR: dataDir, REEF_PORT: "0" });
    expect(second.code).not.toBe(0);
    expect(second.output).toMatch(/in use by another Reef process \(pid \d+\)/);
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);

    const status = await reefCommand(["status"], { REEF_DATA_DIR: dataDir });
    expect(status.code).toBe(0);
    expect(status.output).toMatch(/database\s+reachable/);
    expect(status.output).toMatch(/migrations\s+\d+ applied/);
    expect(status.output).toMatch(/runtimes\s+none yet/);
    const migrate = await reefCommand(["migrate"], { REEF_DATA_DIR: dataDir });
    expect(migrate.code).toBe(0);
    expect(migrate.output).toMatch(/all applied/);

    first.child.kill("SIGINT");
    expect(await first.exited).toBe(0);
    // Four Reef processes: on a busy 2-core machine each takes seconds just to load.
  }, 90_000);
});

/** The environment of `pid` and of every process below it (Linux /proc). */
async function environOfTree(pid: number): Promise<Map<number, string>> {
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    parents.set(Number(entry), ppid);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  }
  const out = new Map<number, string>();
  for (const p of tree) out.set(p, await readFile(`/proc/${p}/environ`, "utf8").catch(() => ""));
  return out;
}

describe.skipIf(process.platform !== "linux")("the embedded Postgres' environment", () => {
  it("holds none of Reef's settings or secrets", async () => {
    const dataDir = await tempDataDir();
    const secretKey = Buffer.from("canary-root-key-0123456789abcdef").toString("hex");
    const reef = await startReef({
      REEF_DATA_DIR: dataDir,
      REEF_SECRET_KEY: secretKey,
      REEF_SMTP_URL: "smtp://canary-user:canary-smtp-password@127.0.0.1:2525",
      SOME_OPERATOR_TOKEN: "canary-unrelated-token",
    });
    try {
      const pgPid = (await postmasterPid(dataDir)) as number;
      const environs = await environOfTree(pgPid);
      expect(environs.size).toBeGreaterThan(3); // the postmaster and its background workers
      for (const [pid, environ] of environs) {
        expect(environ, `pid ${pid}`).not.toMatch(/canary|REEF_|SOME_OPERATOR_TOKEN/);
        expect(environ, `pid ${pid}`).not.toContain(secretKey);
        const names = environ
          .split("\0")
          .filter(Boolean)
          .map((kv) => kv.slice(0, kv.indexOf("=")));
        expect(
          names.filter((n) => !["PATH", "HOME", "LANG", "LC_ALL", "TZ", "PGDATA"].includes(n) && !n.startsWith("PG_")),
          `pid ${pid}`,
        ).toEqual([]);
      }
    } finally {
      reef.child.kill("SIGINT");
      expect(await reef.exited).toBe(0);
    }
  });
});

describe("reef with bad configuration", () => {
  it("stops at once naming the setting and the reason", async () => {
    const dataDir = await tempDataDir();
    const res = await reefCommand(["start"], { REEF_DATA_DIR: dataDir, REEF_PORT: "seventy" });
    expect(res.code).toBe(78);
    expect(res.output).toMatch(/REEF_PORT: .*number/i);
    const key = await reefCommand(["start"], { REEF_DATA_DIR: dataDir, REEF_SECRET_KEY: "too-short" });
    expect(key.code).toBe(78);
    expect(key.output).toContain("REEF_SECRET_KEY: must be 32 bytes");
  });

  it("every command has --help", async () => {
    for (const cmd of ["start", "migrate", "status"]) {
      const res = await reefCommand([cmd, "--help"], {});
      expect(res.code, cmd).toBe(0);
      expect(res.output, cmd).toContain(`Usage: reef ${cmd}`);
    }
  });
});
