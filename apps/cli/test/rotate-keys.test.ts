import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { rootKeyId } from "@reef/core";
import { startLlmStandIn } from "@reef/testing";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { reefCommand, runReef, startReef, tempDataDir } from "./reef-process.ts";

const b64 = (k: Buffer) => k.toString("base64");

/** Signs up, adds a provider with `apiKey`, and returns how to test it (which opens the key) and its id. */
async function withProvider(url: string, baseUrl: string, apiKey: string) {
  const signup = await fetch(`${url}/api/v1/auth/signup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "rotate@example.test", password: "correct horse battery", name: "R" }),
  });
  expect(signup.status).toBe(201);
  const { workspace } = await signup.json();
  const cookies = signup.headers.getSetCookie().map((c) => c.split(";")[0] ?? "");
  const csrf = cookies.find((c) => c.startsWith("reef_csrf="))?.split("=")[1] ?? "";
  const headers = { "content-type": "application/json", cookie: cookies.join("; "), "x-csrf-token": csrf };
  const created = await fetch(`${url}/api/v1/workspaces/${workspace.id}/providers`, {
    method: "POST",
    headers,
    body: JSON.stringify({ name: "LLM", kind: "openai-compatible", baseUrl, apiKey, models: ["m"] }),
  });
  expect(created.status).toBe(201);
  const { id } = await created.json();
  return { id: id as string, path: `/api/v1/workspaces/${workspace.id}/providers/${id}/test`, headers };
}

/**
 * CSRF tokens are HMACs under a key derived from the root key: once the old key is
 * retired, a session's old token no longer passes, and Reef sends the current one
 * with the session's next request, as a page reload would pick it up.
 */
async function refreshCsrf<H extends { cookie: string; "x-csrf-token": string }>(url: string, headers: H): Promise<H> {
  const stale = await fetch(`${url}/api/v1/me`, { headers: { cookie: headers.cookie } });
  expect(stale.status).toBe(200);
  const fresh = stale.headers
    .getSetCookie()
    .map((c) => c.split(";")[0] ?? "")
    .find((c) => c.startsWith("reef_csrf="))
    ?.split("=")[1];
  if (!fresh) throw new Error("no fresh CSRF cookie");
  expect(fresh).not.toBe(headers["x-csrf-token"]);
  const session = headers.cookie.split("; ").filter((c) => !c.startsWith("reef_csrf="));
  return { ...headers, cookie: [...session, `reef_csrf=${fresh}`].join("; "), "x-csrf-token": fresh };
}

/** What the database holds, read as its superuser while Reef runs the embedded server. */
async function stored(dataDir: string, providerId: string) {
  const password = (await readFile(join(dataDir, "postgres", "superuser.password"), "utf8")).trim();
  const port = Number((await readFile(join(dataDir, "postgres", "data", "postmaster.pid"), "utf8")).split("\n")[3]);
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "reef" });
  await client.connect();
  try {
    const secret = await client.query("select api_key_sealed from providers where id = $1", [providerId]);
    const keys = await client.query("select wrapped_key, root_key_id from workspace_keys");
    return { secret: secret.rows[0]?.api_key_sealed as string, keys: keys.rows };
  } finally {
    await client.end();
  }
}

describe("reef rotate-keys", () => {
  it("a wrong root key stops Reef at once; rotation moves the vault to a new key while Reef runs, without re-encrypting a secret", async () => {
    const apiKey = `sk-rotate-${randomBytes(8).toString("hex")}`;
    const llm = await startLlmStandIn({ apiKey, models: ["m"] });
    const dataDir = await tempDataDir();
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const env = (current: Buffer, previous?: Buffer) => ({
      REEF_DATA_DIR: dataDir,
      REEF_SECRET_KEY: b64(current),
      // The LLM stand-in runs on loopback, which an operator must allow for providers.
      REEF_PROVIDER_ALLOWED_HOSTS: "127.0.0.1",
      ...(previous ? { REEF_SECRET_KEY_PREVIOUS: b64(previous) } : {}),
    });
    // The provider's connection test opens the sealed key and presents it to the vendor (stand-in).
    const testProvider = async (url: string, probe: { path: string; headers: Record<string, string> }) => {
      const res = await fetch(`${url}${probe.path}`, { method: "POST", headers: probe.headers });
      expect(res.status).toBe(200);
      return (await res.json()) as { ok: boolean };
    };
    const stop = async (reef: Awaited<ReturnType<typeof startReef>>) => {
      reef.child.kill("SIGINT");
      expect(await reef.exited).toBe(0);
    };
    try {
      const first = await startReef(env(oldKey));
      let probe: Awaited<ReturnType<typeof withProvider>>;
      try {
        probe = await withProvider(first.url, llm.baseUrl, apiKey);
        expect(await testProvider(first.url, probe)).toMatchObject({ ok: true });
      } finally {
        await stop(first);
      }

      // Another key alone: refused before serving, naming both key ids and what to do; no key in the output.
      const wrong = runReef(["start"], { REEF_PORT: "0", ...env(newKey) });
      expect(await wrong.exited).not.toBe(0);
      expect(wrong.output()).toContain(
        `REEF_SECRET_KEY does not match the key this database's vault was created with (key id ${rootKeyId(oldKey)}; the configured key is ${rootKeyId(newKey)})`,
      );
      expect(wrong.output()).toMatch(/REEF_SECRET_KEY_PREVIOUS and run `reef rotate-keys`/);
      expect(wrong.output()).not.toMatch(/Reef is running/);
      for (const key of [oldKey, newKey]) expect(wrong.output()).not.toContain(b64(key));

      // New key in, old key still accepted: the secret opens; rotate while Reef keeps serving.
      const during = await startReef(env(newKey, oldKey));
      try {
        expect(await testProvider(during.url, probe)).toMatchObject({ ok: true });
        const before = await stored(dataDir, probe.id);
        expect(before.keys).toEqual([{ wrapped_key: expect.any(String), root_key_id: rootKeyId(oldKey) }]);

        const rotated = await reefCommand(["rotate-keys"], env(newKey, oldKey));
        expect(rotated.code, rotated.output).toBe(0);
        expect(rotated.output).toContain(
          `rewrapped 1 workspace data key(s); 0 already under the current root key (key id ${rootKeyId(newKey)})`,
        );
        expect(rotated.output).toMatch(/resealed 0 gateway token\(s\)/);
        expect(rotated.output).toMatch(/now remove REEF_SECRET_KEY_PREVIOUS and restart Reef/);
        for (const key of [oldKey, newKey]) expect(rotated.output).not.toContain(b64(key));

        const after = await stored(dataDir, probe.id);
        expect(after.keys).toEqual([{ wrapped_key: expect.any(String), root_key_id: rootKeyId(newKey) }]);
        expect(after.keys[0].wrapped_key).not.toBe(before.keys[0].wrapped_key);
        // The secret itself was not re-encrypted.
        expect(after.secret).toBe(before.secret);
        // The running Reef carries on (its database login survived the command, too).
        expect(await testProvider(during.url, probe)).toMatchObject({ ok: true });

        const again = await reefCommand(["rotate-keys"], env(newKey, oldKey));
        expect(again.output).toContain("rewrapped 0 workspace data key(s); 1 already under the current root key");
      } finally {
        await stop(during);
      }

      // Old key out: the new key alone reads the secret; the old key alone is now the wrong one.
      const final = await startReef(env(newKey));
      try {
        probe = { ...probe, headers: await refreshCsrf(final.url, probe.headers) };
        expect(await testProvider(final.url, probe)).toMatchObject({ ok: true });
      } finally {
        await stop(final);
      }
      const old = runReef(["start"], { REEF_PORT: "0", ...env(oldKey) });
      expect(await old.exited).not.toBe(0);
      expect(old.output()).toContain(`(key id ${rootKeyId(newKey)}; the configured key is ${rootKeyId(oldKey)})`);

      // Rotating without the key the vault is under changes nothing and says what is missing.
      const lost = await reefCommand(["rotate-keys"], env(randomBytes(32)));
      expect(lost.code).not.toBe(0);
      expect(lost.output).toMatch(
        new RegExp(`wrapped by root key ${rootKeyId(newKey)}.*REEF_SECRET_KEY_PREVIOUS.*nothing was changed`),
      );

      const help = await reefCommand(["rotate-keys", "--help"], {});
      expect(help.code).toBe(0);
      expect(help.output).toMatch(/REEF_SECRET_KEY=<new key>\s+REEF_SECRET_KEY_PREVIOUS=<old key>/);
      expect(help.output).toMatch(/Remove REEF_SECRET_KEY_PREVIOUS and restart/);
    } finally {
      await llm.close();
    }
  }, 180_000);
});
