/**
 * Approvals and the execution trace in a real browser (Debian's Chromium)
 * against a real Reef and a real OpenClaw gateway, the LLM stand-in making the
 * exec calls. A member chats with an agent whose policy is `ask`; the
 * workspace's owner, in another browser, decides in the approvals inbox.
 * Screenshots go to artifacts/screenshots/ (a CI artifact).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { buildApp, DEFAULT_WEB_DIST } from "@reef/server";
import {
  addAgent,
  addStandInProvider,
  createBrowserWatch,
  createTestDatabase,
  type LlmStandIn,
  launchChromium,
  listenLocal,
  SCREENSHOTS_DIR as SHOTS,
  signUp,
  silentLogger,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const KEY = "sk-approvals-web-0123456789";
/** The output is not in the command's text, so seeing it proves the command ran. (OpenClaw refuses to ask about commands with shell expansions.) */
const COMMAND = "printf reef-approved-%s 42";
const OUTPUT = "reef-approved-42";
/** Reef's deadline here: time enough for the owner to answer in the inbox, short enough to wait out once. */
const TIMEOUT_SECONDS = 40;
let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;
let browser: Browser;
let wid = "";
let sid = "";
let memberPage: Page;
let ownerPage: Page;

/** `shot` saves a full-page screenshot of the screen and audits its accessibility. */
const { watch, shot, consoleErrors, a11yViolations } = createBrowserWatch();

/** A browser context signed in as the person behind `client` (cookies from an API sign-up). */
async function browserFor(
  client: { cookies: Map<string, string> },
  who: string,
  viewport?: { width: number; height: number },
) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  await context.addCookies([...client.cookies].map(([name, value]) => ({ name, value, url: base })));
  return watch(await context.newPage(), who);
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  llm = await startLlmStandIn({
    apiKey: KEY,
    models: ["stand-in-model"],
    chunkDelayMs: 20,
    reply: (text, toolResults) =>
      toolResults.length ? `The command said: ${toolResults.join(" | ")}` : `Stand-in reply to: ${text}`,
    toolCalls: (text) =>
      text.includes("disk report") ? [{ name: "exec", arguments: { command: COMMAND } }] : undefined,
  });
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig({ runtimeIdleTimeoutMinutes: 60, approvalTimeoutSeconds: TIMEOUT_SECONDS }),
    database: db.database,
    logger: silentLogger,
    webDistDir: DEFAULT_WEB_DIST,
  });
  base = await listenLocal(app);
  browser = await launchChromium();
}, 60_000);

// A failed step leaves a picture of both screens, to see what they showed.
afterEach(async (ctx) => {
  if (ctx.task.result?.state !== "fail") return;
  const name = ctx.task.name.replace(/\W+/g, "-").slice(0, 40);
  await memberPage?.screenshot({ path: join(SHOTS, `failed-${name}-member.png`), fullPage: true }).catch(() => {});
  await ownerPage?.screenshot({ path: join(SHOTS, `failed-${name}-owner.png`), fullPage: true }).catch(() => {});
});

afterAll(async () => {
  await browser?.close();
  await stopTestApp(app, db);
  await llm?.close();
}, 60_000);

describe("approvals and the execution trace in a real browser", () => {
  it("the owner sets the agent's command policy to ask; a member sees it read-only", async () => {
    const owner = await signUp(app, { name: "Ada Owner" });
    wid = owner.workspaceId;
    const providerId = await addStandInProvider(owner.client, wid, llm, KEY);
    const agentId = await addAgent(owner.client, wid, { name: "Ada", providerId, model: "stand-in-model" });
    const member = await signUp(app, { name: "Mo Member" });
    const invite = await owner.client.post(`/api/v1/workspaces/${wid}/invites`, {
      email: member.email,
      role: "member",
    });
    expect((await member.client.post(`/api/v1/invites/${invite.json().token}/accept`)).statusCode).toBe(200);
    const session = await member.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId });
    expect(session.statusCode).toBe(201);
    sid = session.json().id;

    ownerPage = await browserFor(owner.client, "owner");
    memberPage = await browserFor(member.client, "member");

    // The owner grants the shell; the policy choice appears with it, and the allowlist validates as you type.
    await ownerPage.goto(`${base}/w/${wid}/agents`);
    await ownerPage.getByRole("button", { name: "Edit" }).click();
    expect(await ownerPage.getByRole("radio", { name: "Ask every time (unless allowlisted)" }).count()).toBe(0);
    await ownerPage.getByLabel(/Shell: run commands/).check();
    const ask = ownerPage.getByRole("radio", { name: "Ask every time (unless allowlisted)" });
    expect(await ask.isChecked()).toBe(true);
    await ownerPage.getByRole("radio", { name: "Run any command" }).check();
    expect(await ownerPage.getByLabel("Add a command pattern").count()).toBe(0);
    await ask.check();
    const add = ownerPage.getByLabel("Add a command pattern");
    await ownerPage.getByRole("button", { name: "Add", exact: true }).click();
    await ownerPage.getByText("Type a command or a pattern first").waitFor();
    await add.fill("ls");
    await add.press("Enter");
    await add.fill("ls");
    await add.press("Enter");
    await ownerPage.getByText("“ls” is already on the allowlist.").waitFor();
    await add.fill("git status");
    await ownerPage.getByRole("button", { name: "Add", exact: true }).click();
    await ownerPage.getByRole("button", { name: "Remove git status" }).click();
    await shot(ownerPage, "20-agent-exec-policy");
    await ownerPage.getByRole("button", { name: "Save" }).click();
    await ownerPage.getByText("Shell commands:").waitFor();
    const saved = await owner.client.get(`/api/v1/workspaces/${wid}/agents/${agentId}`);
    expect(saved.json()).toMatchObject({ tools: ["shell"], execPolicy: "ask", execAllowlist: ["ls"] });

    // A member reads the policy but has nothing to change it with.
    await memberPage.goto(`${base}/w/${wid}/agents`);
    await memberPage.getByText("Ask every time (unless allowlisted)").waitFor();
    expect(await memberPage.getByRole("button", { name: "Edit" }).count()).toBe(0);
    expect(await memberPage.getByRole("radio").count()).toBe(0);
  }, 60_000);

  it("a member's command waits; the owner approves it in the inbox; the output reaches the member's chat", async () => {
    await memberPage.goto(`${base}/w/${wid}/chat?session=${sid}`);
    await memberPage.getByLabel("Message").fill("please make the disk report");
    await memberPage.getByLabel("Message").press("Enter");
    const card = memberPage.getByRole("article", { name: "The agent wants to run a command" });
    await card.waitFor({ timeout: 120_000 });
    expect(await card.locator("pre code").innerText()).toBe(COMMAND);
    expect(await card.innerText()).toMatch(/Asked for\s+you/);
    expect(await card.innerText()).toMatch(/then it is denied automatically/);
    // While it waits, the trace shows the step running.
    await memberPage.getByText(/Using a tool… \(1 running\)/).waitFor();
    await shot(memberPage, "21-chat-approval-waiting");

    // The owner, in another browser, finds it in the inbox (the navigation counts it) and approves it.
    await ownerPage.goto(`${base}/w/${wid}/approvals`);
    await ownerPage.getByRole("link", { name: /Approvals 1 waiting/ }).waitFor({ timeout: 15_000 });
    const row = ownerPage.getByRole("article", { name: "Ada wants to run a command" });
    expect(await row.locator("pre code").innerText()).toBe(COMMAND);
    await row.getByText("Mo Member").waitFor();
    await shot(ownerPage, "22-inbox-pending");
    await row.getByRole("button", { name: "Approve once" }).click();
    await row.getByText("Approved by you").waitFor();

    // The member's card says who approved it, and the command's output reaches the answer.
    await card.getByText("Approved by Ada Owner").waitFor({ timeout: 30_000 });
    await memberPage.getByText(OUTPUT).first().waitFor({ timeout: 60_000 });
    await memberPage.getByRole("button", { name: "Send" }).waitFor({ timeout: 30_000 });
    const answer = memberPage.getByRole("article", { name: "Agent said" }).last();
    await answer.getByText("Used 1 tool").waitFor({ timeout: 30_000 });
    await answer.getByText("Used 1 tool").click();
    const step = answer.getByRole("listitem").first();
    expect(await step.locator("summary").innerText()).toMatch(/done\s+exec\s+printf reef-approved/);
    await step.locator("summary").click();
    await step.locator("pre", { hasText: OUTPUT }).waitFor();
    await shot(memberPage, "23-chat-trace");

    // The trace comes back from history after a reload.
    await memberPage.reload();
    const stored = memberPage.getByRole("article", { name: "Agent said" }).last();
    await stored.getByText("Used 1 tool").click();
    await stored.getByRole("listitem").first().locator("summary").click();
    await stored.locator("pre", { hasText: OUTPUT }).waitFor();
  }, 240_000);

  it("the person chatting denies their own request, and the trace says it was denied", async () => {
    // The last answer has ended (Stop turned back into Send).
    await memberPage.getByRole("button", { name: "Send" }).waitFor({ timeout: 30_000 });
    await memberPage.getByLabel("Message").fill("make the disk report again");
    await memberPage.getByLabel("Message").press("Enter");
    const card = memberPage.getByRole("article", { name: "The agent wants to run a command" }).last();
    await card.getByRole("button", { name: "Deny" }).waitFor({ timeout: 60_000 });
    // Only admins may allow a command for good.
    expect(await card.getByRole("button", { name: "Always allow this command" }).count()).toBe(0);
    await card.getByRole("button", { name: "Deny" }).click();
    await card.getByText("Denied by you").waitFor();
    // Keyboard focus stays on the card's outcome, not lost with the buttons.
    await expect
      .poll(() => memberPage.evaluate(() => document.activeElement?.textContent ?? ""))
      .toMatch(/Denied by you/);
    const answer = memberPage.getByRole("article", { name: "Agent said" }).last();
    await answer.getByText("Used 1 tool").waitFor({ timeout: 60_000 });
    await answer.getByText("Used 1 tool").click();
    await answer.getByText(/denied\s+exec/).waitFor();
    // The agent got the denial as the tool's result, and says so.
    await expect.poll(() => answer.locator("p").first().innerText(), { timeout: 30_000 }).toMatch(/denied/i);
    expect(await answer.innerText()).not.toContain(OUTPUT);
    await shot(memberPage, "24-chat-denied");
  }, 120_000);

  it("nobody answers a third request: it is denied when the time is up, and the card says so", async () => {
    // The last answer has ended (Stop turned back into Send).
    await memberPage.getByRole("button", { name: "Send" }).waitFor({ timeout: 30_000 });
    await memberPage.getByLabel("Message").fill("one more disk report");
    await memberPage.getByLabel("Message").press("Enter");
    const card = memberPage.getByRole("article", { name: "The agent wants to run a command" }).last();
    await card.getByRole("button", { name: "Deny" }).waitFor({ timeout: 60_000 });
    await card.getByText("Timed out — denied").waitFor({ timeout: (TIMEOUT_SECONDS + 30) * 1000 });
    expect(await card.getByRole("button").count()).toBe(0);
    const answer = memberPage.getByRole("article", { name: "Agent said" }).last();
    await answer.getByText("Used 1 tool").waitFor({ timeout: 60_000 });
    expect(await answer.innerText()).not.toContain(OUTPUT);
  }, 180_000);

  it("the inbox's history lists all three outcomes, on a phone and in dark mode too", async () => {
    await ownerPage.getByRole("tab", { name: "History" }).click();
    await ownerPage.getByText("Denied by Mo Member").waitFor();
    await ownerPage.getByText("Approved by you").waitFor();
    await ownerPage.getByText("Timed out — denied").waitFor();
    await shot(ownerPage, "25-inbox-history");
    await ownerPage.getByRole("tab", { name: "History" }).press("ArrowLeft");
    await ownerPage.getByText("Nothing is waiting for a decision.").waitFor();
    // Nothing waits: the navigation and the tab count nothing any more.
    await ownerPage.getByRole("link", { name: "Approvals", exact: true }).waitFor();
    expect(await ownerPage.getByRole("tab", { name: "Pending", exact: true }).count()).toBe(1);
    await ownerPage.setViewportSize({ width: 390, height: 844 });
    await ownerPage.emulateMedia({ colorScheme: "dark" });
    await shot(ownerPage, "26-inbox-empty-phone-dark");
    await memberPage.setViewportSize({ width: 390, height: 844 });
    await memberPage.emulateMedia({ colorScheme: "dark" });
    await shot(memberPage, "27-chat-trace-phone-dark");
  }, 60_000);

  it("had no console errors and no accessibility violations", () => {
    expect(consoleErrors).toEqual([]);
    expect(a11yViolations).toEqual([]);
  });
});
