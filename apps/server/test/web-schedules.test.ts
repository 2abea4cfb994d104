/**
 * Schedules in a real browser (issue 15, H3) against a real Reef, a real OpenClaw gateway and the LLM stand-in:
 * the empty state, the create form's cron helper (the server's next five firings in the chosen zone, a too-frequent
 * rule refused on its field before saving), Run now and the agent's answer read in the run history, a webhook's
 * one-time secret panel with a signed curl example, the page at 390 px in dark, and axe throughout.
 */
import { mkdirSync } from "node:fs";
import { DEFAULT_WEB_DIST } from "@reef/server";
import {
  addAgent,
  addStandInProvider,
  createBrowserWatch,
  type LlmStandIn,
  launchChromium,
  listenTestApp,
  SCREENSHOTS_DIR as SHOTS,
  shotIfFailed,
  signedInContext,
  signUp,
  startLlmStandIn,
  stopTestApp,
  type TestDatabase,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const KEY = "sk-web-schedules-0123456789";
let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let llm: LlmStandIn;
let browser: Browser;
let wid = "";
let owner: Awaited<ReturnType<typeof signUp>>;
let page: Page;
// The preview's refusal of a too-frequent rule is a 400 the browser logs; it is the behaviour under test.
const { watch, shot, consoleErrors, a11yViolations } = createBrowserWatch({ ignore: /status of 400/ });
const audit = (p: Page, name: string) => shot(p, name, { fullPage: false });

async function browserFor(viewport: { width: number; height: number }, who: string, colorScheme: "light" | "dark") {
  const context = await signedInContext(browser, base, owner.client, { viewport, colorScheme, clipboard: true });
  return watch(await context.newPage(), who);
}

const noSideways = (p: Page) =>
  p.evaluate(() => (document.scrollingElement as HTMLElement).scrollWidth <= window.innerWidth + 1);

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  llm = await startLlmStandIn({
    apiKey: KEY,
    models: ["stand-in-model"],
    reply: (text) => `Stand-in reply to: ${text}`,
  });
  // The shipped minimum interval (5 minutes): "every minute" is refused.
  ({ app, db, base } = await listenTestApp({
    config: { runtimeIdleTimeoutMinutes: 60 },
    webDistDir: DEFAULT_WEB_DIST,
  }));
  browser = await launchChromium();
  owner = await signUp(app, { name: "Sam Scheduler" });
  wid = owner.workspaceId;
  const providerId = await addStandInProvider(owner.client, wid, llm, KEY);
  await addAgent(owner.client, wid, { name: "Reporter", providerId, model: "stand-in-model" });
  page = await browserFor({ width: 1280, height: 800 }, "desktop", "light");
}, 60_000);

afterEach((ctx) => shotIfFailed(ctx, { schedules: page }));

afterAll(async () => {
  await browser?.close();
  await stopTestApp(app, db);
  await llm?.close();
}, 60_000);

describe("schedules in the browser", () => {
  it("creates a cron schedule with the helper: five firings previewed in the zone, too frequent refused on the field", async () => {
    await page.goto(`${base}/w/${wid}/schedules`);
    // The navigation leads here, and the empty state says what schedules are for.
    await page.getByRole("navigation", { name: "Workspace" }).getByRole("link", { name: "Schedules" }).waitFor();
    await page.getByRole("heading", { name: "No schedules yet" }).waitFor();
    await page.getByText("while nobody is chatting").waitFor();
    expect(await page.title()).toMatch(/^Schedules · /);
    await audit(page, "schedules-empty");

    await page.getByRole("button", { name: "New schedule" }).click();
    const name = page.getByLabel("Name", { exact: true });
    await name.waitFor();
    expect(await name.evaluate((el) => el === document.activeElement)).toBe(true);
    await name.fill("Morning summary");
    await page.getByLabel("Time zone").selectOption("Europe/Berlin");
    const cron = page.getByLabel("Cron expression");
    expect(await cron.inputValue()).toBe("0 9 * * 1-5");
    const preview = page.getByRole("list", { name: "Next five runs" });
    await preview.waitFor();
    await expect.poll(() => preview.getByRole("listitem").count()).toBe(5);
    await page.getByText("Next five runs (Europe/Berlin)").waitFor();
    // Every previewed firing is a weekday at 09:00 in Berlin.
    for (const text of await preview.getByRole("listitem").allTextContents()) {
      expect(text).toMatch(/(Mon|Tue|Wed|Thu|Fri)/);
      expect(text).toMatch(/09:00/);
    }

    // Every minute is more often than the operator allows: the server's sentence shows on the cron field.
    await cron.fill("* * * * *");
    await expect.poll(() => cron.getAttribute("aria-invalid"), { timeout: 5000 }).toBe("true");
    const errorId = (await cron.getAttribute("aria-describedby")) ?? "";
    const errorText = await page.locator(`[id="${errorId}"]`).textContent();
    expect(errorText).toMatch(/often|minutes|interval/i);
    await preview.waitFor({ state: "detached" });
    await audit(page, "schedules-form-too-frequent");

    // The helper writes the rule back: every day at 07:30.
    await page.getByLabel("Repeat", { exact: true }).selectOption({ label: "Every day at…" });
    await page.getByLabel("At", { exact: true }).fill("07:30");
    expect(await cron.inputValue()).toBe("30 7 * * *");
    await expect.poll(() => cron.getAttribute("aria-invalid")).toBe(null);
    await expect.poll(() => preview.getByRole("listitem").count()).toBe(5);
    await page.getByLabel("Prompt").fill("Summarise the day");
    await page.getByRole("button", { name: "Create schedule" }).click();

    // The new schedule takes focus, with its rule in words and zone, and its next run.
    const heading = page.getByRole("heading", { name: "Morning summary" });
    await heading.waitFor();
    await expect.poll(() => heading.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.getByText("Every day at 07:30 (Europe/Berlin)").waitFor();
    const listed = (await owner.client.get(`/api/v1/workspaces/${wid}/schedules`)).json().items;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ kind: "cron", cron: "30 7 * * *", timezone: "Europe/Berlin", enabled: true });
    expect(listed[0].nextRunAt).toBeTruthy();
    await audit(page, "schedules-created");
  }, 60_000);

  it("Run now: the run shows in the history and its output is the agent's answer, updating by itself", async () => {
    const started = Date.now();
    await page.getByRole("button", { name: "Run now: Morning summary" }).click();
    const runs = page.getByRole("list", { name: "Runs of Morning summary" });
    await runs.waitFor();
    await runs.getByText("Run now").first().waitFor();
    // The output opens by itself for the run just queued, and fills in without a reload (cold gateway start).
    const answer = page.getByRole("article", { name: "Agent said" });
    await answer.getByText("Stand-in reply to: Summarise the day").waitFor({ timeout: 120_000 });
    await runs.getByText("Succeeded").first().waitFor({ timeout: 10_000 });
    console.info(`run now → answer in the history: ${Date.now() - started} ms`);
    const schedule = (await owner.client.get(`/api/v1/workspaces/${wid}/schedules`)).json().items[0];
    expect(schedule.lastRunStatus).toBe("succeeded");
    // The schedule's own row follows without a reload.
    const card = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "Morning summary" }) });
    await card.locator(".schedule-facts").getByText("Succeeded").waitFor({ timeout: 10_000 });
    // The creator can open the conversation that holds the answers.
    await page.getByRole("link", { name: "Open the conversation with its answers" }).waitFor();
    await audit(page, "schedules-run-output");
  }, 150_000);

  it("a webhook shows its URL, secret and a signed curl example once", async () => {
    await page.getByRole("button", { name: "New schedule" }).click();
    await page.getByLabel("Name", { exact: true }).fill("On new issue");
    await page.getByRole("radio", { name: /^When another system calls a webhook/ }).check();
    await page.getByLabel("Prompt").fill("Triage this issue: {{body.title}}");
    await page.getByRole("button", { name: "Create schedule" }).click();
    const panel = page.getByRole("region", { name: "The secret of On new issue" });
    await panel.waitFor();
    await panel.getByText("you will not see it again").waitFor();
    const secret = (await panel.getByTestId("schedule-secret").textContent()) ?? "";
    expect(secret).toMatch(/^whsec_/);
    const curl = (await panel.locator("pre").textContent()) ?? "";
    expect(curl).toContain(`${base}/api/v1/hooks/${wid}/`);
    expect(curl).toContain("openssl dgst -sha256 -hmac");
    expect(curl).toMatch(/X-Reef-Timestamp[\s\S]*X-Reef-Delivery[\s\S]*X-Reef-Signature: sha256=/);
    await audit(page, "schedules-webhook-secret");
    await panel.getByRole("button", { name: "I have stored it" }).click();
    await panel.waitFor({ state: "detached" });
    // Nobody can read it again.
    expect(JSON.stringify((await owner.client.get(`/api/v1/workspaces/${wid}/schedules`)).json())).not.toContain(
      secret,
    );
  }, 60_000);

  it("pause and resume; delete asks first and focus moves to the next schedule", async () => {
    const card = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "Morning summary" }) });
    await page.getByRole("button", { name: "Pause Morning summary" }).click();
    await card.getByText("None while paused").waitFor();
    expect((await owner.client.get(`/api/v1/workspaces/${wid}/schedules`)).json().items[1].enabled).toBe(false);
    await page.getByRole("button", { name: "Resume Morning summary" }).click();
    await card.getByText("None while paused").waitFor({ state: "detached" });
    expect((await owner.client.get(`/api/v1/workspaces/${wid}/schedules`)).json().items[1].enabled).toBe(true);

    await page.getByRole("button", { name: "Delete On new issue" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete the schedule On new issue?" });
    await dialog.getByText("its webhook URL is refused from now on").waitFor();
    await audit(page, "schedules-delete-dialog");
    await dialog.getByRole("button", { name: "Delete schedule" }).click();
    await page.getByRole("heading", { name: "On new issue" }).waitFor({ state: "detached" });
    const next = page.getByRole("heading", { name: "Morning summary" });
    await expect.poll(() => next.evaluate((el) => el === document.activeElement)).toBe(true);
    expect((await owner.client.get(`/api/v1/workspaces/${wid}/schedules`)).json().items).toHaveLength(1);
  }, 60_000);

  it("at 390 px (dark) nothing scrolls sideways: the list, a run's output and the form", async () => {
    const phone = await browserFor({ width: 390, height: 844 }, "phone", "dark");
    await phone.goto(`${base}/w/${wid}/schedules`);
    await phone.getByRole("heading", { name: "Morning summary" }).waitFor();
    await phone.getByRole("button", { name: "Show runs of Morning summary" }).click();
    await phone.getByRole("button", { name: "Show output" }).first().click();
    await phone.getByText("Stand-in reply to: Summarise the day").waitFor();
    expect(await noSideways(phone)).toBe(true);
    await shot(phone, "schedules-phone-dark");
    await phone.getByRole("button", { name: "New schedule" }).click();
    await phone.getByLabel("Cron expression").waitFor();
    await expect.poll(() => phone.getByRole("list", { name: "Next five runs" }).getByRole("listitem").count()).toBe(5);
    expect(await noSideways(phone)).toBe(true);
    await shot(phone, "schedules-phone-form-dark");
    await phone.context().close();
  }, 60_000);

  it("no console errors and no accessibility violations", () => {
    expect(consoleErrors).toEqual([]);
    expect(a11yViolations).toEqual([]);
  });
});
