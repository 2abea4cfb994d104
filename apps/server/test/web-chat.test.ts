/**
 * The chat in a real browser (Debian's Chromium) against a real Reef, a real
 * OpenClaw gateway and the LLM stand-in streaming slowly enough to act mid-answer:
 * the fixed layout at desktop and phone width, answers that survive a reload and
 * a change of conversation, Markdown, conversation management, a provider going
 * down and coming back, and axe in light and dark. One workspace, one gateway start.
 */
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
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

const KEY = "sk-web-chat-0123456789";
const LONG = (tag: string) => `${Array.from({ length: 90 }, (_, i) => `${tag}${i}`).join(" ")} END-OF-${tag}`;
let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;
let browser: Browser;
let wid = "";
let providerId = "";
let owner: Awaited<ReturnType<typeof signUp>>;
let page: Page;
const { watch, shot, consoleErrors, a11yViolations } = createBrowserWatch();
const audit = (p: Page, name: string) => shot(p, name, { fullPage: false });

async function browserFor(viewport: { width: number; height: number }, who: string) {
  const context = await browser.newContext({ viewport });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await context.addCookies([...owner.client.cookies].map(([name, value]) => ({ name, value, url: base })));
  return watch(await context.newPage(), who);
}

/** The page does not scroll as a document; the composer is in view; nothing scrolls sideways. */
async function layoutOf(p: Page) {
  return p.evaluate(() => {
    const doc = document.scrollingElement as HTMLElement;
    const box = document.querySelector(".composer")?.getBoundingClientRect();
    const head = document.querySelector(".chat-head")?.getBoundingClientRect();
    const pane = document.querySelector(".messages") as HTMLElement | null;
    return {
      docFits: doc.scrollHeight <= innerHeight + 1,
      noSideways: doc.scrollWidth <= innerWidth + 1,
      composerInView: !!box && box.top >= 0 && box.bottom <= innerHeight + 1,
      headInView: !!head && head.top >= 0 && head.bottom <= innerHeight,
      paneScrolls: !!pane && pane.scrollHeight > pane.clientHeight,
    };
  });
}

/** A TCP port nothing listens on: the provider "taken down". */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const answers = () => page.locator(".msg-assistant");

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  llm = await startLlmStandIn({
    apiKey: KEY,
    models: ["stand-in-model"],
    chunkDelayMs: 45,
    reply: (text) => {
      if (text.includes("table")) {
        return "| Fruit | Count |\n| --- | --- |\n| apple | 3 |\n\n- [x] done\n- [ ] ~~todo~~\n\n```js\nconst answer = 42;\nfunction twice(x) { return x * 2; }\n```\n";
      }
      const long = text.match(/long (\w+)/);
      if (long?.[1]) return LONG(long[1]);
      return `Stand-in reply to: ${text}`;
    },
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
  owner = await signUp(app, { name: "Ada Owner" });
  wid = owner.workspaceId;
  providerId = await addStandInProvider(owner.client, wid, llm, KEY);
  for (const [name, description, starterPrompts] of [
    ["Ada", "Answers questions about the team's work.", ["Show me a table", "Tell me a long story"]],
    ["Bo", "Writes first drafts.", ["Draft an email"]],
  ] as const) {
    await addAgent(owner.client, wid, { name, providerId, model: "stand-in-model", description, starterPrompts });
  }
  page = await browserFor({ width: 1280, height: 800 }, "desktop");
}, 60_000);

// A failed step leaves a picture of the screen, to see what it showed.
afterEach(async (ctx) => {
  if (ctx.task.result?.state === "pass") return;
  const name = ctx.task.name.replace(/\W+/g, "-").slice(0, 40);
  await page?.screenshot({ path: join(SHOTS, `failed-chat-${name}.png`) }).catch(() => {});
});

afterAll(async () => {
  await browser?.close();
  await stopTestApp(app, db);
  await llm?.close();
}, 60_000);

describe("the chat in a real browser", () => {
  it("starts a chat from the composer; Markdown tables, highlighted code with copy, line breaks kept", async () => {
    await page.goto(`${base}/w/${wid}/chat`);
    // A new chat: the agent is chosen in the composer; its description and starters are offered.
    await page.getByLabel("Agent", { exact: true }).waitFor();
    await page.getByLabel("Agent", { exact: true }).selectOption({ label: "Bo" });
    await page.getByText("Writes first drafts.").waitFor();
    await page.getByLabel("Agent", { exact: true }).selectOption({ label: "Ada" });
    await page.getByText("Answers questions about the team's work.").waitFor();
    await page.getByRole("button", { name: "Show me a table" }).waitFor();
    await page.getByLabel("Message").fill("show me a table\nsecond line");
    await page.getByLabel("Message").press("Enter");
    await page.waitForURL(/session=[0-9a-f-]{36}/);
    // Focus goes to the composer of the conversation just created.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("composer-text");
    await page.locator(".msg-assistant table").waitFor({ timeout: 120_000 });
    await page.locator(".msg-assistant pre code .hljs-keyword").first().waitFor();
    expect(await page.locator(".msg-assistant del").count()).toBe(1);
    expect(await page.locator('.msg-assistant input[type="checkbox"]').count()).toBe(2);
    // Copy once the answer has ended: until then the streamed message can be re-rendered from the stored one,
    // which resets the button's "Copied" (shown for 2 s) before a loaded machine gets to look at it.
    await page.getByRole("button", { name: "Send", exact: true }).waitFor({ timeout: 60_000 });
    const block = page.locator(".code-block");
    await block.getByRole("button", { name: /Copy/ }).click();
    await block.getByText(/Copied|Copy failed/).waitFor();
    expect(await block.getByRole("button", { name: /Copy/ }).innerText()).not.toContain("failed");
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toContain("const answer = 42;");
    const mine = page.locator(".msg-user .msg-text").first();
    expect(await mine.evaluate((el) => (el as HTMLElement).innerText)).toBe("show me a table\nsecond line");
    await audit(page, "30-chat-markdown");
  }, 180_000);

  it("keeps the page fixed: the pane scrolls, the header and composer stay in view (1280x800)", async () => {
    await page.getByLabel("Message").fill("long alpha");
    await page.getByLabel("Message").press("Enter");
    await page.getByText("END-OF-alpha").waitFor({ timeout: 60_000 });
    // The answer has ended once Send is back (until then the composer says an answer is arriving).
    await page.getByRole("button", { name: "Send", exact: true }).waitFor();
    const layout = await layoutOf(page);
    expect(layout).toEqual({
      docFits: true,
      noSideways: true,
      composerInView: true,
      headInView: true,
      paneScrolls: true,
    });
  }, 90_000);

  it("reloading mid-answer shows the answer continue live with its Stop button, never 'Stopped'", async () => {
    await page.getByLabel("Message").fill("long bravo");
    await page.getByLabel("Message").press("Enter");
    await page.getByText("bravo5", { exact: false }).waitFor({ timeout: 30_000 });
    await page.reload();
    // Re-attached: the answer so far, then the rest, live; the composer says why it cannot send.
    await page.getByRole("button", { name: "Stop" }).waitFor({ timeout: 10_000 });
    await page.getByText(/An answer is arriving in this conversation/).waitFor();
    await page.getByText("END-OF-bravo").waitFor({ timeout: 30_000 });
    expect(await page.getByText("Stopped.").count()).toBe(0);
    await page.getByRole("button", { name: "Send", exact: true }).waitFor();
  }, 90_000);

  it("Stop stops the answer, says Stopped, and gives focus back to the composer", async () => {
    await page.getByLabel("Message").fill("long charlie");
    await page.getByLabel("Message").press("Enter");
    await page.getByText("charlie3", { exact: false }).waitFor({ timeout: 30_000 });
    await page.getByRole("button", { name: "Stop" }).click();
    await page.getByText("Stopped.").waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("composer-text");
    expect(await page.getByText("END-OF-charlie").count()).toBe(0);
  }, 60_000);

  it("switching conversation while an answer streams keeps each answer in its own conversation", async () => {
    const first = page.url();
    await page.getByLabel("Message").fill("long delta");
    await page.getByLabel("Message").press("Enter");
    await page.getByText("delta3", { exact: false }).waitFor({ timeout: 30_000 });
    // A second conversation with the other agent, while the first answer still arrives.
    await page.getByRole("button", { name: "New chat" }).click();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("composer-text");
    await page.getByLabel("Agent", { exact: true }).selectOption({ label: "Bo" });
    await page.getByLabel("Message").fill("hello echo");
    await page.getByLabel("Message").press("Enter");
    await page.getByText("Stand-in reply to: hello echo").waitFor({ timeout: 30_000 });
    expect(await page.locator(".messages").getByText("delta", { exact: false }).count()).toBe(0);
    await page.goto(first);
    await page.getByText("END-OF-delta").waitFor({ timeout: 30_000 });
    expect(await page.locator(".messages").getByText("hello echo").count()).toBe(0);
    // The rest happens in the second conversation.
    await page.getByRole("link", { name: /hello echo/ }).click();
    await page.getByText("Stand-in reply to: hello echo").waitFor();
  }, 90_000);

  it("regenerates the last answer and edits and resends a message", async () => {
    await page.getByLabel("Message").fill("first try");
    await page.getByLabel("Message").press("Enter");
    await page.locator(".msg-assistant", { hasText: "first try" }).waitFor({ timeout: 30_000 });
    const before = llm.requests.length;
    await answers().last().getByRole("button", { name: "Regenerate" }).click();
    await expect.poll(() => llm.requests.length, { timeout: 30_000 }).toBeGreaterThan(before);
    await page.getByRole("button", { name: "Send", exact: true }).waitFor({ timeout: 30_000 });
    // One question, one (new) answer: the old pair was replaced, not added to.
    expect(await page.locator(".msg-user", { hasText: "first try" }).count()).toBe(1);
    expect(await page.locator(".msg-assistant", { hasText: "first try" }).count()).toBe(1);
    await page.locator(".msg-user", { hasText: "first try" }).getByRole("button", { name: "Edit" }).click();
    await page.getByLabel("Edit your message").fill("second try");
    await page.getByRole("button", { name: "Send edited message" }).click();
    await page.locator(".msg-assistant", { hasText: "second try" }).waitFor({ timeout: 30_000 });
    expect(await page.locator(".messages").getByText("first try").count()).toBe(0);
  }, 90_000);

  it("renames, pins, searches and deletes conversations", async () => {
    await page.getByRole("button", { name: "Rename" }).click();
    await page.getByLabel("Conversation name").fill("Quarterly numbers");
    await page.getByLabel("Conversation name").press("Enter");
    await page.getByRole("heading", { level: 1, name: "Quarterly numbers" }).waitFor();
    expect(await page.title()).toMatch(/^Quarterly numbers · /);
    await page.getByRole("button", { name: "Pin" }).click();
    const pinned = page.getByRole("region", { name: "Pinned" });
    await pinned.getByRole("link", { name: "Quarterly numbers" }).waitFor();
    await page.getByLabel("Search conversations").fill("quarterly");
    await expect.poll(() => page.locator(".sessions-list a").count()).toBe(1);
    await page.getByLabel("Search conversations").fill("");
    await expect.poll(() => page.locator(".sessions-list a").count()).toBeGreaterThan(1);
    await page.getByRole("button", { name: "Delete" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText(/Deletes this conversation and its \d+ messages/).waitFor();
    await audit(page, "31-chat-delete-confirm");
    await dialog.getByRole("button", { name: "Delete conversation" }).click();
    await page.waitForURL(/session=new/);
    expect(await page.getByRole("link", { name: "Quarterly numbers" }).count()).toBe(0);
  }, 60_000);

  it("a provider that is down gives a plain sentence and a Retry that works once it is back", async () => {
    const down = await owner.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, {
      baseUrl: `http://127.0.0.1:${await closedPort()}/v1`,
      apiKey: KEY,
    });
    expect(down.statusCode, down.body).toBe(200);
    await page.getByLabel("Message").fill("are you there");
    await page.getByLabel("Message").press("Enter");
    const started = Date.now();
    const alert = page.locator(".chat-error");
    await alert.waitFor({ timeout: 60_000 });
    console.info(`provider down: told in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(await alert.innerText()).toMatch(/provider/i);
    expect(await alert.innerText()).not.toMatch(/upstream|ECONNREFUSED|fetch failed/);
    await alert.getByRole("link", { name: "Check the provider" }).waitFor();
    await audit(page, "32-chat-provider-down");
    const up = await owner.client.patch(`/api/v1/workspaces/${wid}/providers/${providerId}`, {
      baseUrl: llm.baseUrl,
      apiKey: KEY,
    });
    expect(up.statusCode, up.body).toBe(200);
    await alert.getByRole("button", { name: "Retry" }).click();
    await page.getByText("Stand-in reply to: are you there").waitFor({ timeout: 60_000 });
    expect(await page.locator(".chat-error").count()).toBe(0);
  }, 120_000);

  it("on a phone (390x844): fixed layout, the conversation drawer, no sideways scrolling", async () => {
    const phone = await browserFor({ width: 390, height: 844 }, "phone");
    await phone.goto(page.url().replace(/\?.*$/, ""));
    // Hidden in the closed drawer (so not in the accessibility tree): found by its place, then checked for visibility.
    const drawerLink = phone.locator(".sessions-list a", { hasText: "show me a table" }).first();
    await drawerLink.waitFor({ state: "attached" });
    const toggle = phone.getByRole("button", { name: "Conversations" });
    expect(await drawerLink.isVisible()).toBe(false);
    await toggle.click();
    await drawerLink.waitFor();
    await audit(phone, "33-chat-phone-drawer");
    await phone.keyboard.press("Escape");
    await expect.poll(() => drawerLink.isVisible()).toBe(false);
    expect(await phone.evaluate(() => document.activeElement?.textContent)).toBe("Conversations");
    await toggle.click();
    await drawerLink.click();
    await phone.getByText("END-OF-alpha").waitFor();
    // Picking a conversation closes the drawer (it slides away).
    await expect.poll(() => drawerLink.isVisible()).toBe(false);
    expect(await layoutOf(phone)).toEqual({
      docFits: true,
      noSideways: true,
      composerInView: true,
      headInView: true,
      paneScrolls: true,
    });
    await audit(phone, "34-chat-phone");
    await phone.emulateMedia({ colorScheme: "dark" });
    await audit(phone, "35-chat-phone-dark");
    await phone.context().close();
  }, 60_000);

  // Last but one: it leaves the page on a conversation whose history the agent would be re-told on a retry.
  it("a 250-message conversation opens at its end, and earlier messages load on request", async () => {
    const agentId = (await owner.client.get(`/api/v1/workspaces/${wid}/agents`)).json().items[0].id;
    const session = (
      await owner.client.post(`/api/v1/workspaces/${wid}/sessions`, { agentId, title: "A long history" })
    ).json();
    // Arranged in the database (unsealed, as rows written before sealing were): 250 turns' worth of messages.
    await db.owner.query(
      `insert into chat_messages (workspace_id, session_id, role, content, sealed, completed_at)
       select $1, $2, case when g % 2 = 1 then 'user' else 'assistant' end, 'history line ' || g, false, now()
         from generate_series(1, 250) g`,
      [wid, session.id],
    );
    await page.goto(`${base}/w/${wid}/chat?session=${session.id}`);
    await page.getByText("history line 250", { exact: true }).waitFor();
    expect(await page.getByText("history line 1", { exact: true }).count()).toBe(0);
    for (let i = 0; i < 2; i++) await page.getByRole("button", { name: "Load earlier messages" }).click();
    await page.getByText("history line 1", { exact: true }).waitFor();
    await expect.poll(() => page.getByRole("button", { name: "Load earlier messages" }).count()).toBe(0);
    expect(await page.locator(".messages .msg").count()).toBe(250);
  }, 60_000);

  it("passes axe in dark mode and logged no console errors", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.getByRole("link", { name: /show me a table/ }).click();
    await page.locator(".msg-assistant table").waitFor();
    await audit(page, "36-chat-dark");
    expect(a11yViolations).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 30_000);
});
