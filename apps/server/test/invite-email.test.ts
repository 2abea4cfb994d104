import { buildTestApp, type SmtpStandIn, signUp, startSmtpStandIn, type TestApp } from "@reef/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A local SMTP server stands in for the organisation's mail relay.
const refuse = new Set<string>();
let smtp: SmtpStandIn;

let t: TestApp;
beforeAll(async () => {
  smtp = await startSmtpStandIn({ refuse });
  t = await buildTestApp({ config: { smtpUrl: smtp.url, smtpFrom: "Reef <noreply@reef.test>" } });
});
afterAll(async () => {
  await t.close();
  await smtp.close();
});

describe("invites with SMTP configured", () => {
  it("emails the link to the invitee and never returns the token to the inviter", async () => {
    const owner = await signUp(t.app);
    const invitee = await signUp(t.app);
    const res = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/invites`, {
      email: invitee.email,
      role: "member",
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.delivery).toBe("email");
    expect(body.token).toBeUndefined();
    expect(body.url).toBeUndefined();

    const mail = smtp.received.find((m) => m.to.includes(invitee.email));
    expect(mail).toBeDefined();
    expect(mail?.raw).toMatch(/From: Reef <noreply@reef.test>/);
    const unfolded = (mail?.raw ?? "").replace(/=\r?\n/g, "");
    const token = unfolded.match(/\/invites\/(ri_[A-Za-z0-9_-]+)/)?.[1];
    expect(token).toBeDefined();
    const accepted = await invitee.client.post(`/api/v1/invites/${token}/accept`);
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json().workspace).toMatchObject({ id: owner.workspaceId, role: "member" });
  });

  it("a refused email answers 503 and leaves no invite behind", async () => {
    const owner = await signUp(t.app);
    refuse.add("bounce@example.test");
    const res = await owner.client.post(`/api/v1/workspaces/${owner.workspaceId}/invites`, {
      email: "bounce@example.test",
      role: "viewer",
    });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: "UNAVAILABLE", details: { retryable: true } });
    expect(res.body).not.toContain("smtp://");
    const list = await owner.client.get(`/api/v1/workspaces/${owner.workspaceId}/invites`);
    expect(list.json().items).toEqual([]);
  });
});
