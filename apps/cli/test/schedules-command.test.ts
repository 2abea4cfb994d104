import { addAgent, addStandInProvider, buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listSchedules, scheduleTable } from "../src/commands/schedules-command.ts";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ config: { schedulerEnabled: false } });
}, 60_000);
afterAll(() => t.close());

describe("reef schedules list", () => {
  it("pages one workspace's schedules newest first, without prompts or secrets, and never another's", async () => {
    const owner = await signUp(t.app);
    const other = await signUp(t.app);
    const wid = owner.workspaceId;
    const providerId = await addStandInProvider(
      owner.client,
      wid,
      { baseUrl: "http://127.0.0.1:9/v1" },
      "sk-unused-0123456789",
    );
    const agentId = await addAgent(owner.client, wid, { name: "Ada", providerId, model: "m" });
    const names = ["Daily", "Hook", "Weekly"];
    let secret = "";
    for (const name of names) {
      const res = await owner.client.post(`/api/v1/workspaces/${wid}/schedules`, {
        name,
        agentId,
        kind: name === "Hook" ? "webhook" : "cron",
        ...(name === "Hook" ? {} : { cron: name === "Daily" ? "0 9 * * *" : "0 9 * * 1", timezone: "Europe/Paris" }),
        prompt: "private prompt 91ab",
      });
      expect(res.statusCode, res.body).toBe(201);
      if (res.json().secret) secret = res.json().secret;
    }
    const db = t.db.database.db;
    const first = await listSchedules(db, wid, { limit: 2 });
    expect(first.items.map((s) => s.name)).toEqual(["Weekly", "Hook"]);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await listSchedules(db, wid, { limit: 2, cursor: first.nextCursor ?? "" });
    expect(second).toMatchObject({ items: [{ name: "Daily", rule: "0 9 * * * (Europe/Paris)" }], nextCursor: null });
    const table = scheduleTable([...first.items, ...second.items]);
    expect(table.split("\n")[0]).toMatch(/^ID\s+NAME\s+KIND\s+RULE/);
    expect(table).toContain("on call");
    const everything = JSON.stringify([first, second]) + table;
    expect(everything).not.toContain("private prompt");
    expect(everything).not.toContain(secret.slice(6));
    expect((await listSchedules(db, other.workspaceId, { limit: 50 })).items).toEqual([]);
    await expect(listSchedules(db, wid, { limit: 2, cursor: "garbage" })).rejects.toThrow(/cursor/);
  });
});
