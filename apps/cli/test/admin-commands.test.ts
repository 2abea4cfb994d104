import { readFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { reefCommand, startReef, tempDataDir } from "./reef-process.ts";

async function superuser(dataDir: string) {
  const password = (await readFile(join(dataDir, "postgres", "superuser.password"), "utf8")).trim();
  const port = Number((await readFile(join(dataDir, "postgres", "data", "postmaster.pid"), "utf8")).split("\n")[3]);
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "reef" });
  await client.connect();
  return client;
}

describe("breakglass admin and audit commands", () => {
  it("create-admin works with the server down; audit verify and export read the trail and catch tampering", async () => {
    const dataDir = await tempDataDir();
    const env = { REEF_DATA_DIR: dataDir };
    const created = await reefCommand(["create-admin", "--email", "root@example.test", "--name", "Root"], env);
    expect(created.code, created.output).toBe(0);
    expect(created.output).toMatch(/created super_admin root@example.test/);
    const password = created.output.match(/password \(shown once\): (\S+)/)?.[1];
    expect(password).toBeDefined();

    const reef = await startReef(env);
    try {
      const login = await fetch(`${reef.url}/api/v1/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "root@example.test", password }),
      });
      expect(login.status).toBe(200);
      expect((await login.json()).user.platformRole).toBe("super_admin");

      // A real session: invite someone, accept, mint and use an API key; then no
      // secret from any of it may appear in the server's log.
      const jar = (res: Response) => res.headers.getSetCookie().map((c) => c.split(";")[0] ?? "");
      const rootCookies = jar(login);
      const csrf = (cookies: string[]) => cookies.find((c) => c.startsWith("reef_csrf="))?.split("=")[1] ?? "";
      const call = (path: string, cookies: string[], body?: unknown, method = "POST") =>
        fetch(`${reef.url}${path}`, {
          method,
          headers: { "content-type": "application/json", cookie: cookies.join("; "), "x-csrf-token": csrf(cookies) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      const me = await (await call("/api/v1/me", rootCookies, undefined, "GET")).json();
      const wid = me.workspaces[0].id;
      const guestSignup = await fetch(`${reef.url}/api/v1/auth/signup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "guest@example.test", password: "guest password long", name: "Guest" }),
      });
      const guestCookies = jar(guestSignup);
      const invite = await (
        await call(`/api/v1/workspaces/${wid}/invites`, rootCookies, { email: "guest@example.test", role: "member" })
      ).json();
      expect((await call(`/api/v1/invites/${invite.token}/accept`, guestCookies)).status).toBe(200);
      const { key } = await (
        await call(`/api/v1/workspaces/${wid}/api-keys`, rootCookies, { name: "ci", role: "viewer" })
      ).json();
      const viaKey = await fetch(`${reef.url}/api/v1/workspaces/${wid}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(viaKey.status).toBe(200);
      const log = reef.output();
      const secrets = [password ?? "", "guest password long", invite.token, key, ...rootCookies, ...guestCookies].map(
        (c) => c.replace(/^reef_\w+=/, ""),
      );
      for (const secret of secrets) expect(log.includes(secret), `log contains ${secret.slice(0, 6)}…`).toBe(false);
      expect(log).toContain("invite created; link returned to the inviter");

      // Running again (server up) resets the password and keeps the account.
      const again = await reefCommand(["create-admin", "--email", "ROOT@example.test"], env);
      expect(again.output).toMatch(/updated super_admin/);

      const verify = await reefCommand(["audit", "verify"], env);
      expect(verify.code, verify.output).toBe(0);
      expect(verify.output).toMatch(/\d+ entries in \d+ chains: intact/);

      const jsonl = await reefCommand(["audit", "export", "--format", "jsonl", "--platform"], env);
      const entries = jsonl.output
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(entries.map((e) => e.action)).toEqual(
        expect.arrayContaining(["user.signup", "user.breakglass_admin", "auth.login"]),
      );
      expect(jsonl.output).not.toContain(password);
      const csv = await reefCommand(["audit", "export", "--format", "csv"], env);
      expect(csv.output.split("\n")[0]).toBe(
        "id,workspace_id,occurred_at,actor_type,actor_id,action,target_type,target_id,outcome,ip,user_agent,request_id,details,prev_hash,hash",
      );

      const db = await superuser(dataDir);
      await db.query("update platform_audit_log set action = 'nothing.to.see' where action = 'auth.login'");
      await db.end();
      const broken = await reefCommand(["audit", "verify"], env);
      expect(broken.code).toBe(1);
      expect(broken.output).toMatch(/BROKEN chain platform at entry \d+: entry content does not match its hash/);
    } finally {
      reef.child.kill("SIGINT");
      await reef.exited;
    }
    // Five CLI runs and a server start, each a Node process opening the embedded Postgres: about 12 s on a quiet
    // machine, past 30 s when CI's real-gateway tests share the two cores.
  }, 120_000);
});
