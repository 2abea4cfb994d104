import { randomBytes } from "node:crypto";
import { startLlmStandIn } from "@reef/testing";
import { describe, expect, it } from "vitest";
import { reefCommand, runReef, startReef, tempDataDir } from "./reef-process.ts";

const b64 = (k: Buffer) => k.toString("base64");

/** Signs up, adds a provider with `apiKey`, and returns a way to test it (which opens the key). */
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
  return { path: `/api/v1/workspaces/${workspace.id}/providers/${id}/test`, headers };
}

describe("reef rotate-keys", () => {
  it("a wrong root key stops Reef at once; rotation moves the vault to a new key without losing a secret", async () => {
    const apiKey = `sk-rotate-${randomBytes(8).toString("hex")}`;
    const llm = await startLlmStandIn({ apiKey, models: ["m"] });
    const dataDir = await tempDataDir();
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const env = (current: Buffer, previous?: Buffer) => ({
      REEF_DATA_DIR: dataDir,
      REEF_SECRET_KEY: b64(current),
      ...(previous ? { REEF_SECRET_KEY_PREVIOUS: b64(previous) } : {}),
    });
    const testProvider = async (
      current: Buffer,
      previous: Buffer | undefined,
      probe: { path: string; headers: Record<string, string> },
    ) => {
      const reef = await startReef(env(current, previous));
      try {
        // Login again: sessions survive restarts, cookies are in `probe.headers`.
        const res = await fetch(`${reef.url}${probe.path}`, { method: "POST", headers: probe.headers });
        expect(res.status).toBe(200);
        return (await res.json()) as { ok: boolean };
      } finally {
        reef.child.kill("SIGINT");
        await reef.exited;
      }
    };
    try {
      const first = await startReef(env(oldKey));
      let probe: { path: string; headers: Record<string, string> };
      try {
        probe = await withProvider(first.url, llm.baseUrl, apiKey);
      } finally {
        first.child.kill("SIGINT");
        await first.exited;
      }

      const wrong = runReef(["start"], { REEF_PORT: "0", ...env(newKey) });
      expect(await wrong.exited).not.toBe(0);
      expect(wrong.output()).toMatch(/REEF_SECRET_KEY does not match the key this database's vault was created with/);
      expect(wrong.output()).not.toMatch(/Reef is running/);

      // New key in, old key still accepted: the secret opens (the provider test reaches the vendor with it).
      expect(await testProvider(newKey, oldKey, probe)).toMatchObject({ ok: true });
      const rotated = await reefCommand(["rotate-keys"], env(newKey, oldKey));
      expect(rotated.code, rotated.output).toBe(0);
      expect(rotated.output).toMatch(/rewrapped 1 workspace key\(s\); 0 already under the current root key/);
      // Old key out.
      expect(await testProvider(newKey, undefined, probe)).toMatchObject({ ok: true });
      const old = runReef(["start"], { REEF_PORT: "0", ...env(oldKey) });
      expect(await old.exited).not.toBe(0);
      const help = await reefCommand(["rotate-keys", "--help"], {});
      expect(help.output).toMatch(/REEF_SECRET_KEY_PREVIOUS/);
    } finally {
      await llm.close();
    }
  }, 120_000);
});
