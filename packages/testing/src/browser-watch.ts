import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { accessibilityViolations } from "./browser.ts";

/** Where browser tests save their screenshots: artifacts/screenshots/ at the repository's root (a CI artifact). */
export const SCREENSHOTS_DIR = fileURLToPath(new URL("../../../artifacts/screenshots/", import.meta.url));

export interface BrowserWatchOptions {
  /** Where `shot` saves its pictures; SCREENSHOTS_DIR unless told. */
  shotsDir?: string;
  /** Console errors that are expected (as a pattern, or a test of the line), so not collected. */
  ignore?: RegExp | ((text: string) => boolean);
}

export interface BrowserWatch {
  /** Console errors and uncaught page errors of every watched page, each prefixed with who it was. */
  consoleErrors: string[];
  /** What axe-core found on each audited screen, each prefixed with the screen's name. */
  a11yViolations: string[];
  /** Collects `page`'s console errors and uncaught errors into `consoleErrors`. @returns the page. */
  watch(page: Page, who: string): Page;
  /** Audits the page's accessibility as it is now into `a11yViolations`. */
  audit(page: Page, name: string): Promise<void>;
  /** Saves a screenshot `<name>.png` (the full page unless told) and audits the page. */
  shot(page: Page, name: string, opts?: { fullPage?: boolean }): Promise<void>;
}

/** What a browser test watches for: console errors and accessibility violations, with screenshots on the way. */
export function createBrowserWatch(opts: BrowserWatchOptions = {}): BrowserWatch {
  const shotsDir = opts.shotsDir ?? SCREENSHOTS_DIR;
  const ignore = opts.ignore;
  const ignored = (text: string) => (ignore instanceof RegExp ? ignore.test(text) : (ignore?.(text) ?? false));
  const consoleErrors: string[] = [];
  const a11yViolations: string[] = [];
  async function audit(page: Page, name: string) {
    for (const v of await accessibilityViolations(page)) a11yViolations.push(`${name}: ${v}`);
  }
  return {
    consoleErrors,
    a11yViolations,
    watch(page, who) {
      page.on("console", (m) => {
        if (m.type() === "error" && !ignored(m.text())) consoleErrors.push(`${who}: ${m.text()}`);
      });
      page.on("pageerror", (e) => consoleErrors.push(`${who}: ${e.message}`));
      return page;
    },
    audit,
    async shot(page, name, { fullPage = true } = {}) {
      await page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage });
      await audit(page, name);
    },
  };
}

/**
 * After a test that failed, saves a full-page screenshot `failed-<label>-<test>.png` of each
 * page (those set), to see what the screen showed. Call it from `afterEach` with vitest's context.
 */
export async function shotIfFailed(
  ctx: { task: { name: string; result?: { state?: string } | undefined } },
  pages: Record<string, Page | undefined>,
  shotsDir = SCREENSHOTS_DIR,
): Promise<void> {
  if (ctx.task.result?.state !== "fail") return;
  const name = ctx.task.name.replace(/\W+/g, "-").slice(0, 40);
  for (const [label, page] of Object.entries(pages)) {
    await page?.screenshot({ path: join(shotsDir, `failed-${label}-${name}.png`), fullPage: true }).catch(() => {});
  }
}
