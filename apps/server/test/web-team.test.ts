/**
 * Team management in a real browser (issue 14, H4): the invite flow (the invite page names workspace, inviter
 * and role, pre-fills the email; the invitee lands in that workspace with no personal one; a viewer lands on
 * the agent gallery), pending invites with revoke, the confirmation dialog (role change, remove member,
 * delete agent with its impact), the members page at 390 px, names in the audit trail with a person filter,
 * and the agent gallery's Chat button. No gateway: nothing is sent to an agent.
 */
import { buildApp, DEFAULT_WEB_DIST } from "@reef/server";
import {
  createBrowserWatch,
  createTestDatabase,
  launchChromium,
  listenLocal,
  signUp,
  silentLogger,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let wid: string;
let agentId: string;
let inviteToken: string;
let owner: Awaited<ReturnType<typeof signUp>>;
let member: Awaited<ReturnType<typeof signUp>>;

const { watch, audit, consoleErrors, a11yViolations: a11y } = createBrowserWatch({ ignore: /status of (401|404)/ });

async function ownerPage(width: number, height: number, colorScheme: "light" | "dark" = "light") {
  const ctx = await browser.newContext({ viewport: { width, height }, colorScheme });
  const page = watch(await ctx.newPage(), `owner ${width} ${colorScheme}`);
  await page.goto(`${base}/signin`);
  await page.getByLabel("Email").fill(owner.email);
  await page.getByLabel("Password").fill(owner.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/w\//);
  return page;
}

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig(),
    database: db.database,
    logger: silentLogger,
    webDistDir: DEFAULT_WEB_DIST,
  });
  base = await listenLocal(app);
  // The first account is the operator (it would be sent to the first-run wizard); the team is everyone after.
  await signUp(app, { name: "Operator" });
  owner = await signUp(app, { name: "Olivia Owner", email: "olivia@example.test" });
  wid = owner.workspaceId;
  await owner.client.patch(`/api/v1/workspaces/${wid}`, { name: "Acme Research" });
  member = await signUp(app, { name: "Mo Member", email: "mo@example.test" });
  const mInvite = (
    await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: member.email, role: "member" })
  ).json();
  await member.client.post(`/api/v1/invites/${mInvite.token}/accept`);
  const provider = (
    await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "LLM",
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: "sk-web-team-0123456789",
      models: ["m"],
    })
  ).json();
  const agent = (
    await owner.client.post(`/api/v1/workspaces/${wid}/agents`, {
      name: "Handbook helper",
      providerId: provider.id,
      model: "m",
      description: "Answers questions about the staff handbook.",
      starterPrompts: ["Summarise the leave policy", "Who approves expenses?"],
    })
  ).json();
  agentId = agent.id;
  for (const c of [owner.client, member.client]) await c.post(`/api/v1/workspaces/${wid}/sessions`, { agentId });
  inviteToken = (
    await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: "nia@example.test", role: "viewer" })
  ).json().token;
  await owner.client.post(`/api/v1/workspaces/${wid}/invites`, { email: "tom@example.test", role: "member" });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stopTestApp(app, db);
}, 60_000);

describe("team management in the browser", () => {
  it("members page: pending invites with revoke; role change and remove go through a dialog that says what happens", async () => {
    const page = await ownerPage(1280, 800);
    await page.goto(`${base}/w/${wid}/members`);
    await page.getByRole("heading", { name: "Pending invites" }).waitFor();
    await page.getByRole("cell", { name: "nia@example.test", exact: true }).waitFor();
    await audit(page, "members light 1280");

    // Revoke: confirm, and it leaves the list.
    await page.getByRole("button", { name: "Revoke the invite to tom@example.test" }).click();
    const dialog = page.getByRole("dialog", { name: "Revoke the invite to tom@example.test?" });
    await dialog.getByText("stops working at once").waitFor();
    await dialog.getByRole("button", { name: "Revoke invite" }).click();
    await page.getByRole("cell", { name: "tom@example.test", exact: true }).waitFor({ state: "detached" });

    // Role change to owner says what it means; Cancel leaves the role as it was.
    await page.getByLabel("Role of Mo Member").selectOption("owner");
    const roleDialog = page.getByRole("dialog", { name: "Make Mo Member an owner?" });
    await roleDialog.getByText(/full control/).waitFor();
    // Cancel is focused first, so Enter never confirms by accident.
    expect(await roleDialog.getByRole("button", { name: "Cancel" }).evaluate((b) => b === document.activeElement)).toBe(
      true,
    );
    await page.keyboard.press("Escape");
    await roleDialog.waitFor({ state: "detached" });
    expect(await page.getByLabel("Role of Mo Member").inputValue()).toBe("member");

    // Remove: the dialog states the consequence; Cancel keeps them and gives focus back to Remove.
    const remove = page.getByRole("button", { name: "Remove Mo Member" });
    await remove.click();
    const removeDialog = page.getByRole("dialog", { name: "Remove Mo Member from Acme Research?" });
    await removeDialog.getByText(/loses access at once/).waitFor();
    await removeDialog.getByRole("button", { name: "Cancel" }).click();
    await removeDialog.waitFor({ state: "detached" });
    expect(await remove.evaluate((b) => b === document.activeElement)).toBe(true);
    const members = (await owner.client.get(`/api/v1/workspaces/${wid}/members`)).json().items;
    expect(members.map((m: { name: string }) => m.name)).toContain("Mo Member");
    await page.context().close();
  }, 60_000);

  it("at 390 px (dark) the members page has no horizontal scroll and Remove is fully visible", async () => {
    const page = await ownerPage(390, 844, "dark");
    await page.goto(`${base}/w/${wid}/members`);
    const remove = page.getByRole("button", { name: "Remove Mo Member" });
    await remove.waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const box = await remove.boundingBox();
    expect(box && box.x >= 0 && box.x + box.width <= 390).toBe(true);
    const select = await page.getByLabel("Role of Mo Member").boundingBox();
    expect(select && select.width >= 80 && select.x + select.width <= 390).toBe(true);
    await audit(page, "members dark 390");
    await page.context().close();
  }, 60_000);

  it("agent gallery: description, starters, delete states its impact, Chat opens a conversation", async () => {
    const page = await ownerPage(1280, 800);
    await page.goto(`${base}/w/${wid}/agents`);
    await page.getByText("Answers questions about the staff handbook.").waitFor();
    await page.getByText("Summarise the leave policy").waitFor();
    await audit(page, "agents light 1280");
    await page.getByRole("button", { name: "Delete Handbook helper" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete the agent Handbook helper?" });
    await dialog.getByText("This deletes 2 conversations of 2 people with it.").waitFor();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("button", { name: "Chat with Handbook helper" }).click();
    await page.waitForURL(/\/chat\?session=/);
    await page.context().close();
  }, 60_000);

  it("agents page: focus goes into a form that opens, back to Edit on Cancel, and on to the next card after Delete", async () => {
    const agents = (await owner.client.get(`/api/v1/workspaces/${wid}/agents`)).json().items;
    const providerId = agents[0].providerId;
    const scratch = (
      await owner.client.post(`/api/v1/workspaces/${wid}/agents`, { name: "Scratch", providerId, model: "m" })
    ).json();
    const page = await ownerPage(1280, 800);
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        return {
          tag: el?.tagName,
          label: el?.getAttribute("aria-label") ?? el?.textContent?.trim(),
          form: el?.closest("form")?.getAttribute("aria-label") ?? null,
        };
      });
    // Providers answer late, as on a slow link: the form opens on "Loading providers…", and focus still has to
    // reach its first field once the fields arrive.
    const slowProviders = /\/providers\?limit=200$/;
    await page.route(slowProviders, async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 700));
      await route.continue();
    });
    await page.goto(`${base}/w/${wid}/agents`);
    await page.getByRole("button", { name: "New agent" }).click();
    await page.getByText("Loading providers…").waitFor();
    await expect.poll(async () => (await focused()).tag, { timeout: 5_000 }).toMatch(/^(INPUT|SELECT|TEXTAREA)$/);
    await page.unroute(slowProviders);
    await page.reload();
    await page.locator(`#edit-agent-${scratch.id}`).click();
    await expect.poll(async () => (await focused()).form).toBe("Edit Scratch");
    await page.getByRole("form", { name: "Edit Scratch" }).getByRole("button", { name: "Cancel" }).click();
    await expect.poll(async () => (await focused()).label).toBe("Edit");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe(`edit-agent-${scratch.id}`);
    await page.getByRole("button", { name: "Delete Scratch" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete agent" }).click();
    await page.getByRole("heading", { name: "Scratch" }).waitFor({ state: "detached" });
    // The card and its Delete button are gone: focus is on the card that took its place, never on the page body.
    await expect.poll(async () => (await focused()).label).toBe("Chat with Handbook helper");
    await page.context().close();
  }, 60_000);

  it("audit trail shows names and filters by person", async () => {
    const page = await ownerPage(1280, 800);
    await page.goto(`${base}/w/${wid}/audit`);
    await page.getByRole("cell", { name: "Olivia Owner" }).first().waitFor();
    expect(await page.getByText(/user [0-9a-f]{8}/).count()).toBe(0);
    await page.getByLabel("Person").selectOption({ label: "Mo Member (mo@example.test)" });
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByRole("cell", { name: "Started a conversation" }).first().waitFor();
    expect(await page.getByRole("cell", { name: "Olivia Owner" }).count()).toBe(0);
    await audit(page, "audit light 1280");
    await page.context().close();
  }, 60_000);

  it("the invite page names workspace, inviter and role, pre-fills the email; the viewer lands on the gallery with no personal workspace", async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
    const page = watch(await ctx.newPage(), "invitee");
    await page.goto(`${base}/invites/${inviteToken}`);
    await page.getByRole("heading", { name: "Join Acme Research on Reef" }).waitFor();
    await page.getByText(/Olivia Owner invited nia@example\.test to Acme Research as viewer/).waitFor();
    expect(await page.getByLabel("Email").inputValue()).toBe("nia@example.test");
    await audit(page, "invite dark 390");
    await page.getByLabel("Your name").fill("Nia New");
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: /Create account and join/ }).click();
    await page.waitForURL(new RegExp(`/w/${wid}/agents`));
    await page.getByText("Answers questions about the staff handbook.").waitFor();
    expect(await page.getByRole("button", { name: /^Chat with/ }).count()).toBe(0);
    const me = await page.evaluate(() => fetch("/api/v1/me").then((r) => r.json()));
    expect(me.workspaces).toEqual([expect.objectContaining({ id: wid, role: "viewer" })]);
    // Going home lands a viewer on something they can use, not a chat they cannot.
    await page.goto(`${base}/`);
    await page.waitForURL(/\/agents$/);
    // A used link shows a plain message and nothing about the workspace.
    await page.goto(`${base}/invites/${inviteToken}`);
    await page.getByRole("heading", { name: "This invite cannot be used" }).waitFor();
    expect(await page.getByText("Acme Research").count()).toBe(0);
    await ctx.close();
  }, 60_000);

  it("had no console errors and no accessibility violations", () => {
    expect(consoleErrors).toEqual([]);
    expect(a11y).toEqual([]);
  });
});
