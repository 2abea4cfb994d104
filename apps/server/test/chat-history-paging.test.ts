/**
 * Long conversations and long conversation lists: the history opens at its end
 * (`order=desc`) and pages back without gaps or repeats, and the session list
 * pages with its cursor. No gateway: the rows are arranged in the database.
 */
import { buildTestApp, signUp, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

async function conversation() {
  const owner = await signUp(t.app, { name: "Lena Long" });
  const wid = owner.workspaceId;
  const provider = (
    await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "LLM",
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: "sk-paging-test-0123456789",
      models: ["m"],
    })
  ).json();
  const agent = (
    await owner.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "Pager", providerId: provider.id, model: "m" })
  ).json();
  return { owner, wid, agent };
}

describe("chat history paging", () => {
  it("opens a 250-message conversation at its end and pages back to its start, each message once", async () => {
    const { owner, wid, agent } = await conversation();
    const session = (await owner.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId: agent.id })).json();
    // Stored in clear, as rows written before sealing were: the history opens them as they are.
    await t.db.owner.query(
      `insert into chat_messages (workspace_id, session_id, role, content, sealed, completed_at)
       select $1, $2, case when g % 2 = 1 then 'user' else 'assistant' end, 'message ' || g, false, now()
         from generate_series(1, 250) g`,
      [wid, session.id],
    );
    const url = `/api/v1/workspaces/${wid}/sessions/${session.id}/messages`;
    // Oldest first (the default) starts at the beginning: the newest messages are not on its first page.
    const oldest = (await owner.client.get(`${url}?limit=100`)).json();
    expect(oldest.items.at(-1).content).toBe("message 100");

    const seen: string[] = [];
    let cursor = "";
    let pages = 0;
    do {
      const res = await owner.client.get(`${url}?order=desc&limit=100${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json() as { items: { content: string }[]; nextCursor: string | null };
      if (pages === 0) expect(page.items[0]?.content).toBe("message 250");
      seen.push(...page.items.map((m) => m.content));
      cursor = page.nextCursor ? encodeURIComponent(page.nextCursor) : "";
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => `message ${250 - i}`));
    // A bad order is a plain validation error, not a 500.
    const bad = await owner.client.get(`${url}?order=sideways`);
    expect(bad.statusCode).toBe(400);
  });

  it("pages the conversation list with its cursor, pinned first, each conversation once", async () => {
    const { owner, wid, agent } = await conversation();
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const res = await owner.client.post(`/api/v1/workspaces/${wid}/sessions`, {
        agentId: agent.id,
        title: `chat ${i}`,
      });
      ids.push(res.json().id);
    }
    const pinned = ids[5] as string;
    expect(
      (await owner.client.patch(`/api/v1/workspaces/${wid}/sessions/${pinned}`, { pinned: true })).statusCode,
    ).toBe(200);
    const seen: string[] = [];
    let cursor = "";
    do {
      const page = (
        await owner.client.get(`/api/v1/workspaces/${wid}/sessions?limit=25${cursor ? `&cursor=${cursor}` : ""}`)
      ).json() as { items: { id: string }[]; nextCursor: string | null };
      seen.push(...page.items.map((s) => s.id));
      cursor = page.nextCursor ? encodeURIComponent(page.nextCursor) : "";
    } while (cursor);
    expect(seen[0]).toBe(pinned);
    expect(new Set(seen).size).toBe(60);
    expect([...seen].sort()).toEqual([...ids].sort());
  });
});
