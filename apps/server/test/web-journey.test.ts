/**
 * Browser tests: Debian's Chromium (playwright-core) against a real Reef (real
 * database, real OpenClaw gateway, the local LLM stand-in), through the built
 * web app. Screenshots go to artifacts/screenshots/ (a CI artifact).
 */
import { mkdirSync } from "node:fs";
import { buildApp, DEFAULT_WEB_DIST } from "@reef/server";
import {
  createBrowserWatch,
  createTestDatabase,
  type LlmStandIn,
  launchChromium,
  listenLocal,
  SCREENSHOTS_DIR as SHOTS,
  type SmtpStandIn,
  silentLogger,
  startLlmStandIn,
  startSmtpStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const KEY = "sk-web-journey-0123456789";
let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;
let browser: Browser;
/** The organisation's mail relay, stood in for by a local SMTP server. */
let smtp: SmtpStandIn;

/**
 * Console errors and uncaught page errors, per page: the journeys must have none. What axe-core finds on
 * each screen the journeys pass through. `shot` saves a full-page screenshot and audits the screen.
 */
const { watch, shot, audit, consoleErrors, a11yViolations } = createBrowserWatch({
  // A 401 the app handles (session ended) is logged by the browser as a failed resource; that is expected.
  ignore: /status of 401/,
});

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  smtp = await startSmtpStandIn();
  llm = await startLlmStandIn({
    apiKey: KEY,
    models: ["stand-in-model"],
    chunkDelayMs: 30,
    reply: (text) =>
      text.includes("code")
        ? "Here is **some code**:\n\n```js\nconst answer = 42;\n```\n"
        : `Stand-in reply to: ${text}`,
  });
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig({ runtimeIdleTimeoutMinutes: 60 }),
    database: db.database,
    logger: silentLogger,
    webDistDir: DEFAULT_WEB_DIST,
  });
  base = await listenLocal(app);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stopTestApp(app, db);
  await llm.close();
  await smtp?.close();
}, 60_000);

let ownerPage: Page;
let workspaceUrl: string;

describe("the web app in a real browser", () => {
  it("a newcomer signs up, connects a provider, creates an agent and chats, without a terminal", async () => {
    const started = performance.now();
    ownerPage = watch(await (await browser.newContext()).newPage(), "owner");
    const page = ownerPage;
    await page.goto(`${base}/signup`);
    await shot(page, "01-sign-up");
    await page.getByLabel("Your name").fill("Ada Owner");
    await page.getByLabel("Email").fill("ada@example.test");
    await page.getByLabel("Password").fill("short");
    await expect.poll(() => page.getByText("At least 12 characters.").isVisible()).toBe(true);
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: "Create account" }).click();

    // The very first account runs this Reef: the platform wizard comes first.
    await page.waitForURL(/\/admin\/setup$/);
    expect(await page.getByLabel("Public URL").inputValue()).toBe(base);
    await page.getByLabel("Public URL").fill("reef.example");
    await page.getByText("This is not a URL").waitFor();
    await page.getByLabel("Public URL").fill(base);
    await shot(page, "01b-platform-setup");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByLabel("Mail server").fill("127.0.0.1");
    await page.getByLabel("Port").fill(String(smtp.port));
    await page.getByLabel("Encryption").selectOption("none");
    await page.getByLabel("Send as").fill("Reef <reef@example.test>");
    await page.getByRole("button", { name: "Send a test email to me" }).click();
    await page.getByText("✓ Sent to ada@example.test").waitFor();
    expect(smtp.received.at(-1)?.to).toEqual(["ada@example.test"]);
    // Leaving and coming back resumes at the same step.
    await page.reload();
    await page.getByRole("heading", { name: "Email (optional)" }).waitFor();
    await page.getByLabel("Mail server").fill("127.0.0.1");
    await page.getByLabel("Port").fill(String(smtp.port));
    await page.getByLabel("Encryption").selectOption("none");
    await page.getByLabel("Send as").fill("Reef <reef@example.test>");
    await page.getByRole("button", { name: "Save and continue" }).click();
    await page.getByLabel(/Stop an unused workspace after/).fill("30");
    await shot(page, "01c-platform-setup-idle");
    await page.getByRole("button", { name: "Finish", exact: true }).click();
    await page.waitForURL(/\/w\/[0-9a-f-]+\/setup$/);
    workspaceUrl = page.url().replace(/\/setup$/, "");

    // Step 1: a provider, with validation as you type.
    await page.getByLabel("Provider", { exact: true }).selectOption("openai-compatible");
    await page.getByLabel("Base URL").fill("not a url");
    await expect.poll(() => page.getByText("This is not a URL").isVisible()).toBe(true);
    await page.getByLabel("Base URL").fill(llm.baseUrl);
    await page.getByLabel(/API key/).fill(KEY);
    await shot(page, "02-setup-provider");
    await page.getByRole("button", { name: "Add provider" }).click();
    // Saving tests the connection at once and says one truthful thing about it.
    await page.getByText(/✓ Connected to .+ \(1 model\)/).waitFor();

    // Step 2: an agent on one of the provider's models.
    await page.getByLabel("Agent name").fill("Ada");
    await expect(await page.getByLabel("Model", { exact: true }).inputValue()).toBe("stand-in-model");
    await page.getByLabel(/Personality/).fill("You are Ada, a friendly helper.");
    await shot(page, "03-setup-agent");
    await page.getByRole("button", { name: "Create agent" }).click();

    // Step 3: chat; the workspace wakes, the answer streams in.
    await page.getByRole("button", { name: "Start chatting with Ada" }).click();
    await page.waitForURL(/\/chat\?session=/);
    await page.getByLabel("Message").fill("hello Ada");
    await page.getByLabel("Message").press("Enter");
    await page
      .getByText(/Waking your workspace…/)
      .first()
      .waitFor({ timeout: 30_000 });
    await shot(page, "04-chat-waking");
    await page.getByText("Stand-in reply to: hello Ada").waitFor({ timeout: 120_000 });
    const seconds = (performance.now() - started) / 1000;
    console.info(`web journey: signed up and chatting in ${seconds.toFixed(1)} s (target: under 120 s)`);
    // Answers render as Markdown, code blocks included.
    await page.getByLabel("Message").fill("show me some code");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("pre code", { hasText: "const answer = 42;" }).waitFor();
    expect(await page.locator("strong", { hasText: "some code" }).count()).toBe(1);
    await shot(page, "05-chat");
    // The conversation is listed, titled by its first message, and survives a reload.
    await page.reload();
    await page.getByText("Stand-in reply to: hello Ada").waitFor();
    await expect(await page.getByRole("link", { name: "hello Ada" }).count()).toBe(1);

    for (const [name, path] of [
      ["06-agents", "/agents"],
      ["07-usage", "/usage"],
      ["07-audit", "/audit"],
      ["07-providers", "/providers"],
    ] as const) {
      await page.goto(`${workspaceUrl}${path}`);
      await page.getByRole("heading", { level: 1 }).waitFor();
      if (path === "/usage") await page.getByRole("img", { name: "Messages per day" }).waitFor();
      await shot(page, name);
    }
    expect(await page.getByText(`••••${KEY.slice(-4)}`).isVisible()).toBe(true);
    expect(await page.content()).not.toContain(KEY);
    // Edit forms validate as you type; the old key is never shown.
    await page.getByRole("button", { name: "Edit" }).click();
    await page.getByLabel("New API key").fill("short");
    await page.getByText("That looks too short to be an API key.").waitFor();
    // A new base URL needs the key again, and the form says why.
    const edit = page.getByRole("form", { name: /^Edit / });
    await edit.getByLabel(/API key/).fill("");
    await edit.getByLabel("Base URL").fill("https://llm.example.com/v1");
    await edit.getByText(/sends the stored key only to the URL it was entered for/).waitFor();
    expect(await edit.getByRole("button", { name: "Save" }).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.goto(`${workspaceUrl}/agents`);
    await page.getByRole("button", { name: "Edit" }).click();
    await page.getByLabel(/Temperature/).fill("3");
    await page.getByText("Between 0 and 2.").waitFor();
    await page.getByLabel(/Temperature/).fill("0.3");
    await page.getByLabel("Personality and instructions").fill("You are Ada, and you answer tersely.");
    await page.getByRole("button", { name: "Save" }).click();
    // The workspace is running and the temperature goes into its gateway's config: people are told before it restarts.
    const restart = page.getByRole("dialog", { name: /restart/ });
    await restart.getByText(/Saving restarts the workspace: people chatting now wait/).waitFor();
    await shot(page, "06-agent-restart-warning");
    await restart.getByRole("button", { name: "Save and restart" }).click();
    await page.getByText("You are Ada, and you answer tersely.").waitFor();
    // An owner grants a tool deliberately; every agent starts with none.
    await page.getByRole("button", { name: "Edit" }).click();
    expect(await page.getByLabel(/Shell: run commands/).isChecked()).toBe(false);
    await page.getByLabel(/Web: search/).check();
    await page.getByRole("button", { name: "Save" }).click();
    await page
      .getByRole("dialog", { name: /restart/ })
      .getByRole("button", { name: "Save and restart" })
      .click();
    await page.getByText(/tools: web$/).waitFor();
  }, 180_000);

  it("a viewer sees no edit controls, and loses access at once when an operator deactivates them", async () => {
    // The owner invites a viewer from the Members screen; the wizard set up email, so the link goes by mail.
    await ownerPage.getByRole("link", { name: "Members" }).click();
    await ownerPage.getByLabel("Their email").fill("vic@example.test");
    await ownerPage.getByLabel("Role", { exact: true }).selectOption("viewer");
    await ownerPage.getByRole("button", { name: "Invite" }).click();
    await ownerPage.getByText("Invitation sent by email.").waitFor();
    const mail = smtp.received.find((m) => m.to.includes("vic@example.test"));
    const link = (mail?.raw ?? "").replace(/=\r?\n/g, "").match(/(https?:\/\/\S+\/invites\/(ri_[A-Za-z0-9_-]+))/);
    // The link points at the public URL the wizard saved.
    expect(link?.[1]?.startsWith(`${base}/invites/`)).toBe(true);
    const invite = { token: link?.[2] ?? "" };
    expect(invite.token.length).toBeGreaterThan(10);
    await shot(ownerPage, "08-members");

    const viewer = watch(
      await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage(),
      "viewer",
    );
    await viewer.goto(`${base}/invites/${invite.token}`);
    // The invite page names who invited whom, to what, as what; the invited email is filled in (H4).
    await viewer.getByText(/invited vic@example\.test to .* as viewer/).waitFor();
    expect(await viewer.getByLabel("Email").inputValue()).toBe("vic@example.test");
    await viewer.getByLabel("Your name").fill("Vic Viewer");
    await viewer.getByLabel("Password").fill("correct horse battery");
    await viewer.getByRole("button", { name: /Create account and join/ }).click();
    // Viewers cannot chat: they land on the agent gallery.
    await viewer.waitForURL(/\/agents/);
    await viewer.getByRole("heading", { name: "Ada" }).waitFor();
    await shot(viewer, "09-viewer-phone");
    expect(await viewer.getByRole("button", { name: /^Chat with/ }).count()).toBe(0);
    expect(await viewer.getByRole("button", { name: "New agent" }).count()).toBe(0);
    expect(await viewer.getByRole("button", { name: "Delete" }).count()).toBe(0);
    expect(await viewer.getByRole("button", { name: "Edit" }).count()).toBe(0);
    await viewer.getByRole("button", { name: "Menu" }).click();
    await viewer.getByRole("link", { name: "Providers" }).click();
    await viewer.getByRole("heading", { name: "Providers" }).waitFor();
    expect(await viewer.getByRole("button", { name: "Add provider" }).count()).toBe(0);
    expect(await viewer.getByRole("button", { name: "Test connection" }).count()).toBe(0);

    // The operator (the first account) deactivates the viewer from the Admin screen.
    await ownerPage.getByRole("link", { name: "Admin" }).click();
    const row = ownerPage.getByRole("row", { name: /vic@example\.test/ });
    await row.getByRole("button", { name: "Deactivate" }).click();
    await ownerPage.getByRole("dialog").getByRole("button", { name: "Deactivate user" }).click();
    await row.getByText("deactivated").waitFor();
    // Operators cannot deactivate themselves: no button on their own row.
    expect(
      await ownerPage
        .getByRole("row", { name: /ada@example\.test/ })
        .getByRole("button")
        .count(),
    ).toBe(0);
    await shot(ownerPage, "10-admin");
    // Operators stop a workspace's gateway from the runtimes table.
    const runtimeRow = ownerPage.getByRole("row", { name: /Ada Owner's workspace running/ });
    await runtimeRow.getByRole("button", { name: "Stop" }).click();
    await ownerPage.getByRole("dialog").getByRole("button", { name: "Stop runtime" }).click();
    await ownerPage.getByRole("row", { name: /Ada Owner's workspace stopped/ }).waitFor({ timeout: 30_000 });
    // The viewer's open page: the next thing they do sends them to sign in, told why. The shell's own poll
    // (pending approvals, every 10 s) may get there first on a slow run, so the clicks may find the page gone.
    const ended = viewer.getByText("Your session has ended. Sign in again to carry on.");
    if (!(await ended.isVisible())) {
      // At 390 px the navigation is behind the Menu button.
      await viewer
        .getByRole("button", { name: "Menu" })
        .click({ timeout: 5_000 })
        .catch(() => undefined);
      await viewer
        .getByRole("link", { name: "Agents" })
        .click({ timeout: 5_000 })
        .catch(() => undefined);
    }
    await ended.waitFor({ timeout: 15_000 });
    expect(new URL(viewer.url()).pathname).toBe("/signin");
    await shot(viewer, "11-session-ended");
  }, 60_000);

  it("had no console errors in any journey", () => {
    expect(consoleErrors).toEqual([]);
  });

  it("every screen passes an automated accessibility audit (axe-core, WCAG 2.1 AA), in light and dark mode", async () => {
    await ownerPage.emulateMedia({ colorScheme: "dark" });
    for (const path of ["/chat", "/agents", "/providers", "/members", "/approvals"]) {
      await ownerPage.goto(`${workspaceUrl}${path}`);
      await ownerPage.getByRole("heading", { level: 1 }).waitFor();
      await audit(ownerPage, `dark ${path}`);
    }
    await shot(ownerPage, "12-dark-mode");
    expect(a11yViolations).toEqual([]);
  }, 60_000);
});
