import { ApiClient, buildTestApp, type SmtpStandIn, signUp, startSmtpStandIn, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// API rate limits are checked before a call acts and counted per actor (user or
// API key) inside the workspace: a refused call changes nothing, sends nothing,
// and one member spending their budget leaves everyone else's intact.

const WRITES = 5;

let smtp: SmtpStandIn;
let t: TestApp;
beforeAll(async () => {
  smtp = await startSmtpStandIn();
  t = await buildTestApp({
    config: {
      smtpUrl: smtp.url,
      smtpFrom: "Reef <noreply@reef.test>",
      rateLimitApiWrite: { points: WRITES, durationSec: 600 },
      rateLimitApiRead: { points: 50, durationSec: 600 },
    },
  });
});
afterAll(async () => {
  await t.close();
  await smtp.close();
});

/** Invites a fresh user with `role` (the link arrives by mail) and returns their client. */
async function addMember(owner: Awaited<ReturnType<typeof signUp>>, role: "viewer" | "member") {
  const invitee = await signUp(t.app);
  const res = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/invites`, {
    email: invitee.email,
    role,
  });
  expect(res.statusCode).toBe(201);
  const mail = smtp.received.find((m) => m.to.includes(invitee.email));
  const token = (mail?.raw ?? "").replace(/=\r?\n/g, "").match(/\/invites\/(ri_[A-Za-z0-9_-]+)/)?.[1];
  expect((await invitee.client.post(`/api/v1/invites/${token}/accept`)).statusCode).toBe(200);
  return invitee;
}

async function storedName(workspaceId: string): Promise<string> {
  const { rows } = await t.db.owner.query("select name from workspaces where id = $1", [workspaceId]);
  return rows[0].name;
}

describe("write rate limits", () => {
  it("refuses before acting: exactly the allowance succeeds and a refused rename changes nothing", async () => {
    const owner = await signUp(t.app);
    const statuses: number[] = [];
    for (let i = 1; i <= WRITES + 3; i++) {
      const res = await owner.client.patch(`/api/v1/workspaces/${owner.workspaceId}`, { name: `Name ${i}` });
      statuses.push(res.statusCode);
      if (res.statusCode === 429) {
        expect(res.json().code).toBe("RATE_LIMITED");
        expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
      }
    }
    expect(statuses).toEqual([...Array(WRITES).fill(200), 429, 429, 429]);
    // The last successful rename stands: no refused request wrote anything.
    expect(await storedName(owner.workspaceId)).toBe(`Name ${WRITES}`);
    const { rows } = await t.db.owner.query(
      "select count(*)::int as n from audit_log where workspace_id = $1 and action = 'workspace.rename'",
      [owner.workspaceId],
    );
    expect(rows[0].n).toBe(WRITES);
  });

  it("holds under concurrency: of many simultaneous renames exactly the allowance succeeds", async () => {
    const owner = await signUp(t.app);
    const names = Array.from({ length: WRITES + 6 }, (_, i) => `Burst ${i}`);
    const results = await Promise.all(
      names.map((name) => owner.client.patch(`/api/v1/workspaces/${owner.workspaceId}`, { name })),
    );
    const ok = names.filter((_, i) => results[i]?.statusCode === 200);
    expect(ok).toHaveLength(WRITES);
    expect(results.filter((r) => r.statusCode === 429)).toHaveLength(names.length - WRITES);
    expect(ok).toContain(await storedName(owner.workspaceId));
  });

  it("counts per actor: a viewer spending its budget does not stop the owner or an API key", async () => {
    const owner = await signUp(t.app);
    const key = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/api-keys`, {
      name: "ci",
      role: "admin",
    });
    expect(key.statusCode).toBe(201);
    const viewer = await addMember(owner, "viewer");
    // A viewer's writes are refused (403), yet each counts against the viewer alone.
    const viewerStatuses: number[] = [];
    for (let i = 0; i < WRITES + 2; i++) {
      const res = await viewer.client.patch(`/api/v1/workspaces/${owner.workspaceId}`, { name: `Viewer ${i}` });
      viewerStatuses.push(res.statusCode);
    }
    expect(viewerStatuses.slice(0, WRITES)).toEqual(Array(WRITES).fill(403));
    expect(viewerStatuses.slice(WRITES)).toEqual([429, 429]);
    // The owner has used 2 writes (key, invite): 3 remain.
    const renamed = await owner.client.patch(`/api/v1/workspaces/${owner.workspaceId}`, { name: "Owner rename" });
    expect(renamed.statusCode).toBe(200);
    const bot = new ApiClient(t.app, { bearer: key.json().key });
    for (let i = 0; i < WRITES; i++) {
      const res = await bot.patch(`/api/v1/workspaces/${owner.workspaceId}`, { name: `Bot ${i}` });
      expect(res.statusCode, `key rename ${i}`).toBe(200);
    }
    expect((await bot.patch(`/api/v1/workspaces/${owner.workspaceId}`, { name: "Bot over" })).statusCode).toBe(429);
    // The key's exhaustion does not stop the owner either.
    const again = await owner.client.patch(`/api/v1/workspaces/${owner.workspaceId}`, { name: "Owner again" });
    expect(again.statusCode).toBe(200);
    expect(await storedName(owner.workspaceId)).toBe("Owner again");
  });

  it("an invite refused by the limit sends no mail and leaves no invite", async () => {
    const owner = await signUp(t.app);
    for (let i = 0; i < WRITES; i++) {
      expect((await owner.client.patch(`/api/v1/workspaces/${owner.workspaceId}`, { name: `W ${i}` })).statusCode).toBe(
        200,
      );
    }
    const before = smtp.received.length;
    const res = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/invites`, {
      email: "late@example.test",
      role: "member",
    });
    expect(res.statusCode).toBe(429);
    // Give a stray send time to arrive before asserting it never did.
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.received.length).toBe(before);
    expect(smtp.received.some((m) => m.to.includes("late@example.test"))).toBe(false);
    const { rows } = await t.db.owner.query("select count(*)::int as n from invites where workspace_id = $1", [
      owner.workspaceId,
    ]);
    expect(rows[0].n).toBe(0);
  });
});
