/**
 * Browser tests of the app shell and what crosses every screen: titles, the skip
 * link, the phone menu, no sideways scrolling at 390 px, light and dark, plain
 * validation errors, and the setup wizard's truthful connection result. No chat
 * message is sent, so no gateway is needed for the assertions.
 */
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { buildApp, DEFAULT_WEB_DIST } from "@reef/server";
import {
  createBrowserWatch,
  createTestDatabase,
  type LlmStandIn,
  launchChromium,
  listenLocal,
  SCREENSHOTS_DIR as SHOTS,
  silentLogger,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
  testAppConfig,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const KEY = "sk-web-shell-0123456789";
let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;
let browser: Browser;
let owner: BrowserContext;
let wid: string;
/** Set while a test provokes API errors on purpose (the browser logs each failed request). */
let expectFailedRequests = false;
const { watch, audit, consoleErrors, a11yViolations } = createBrowserWatch({
  // A 401 the app handles (not signed in) is logged by the browser as a failed resource; that is expected.
  ignore: (text) => /status of 401/.test(text) || (expectFailedRequests && /status of 400/.test(text)),
});

/** A port on which nothing listens: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Calls the API from inside the page, with its session cookie and CSRF token. */
async function call(page: Page, method: string, path: string, body?: unknown) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const csrf = document.cookie
        .split("; ")
        .find((c) => c.startsWith("reef_csrf="))
        ?.slice("reef_csrf=".length);
      const res = await fetch(path, {
        method,
        headers: { "content-type": "application/json", ...(csrf ? { "x-csrf-token": csrf } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: res.status === 204 ? null : await res.json() };
    },
    { method, path, body },
  );
}

/** Waits for the screen to settle: no "Loading…" left and the page's own title set. */
async function settle(page: Page) {
  await page.getByRole("heading", { level: 1 }).first().waitFor();
  await page.waitForFunction(() => !document.body.textContent?.includes("Loading…"));
  await page.waitForTimeout(150);
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  llm = await startLlmStandIn({ apiKey: KEY, models: ["stand-in-model"] });
  db = await createTestDatabase();
  app = await buildApp({
    config: testAppConfig({ runtimeIdleTimeoutMinutes: 60 }),
    database: db.database,
    logger: silentLogger,
    // REEF_TEST_WEB_DIST: a private build, so a rebuild of the shared dist mid-run cannot break this run.
    webDistDir: process.env.REEF_TEST_WEB_DIST ?? DEFAULT_WEB_DIST,
  });
  base = await listenLocal(app);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  // Opening the chat page may start waking the workspace; stop whatever started.
  await stopTestApp(app, db);
  await llm.close();
}, 60_000);

describe("the app shell in a real browser", () => {
  it("the very first visitor of a fresh install (no account yet) is sent to create the first account", async () => {
    const page = watch(await (await browser.newContext()).newPage(), "first visitor");
    await page.goto(`${base}/`);
    await page.waitForURL(/\/signup$/);
    await page.getByRole("heading", { level: 1, name: "Create the first account" }).waitFor();
    await page.waitForFunction(() => document.title === "Create the first account · Reef");
    expect(await page.getByText(/session has ended/).count()).toBe(0);
    await page.context().close();
  });

  it("the setup wizard says the connection test failed, not 'Connected', and the base URL can be fixed in place", async () => {
    owner = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = watch(await owner.newPage(), "owner");
    await page.goto(`${base}/signup`);
    await page.getByLabel("Your name").fill("Sam Shell");
    await page.getByLabel("Email").fill("sam@example.test");
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(/\/admin\/setup$/);
    const done = await call(page, "PATCH", "/api/v1/admin/settings", { setupStep: 3, setupCompleted: true });
    expect(done.status).toBe(200);
    const me = await call(page, "GET", "/api/v1/me");
    wid = me.body.workspaces[0].id;

    await page.goto(`${base}/w/${wid}/setup`);
    const dead = `http://127.0.0.1:${await closedPort()}/v1`;
    await page.getByLabel("Provider", { exact: true }).selectOption("openai-compatible");
    await page.getByLabel("Name").fill("Local LLM");
    // A disabled button says why, and the reason is its accessible description.
    const add = page.getByRole("button", { name: "Add provider" });
    expect(await add.isDisabled()).toBe(true);
    const why = await add.evaluate(
      (b) => document.getElementById(b.getAttribute("aria-describedby") ?? "")?.textContent,
    );
    expect(why).toBe("Enter the base URL to add this provider.");
    await page.getByLabel("Base URL").fill(dead);
    await page.getByRole("button", { name: "Add provider" }).click();
    await page.getByText(/Saved Local LLM, but the connection test failed/).waitFor();
    await page
      .getByText(/Check the base URL/)
      .first()
      .waitFor();
    // Today's wizard said "Connected to Local LLM" above the failed test.
    expect(await page.getByText(/Connected to/).count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, "shell-setup-test-failed.png") });

    // The fix is in place: change the base URL, save, and the test runs again.
    await page.getByRole("button", { name: "Fix the provider" }).click();
    const edit = page.getByRole("form", { name: /^Edit / });
    // Focus moved to what appeared.
    expect(await page.evaluate(() => document.activeElement?.closest("form")?.getAttribute("aria-label"))).toBe(
      "Edit Local LLM",
    );
    await edit.getByLabel("Base URL").fill(llm.baseUrl);
    await edit.getByLabel(/API key/).fill(KEY);
    await edit.getByRole("button", { name: "Save" }).click();
    await page.getByText(/✓ Connected to Local LLM \(1 model\)/).waitFor();
    expect(await page.getByText(/connection test failed/).count()).toBe(0);

    // The change is audited, naming the field (never its value).
    const audit = await call(page, "GET", `/api/v1/workspaces/${wid}/audit?action=provider.update`);
    expect(audit.status).toBe(200);
    const entry = audit.body.items.find((e: { action: string }) => e.action === "provider.update");
    expect(entry?.details?.fields).toContain("baseUrl");
    const providers = await call(page, "GET", `/api/v1/workspaces/${wid}/providers`);
    expect(providers.body.items[0].baseUrl).toBe(llm.baseUrl.replace(/\/+$/, ""));
  }, 60_000);

  it("once an account exists, a signed-out visitor is sent to sign in without being told a session ended", async () => {
    const page = watch(await (await browser.newContext()).newPage(), "visitor");
    await page.goto(`${base}/`);
    await page.waitForURL(/\/signin$/);
    await page.getByRole("heading", { level: 1, name: "Sign in to Reef" }).waitFor();
    await page.waitForFunction(() => document.title === "Sign in · Reef");
    expect(await page.getByText(/session has ended/).count()).toBe(0);
    expect(await page.getByRole("heading", { name: "Create the first account" }).count()).toBe(0);
    await page.context().close();
  });

  it("a validation error from the API reads in plain words, naming the field", async () => {
    const page = owner.pages()[0] as Page;
    const providers = await call(page, "GET", `/api/v1/workspaces/${wid}/providers`);
    const providerId = providers.body.items[0].id;
    expectFailedRequests = true;
    const bad = await call(page, "POST", `/api/v1/workspaces/${wid}/agents`, {
      name: "   ",
      providerId,
      model: "stand-in-model",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("VALIDATION_FAILED");
    // Today: "Invalid body: Too small: expected string to have >=1 characters".
    expect(bad.body.message).toBe("Name: enter at least 1 character.");
    expect(bad.body.details).toEqual([{ in: "body", path: "name", message: "Enter at least 1 character." }]);
    const badKey = await call(page, "POST", `/api/v1/workspaces/${wid}/providers`, {
      name: "X",
      kind: "openai-compatible",
      baseUrl: "ftp://example.com",
      apiKey: "short",
    });
    expect(badKey.body.message).toMatch(/^Base URL: must be an http:\/\/ or https:\/\/ URL\. API key: looks too short/);
    expect(badKey.body.message).not.toMatch(/Too small|Invalid input|expected string/);
    expectFailedRequests = false;

    const good = await call(page, "POST", `/api/v1/workspaces/${wid}/agents`, {
      name: "Ada",
      providerId,
      model: "stand-in-model",
    });
    expect(good.status).toBe(201);
  });

  it("every screen has its own title, no sideways scrolling and no axe violations, wide and phone, light and dark", async () => {
    const screens: [string, string][] = [
      ["chat", `/w/${wid}/chat`],
      ["agents", `/w/${wid}/agents`],
      ["providers", `/w/${wid}/providers`],
      ["members", `/w/${wid}/members`],
      ["audit", `/w/${wid}/audit`],
      ["usage", `/w/${wid}/usage`],
      ["approvals", `/w/${wid}/approvals`],
      ["admin", "/admin"],
      ["setup", `/w/${wid}/setup`],
    ];
    const overflow: string[] = [];
    for (const viewport of [
      { width: 1280, height: 800 },
      { width: 390, height: 844 },
    ]) {
      for (const colorScheme of ["light", "dark"] as const) {
        const where = `${viewport.width}px ${colorScheme}`;
        const page = watch(await owner.newPage(), `owner ${where}`);
        await page.setViewportSize(viewport);
        await page.emulateMedia({ colorScheme });
        const titles = new Map<string, string>();
        // Signed out: the sign-up screen, in its own context.
        const visitor = await browser.newContext({ viewport, colorScheme });
        const signUp = watch(await visitor.newPage(), `visitor ${where}`);
        await signUp.goto(`${base}/signup`);
        await settle(signUp);
        titles.set("signup", await signUp.title());
        if (await signUp.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)) {
          overflow.push(`signup ${where}`);
        }
        await audit(signUp, `signup ${where}`);
        await visitor.close();

        for (const [name, path] of screens) {
          await page.goto(`${base}${path}`);
          await settle(page);
          titles.set(name, await page.title());
          const wide = await page.evaluate(() => ({
            scroll: document.documentElement.scrollWidth,
            inner: window.innerWidth,
          }));
          if (wide.scroll > wide.inner) overflow.push(`${name} ${where}: ${wide.scroll} > ${wide.inner}`);
          await audit(page, `${name} ${where}`);
          if (colorScheme === "dark" || viewport.width === 390) {
            await page.screenshot({
              path: join(SHOTS, `shell-${name}-${viewport.width}-${colorScheme}.png`),
              fullPage: true,
            });
          }
          if (viewport.width === 390) {
            // One line of top bar on a phone (today it wrapped to three).
            const bar = await page.locator("header.topbar").boundingBox();
            expect(bar?.height ?? 0, `${name} ${where} top bar height`).toBeLessThan(64);
          }
        }
        const values = [...titles.values()];
        expect(
          values.filter((t) => t === "Reef"),
          `${where}: screens titled just "Reef"`,
        ).toEqual([]);
        expect(new Set(values).size, `${where}: titles ${JSON.stringify([...titles])}`).toBe(values.length);
        await page.close();
      }
    }
    expect(overflow).toEqual([]);
  }, 240_000);

  it("the skip link is the first Tab stop and moves focus to the main content", async () => {
    const page = watch(await owner.newPage(), "keyboard");
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${base}/w/${wid}/agents`);
    await settle(page);
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    expect(await page.getByRole("link", { name: "Skip to content" }).isVisible()).toBe(true);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe("main");
    // The next Tab goes into the page, not back through the top bar.
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => !!document.activeElement?.closest("main"))).toBe(true);
    await page.close();
  });

  it("on a phone the navigation is behind Menu, which opens, closes on Escape and gives focus back", async () => {
    const page = watch(await owner.newPage(), "phone menu");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/w/${wid}/agents`);
    await settle(page);
    const menu = page.getByRole("button", { name: "Menu" });
    const members = page.getByRole("link", { name: "Members" });
    expect(await members.isVisible()).toBe(false);
    await menu.click();
    expect(await menu.getAttribute("aria-expanded")).toBe("true");
    await members.waitFor();
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(true);
    await audit(page, "phone menu open");
    await page.keyboard.press("Escape");
    expect(await menu.getAttribute("aria-expanded")).toBe("false");
    expect(await members.isVisible()).toBe(false);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Menu");
    // Following a link closes it and goes there.
    await menu.click();
    await members.click();
    await page.waitForURL(/\/members$/);
    expect(await menu.getAttribute("aria-expanded")).toBe("false");
    // On a wide screen the same links sit in the bar and there is no Menu button.
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(await menu.isVisible()).toBe(false);
    expect(await page.getByRole("link", { name: "Agents" }).isVisible()).toBe(true);
    await page.close();
  });

  it("focus moves to what appeared, back after Cancel, and on after Delete (never to the page body)", async () => {
    const page = watch(await owner.newPage(), "focus");
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${base}/w/${wid}/providers`);
    const spare = await call(page, "POST", `/api/v1/workspaces/${wid}/providers`, {
      name: "Spare",
      kind: "openai-compatible",
      baseUrl: llm.baseUrl,
      apiKey: KEY,
    });
    expect(spare.status).toBe(201);
    await page.reload();
    await settle(page);
    await page.getByRole("heading", { name: "Spare" }).waitFor();
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement;
        return {
          tag: el?.tagName.toLowerCase(),
          text: el?.textContent?.trim(),
          form: el?.closest("form")?.getAttribute("aria-label"),
        };
      });
    await page.getByRole("button", { name: "Add provider" }).click();
    await expect.poll(async () => (await focused()).form).toBe("Add a provider");
    await page.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(async () => (await focused()).text).toBe("Add provider");
    const spareCard = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "Spare" }) });
    await spareCard.getByRole("button", { name: "Edit" }).click();
    await expect.poll(async () => (await focused()).form).toBe("Edit Spare");
    await page.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(async () => (await focused()).text).toBe("Edit");
    await spareCard.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete provider" }).click();
    await page.getByRole("heading", { name: "Spare" }).waitFor({ state: "detached" });
    await expect.poll(async () => (await focused()).text).toMatch(/^(Delete|Add provider)$/);
    await page.close();
  });

  it("had no console errors and no accessibility violations", () => {
    expect(consoleErrors).toEqual([]);
    expect(a11yViolations).toEqual([]);
  });
});
