import { randomBytes, randomUUID } from "node:crypto";
import { type Tx, withScope } from "@reef/db";
import { createTestDatabase, type TestDatabase } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTranscriptSealer } from "../src/chat/transcript-sealing.ts";
import { createVault } from "../src/vault/vault-service.ts";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.drop());

async function workspace(): Promise<string> {
  const id = randomUUID();
  await t.owner.query("insert into workspaces (id, name) values ($1, 'sealing test')", [id]);
  return id;
}
const inWs = <T>(wid: string, fn: (tx: Tx) => Promise<T>) => withScope(t.database.db, { workspaceId: wid }, fn);
const sealer = () => createTranscriptSealer(createVault({ keyring: { current: randomBytes(32), previous: [] } }));

describe("transcript sealing", () => {
  it("seals a message bound to its session and id: it opens only there", async () => {
    const wid = await workspace();
    const other = await workspace();
    const s = sealer();
    const [sid, sid2] = [randomUUID(), randomUUID()];
    const sealed = await inWs(wid, (tx) => s.sealMessage(tx, wid, sid, 7, "the secret plan"));
    expect(sealed).toMatch(/^v1\.1\./);
    expect(sealed).not.toContain("secret");
    const row = { id: 7, workspaceId: wid, sessionId: sid, content: sealed, sealed: true };
    expect(await inWs(wid, (tx) => s.openMessage(tx, row))).toBe("the secret plan");
    // Moved to another message of the same session, to another session, or to another workspace: refused.
    await expect(inWs(wid, (tx) => s.openMessage(tx, { ...row, id: 8 }))).rejects.toThrow();
    await expect(inWs(wid, (tx) => s.openMessage(tx, { ...row, sessionId: sid2 }))).rejects.toThrow();
    await inWs(other, (tx) => s.sealMessage(tx, other, sid, 7, "their own"));
    await expect(inWs(other, (tx) => s.openMessage(tx, { ...row, workspaceId: other }))).rejects.toThrow();
    // A message's content does not open as its session's title, nor the other way round.
    await expect(
      inWs(wid, (tx) => s.openTitle(tx, { id: sid, workspaceId: wid, title: sealed, titleSealed: true })),
    ).rejects.toThrow();
  });

  it("seals an answer's trace bound to its message, apart from contents", async () => {
    const wid = await workspace();
    const s = sealer();
    const sid = randomUUID();
    const json = JSON.stringify([{ id: "call_1", name: "exec", args: '{"command":"cat plan.txt"}', status: "ok" }]);
    const sealed = await inWs(wid, (tx) => s.sealTrace(tx, wid, sid, 7, json));
    if (sealed === null) throw new Error("nothing sealed");
    expect(sealed).toMatch(/^v1\.1\./);
    expect(sealed).not.toContain("plan.txt");
    const row = { id: 7, workspaceId: wid, sessionId: sid, content: "", sealed: true, trace: sealed };
    expect(await inWs(wid, (tx) => s.openTrace(tx, row))).toBe(json);
    await expect(inWs(wid, (tx) => s.openTrace(tx, { ...row, id: 8 }))).rejects.toThrow();
    // A trace does not open as the message's content, nor a content as a trace.
    await expect(inWs(wid, (tx) => s.openMessage(tx, { ...row, content: sealed }))).rejects.toThrow();
    const content = await inWs(wid, (tx) => s.sealMessage(tx, wid, sid, 7, json));
    await expect(inWs(wid, (tx) => s.openTrace(tx, { ...row, trace: content }))).rejects.toThrow();
    // No tool ran: nothing is stored.
    expect(await inWs(wid, (tx) => s.sealTrace(tx, wid, sid, 9, null))).toBeNull();
    expect(await inWs(wid, (tx) => s.openTrace(tx, { ...row, trace: null }))).toBeNull();
  });

  it("seals titles bound to their session", async () => {
    const wid = await workspace();
    const s = sealer();
    const sid = randomUUID();
    const sealed = await inWs(wid, (tx) => s.sealTitle(tx, wid, sid, "Holiday plans"));
    expect(sealed).not.toContain("Holiday");
    const row = { id: sid, workspaceId: wid, title: sealed, titleSealed: true };
    expect(await inWs(wid, (tx) => s.openTitle(tx, row))).toBe("Holiday plans");
    await expect(inWs(wid, (tx) => s.openTitle(tx, { ...row, id: randomUUID() }))).rejects.toThrow();
  });

  it("reads rows stored in clear as they are, and stores nothing for an empty value", async () => {
    const wid = await workspace();
    const s = sealer();
    const sid = randomUUID();
    const legacy = { id: 1, workspaceId: wid, sessionId: sid, content: "said in clear", sealed: false };
    expect(await inWs(wid, (tx) => s.openMessage(tx, legacy))).toBe("said in clear");
    expect(await inWs(wid, (tx) => s.sealMessage(tx, wid, sid, 2, ""))).toBe("");
    expect(await inWs(wid, (tx) => s.openMessage(tx, { ...legacy, content: "", sealed: true }))).toBe("");
    expect(await inWs(wid, (tx) => s.sealTitle(tx, wid, sid, ""))).toBe("");
  });

  it("opens a 200-message history in a few milliseconds", async () => {
    const wid = await workspace();
    const s = sealer();
    const sid = randomUUID();
    const text = "lorem ipsum dolor sit amet ".repeat(40);
    const rows = await inWs(wid, async (tx) => {
      const out = [];
      for (let id = 1; id <= 200; id++) {
        out.push({
          id,
          workspaceId: wid,
          sessionId: sid,
          content: await s.sealMessage(tx, wid, sid, id, text),
          sealed: true,
        });
      }
      return out;
    });
    const ms: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const opened = await inWs(wid, async (tx) => {
        const out = [];
        for (const r of rows) out.push(await s.openMessage(tx, r));
        return out;
      });
      ms.push(performance.now() - started);
      expect(opened.every((o) => o === text)).toBe(true);
    }
    const median = ms.sort((a, b) => a - b)[2] ?? 0;
    console.info(
      `opening 200 sealed messages of ${text.length} chars, in one transaction: ${median.toFixed(1)} ms (median of 5)`,
    );
    expect(median).toBeLessThan(100);
  });
});
