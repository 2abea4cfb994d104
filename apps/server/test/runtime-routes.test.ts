import { existsSync } from "node:fs";
import { join } from "node:path";
import { ApiClient, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let t: TestApp;
let operator: Awaited<ReturnType<typeof signUp>>;
beforeAll(async () => {
  t = await buildTestApp();
  operator = await signUp(t.app);
});
afterAll(async () => {
  await t.close();
}, 60_000);

describe("workspace runtime over HTTP (real gateway)", () => {
  it("owners start and stop it, members only read it, operators see it with memory", async () => {
    const owner = await signUp(t.app);
    const wid = owner.workspaceId;
    const member = await signUp(t.app);
    const { token } = (
      await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: member.email, role: "member" })
    ).json();
    await member.client.post(`/api/v1/invites/${token}/accept`);

    expect((await owner.client.get(`/api/v1/workspaces/${wid}/runtime`)).json()).toMatchObject({
      state: "stopped",
      driver: "process",
    });
    expect((await member.client.post(`/api/v1/workspaces/${wid}/runtime/start`)).statusCode).toBe(403);

    const started = await owner.client.post(`/api/v1/workspaces/${wid}/runtime/start`);
    expect(started.statusCode, started.body).toBe(200);
    const view = started.json();
    expect(view).toMatchObject({ state: "running", restarts: 0, failureReason: null });
    expect(view.rssBytes).toBeGreaterThan(50 * 1024 * 1024);
    expect(JSON.stringify(view)).not.toMatch(/token|127\.0\.0\.1/);

    expect((await member.client.get(`/api/v1/workspaces/${wid}/runtime`)).json().state).toBe("running");
    const list = (await operator.client.get("/api/v1/admin/runtimes")).json();
    expect(list.items.find((r: { workspaceId: string }) => r.workspaceId === wid)).toMatchObject({
      state: "running",
      uptimeSeconds: expect.any(Number),
    });
    expect((await owner.client.get("/api/v1/admin/runtimes")).statusCode).toBe(403);

    // Operators stop any workspace's gateway; nobody else may use their route.
    expect((await owner.client.post(`/api/v1/admin/runtimes/${wid}/stop`)).statusCode).toBe(403);
    const byOperator = await operator.client.post(`/api/v1/admin/runtimes/${wid}/stop`);
    expect(byOperator.json()).toMatchObject({ state: "stopped", rssBytes: null });
    const stopped = await owner.client.post(`/api/v1/workspaces/${wid}/runtime/stop`);
    expect(stopped.json()).toMatchObject({ state: "stopped", rssBytes: null });
    const audit = (await owner.client.get(`/api/v1/workspaces/${wid}/audit?limit=10`)).json();
    const actions = audit.items.map(
      (e: { action: string; actorId: string }) =>
        `${e.action}:${e.actorId === owner.user.id ? "owner" : e.actorId === operator.user.id ? "operator" : "system"}`,
    );
    expect(actions.slice(0, 3)).toEqual(["runtime.stop:operator", "runtime.ready:owner", "runtime.start:owner"]);
    expect((await new ApiClient(t.app).post(`/api/v1/workspaces/${wid}/runtime/start`)).statusCode).toBe(401);
  }, 120_000);

  it("deleting a workspace stops its gateway and removes everything it stored", async () => {
    const owner = await signUp(t.app);
    const created = await owner.client.post("/api/v1/workspaces", { name: "Doomed" });
    expect(created.statusCode, created.body).toBe(201);
    const wid = created.json().id;
    expect((await owner.client.post(`/api/v1/workspaces/${wid}/runtime/start`)).statusCode).toBe(200);
    const { rows } = await t.db.owner.query("select handle from runtimes where workspace_id = $1", [wid]);
    const { pid, dir } = rows[0].handle as { pid: number; dir: string };
    expect(existsSync(join(dir, "state", "openclaw.json"))).toBe(true);

    const res = await owner.client.request("DELETE", `/api/v1/workspaces/${wid}`, { confirmName: "Doomed" });
    expect(res.statusCode, res.body).toBe(204);
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect((await t.db.owner.query("select 1 from runtimes where workspace_id = $1", [wid])).rowCount).toBe(0);
  }, 120_000);
});
