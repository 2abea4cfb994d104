import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from "playwright-core";

/** Debian's Chromium; never a downloaded browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Launches Debian's Chromium headless for browser tests, or says how to get it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: install Debian's Chromium (apt-get install -y chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/**
 * A browser context at `base` signed in as the person behind `client` (the cookies of an API sign-up);
 * `clipboard` lets the page read and write the clipboard (copy buttons).
 */
export async function signedInContext(
  browser: Browser,
  base: string,
  client: { cookies: Map<string, string> },
  opts: BrowserContextOptions & { clipboard?: boolean } = {},
): Promise<BrowserContext> {
  const { clipboard, ...options } = opts;
  const context = await browser.newContext(options);
  if (clipboard) await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await context.addCookies([...client.cookies].map(([name, value]) => ({ name, value, url: base })));
  return context;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs the axe-core accessibility audit (WCAG 2.1 A and AA rules plus axe's best
 * practices) on the page as it is now. @returns one line per violation at or above
 * `minImpact`, naming the rule and the first offending elements; empty when clean.
 */
export async function accessibilityViolations(
  page: Page,
  minImpact: "minor" | "moderate" | "serious" | "critical" = "moderate",
): Promise<string[]> {
  const rank = { minor: 1, moderate: 2, serious: 3, critical: 4 } as const;
  // Evaluated through the DevTools protocol, so the app's CSP (script-src 'self') does not block it.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: unknown) => Promise<AxeResult> } }).axe;
    const result = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  return violations
    .filter((v) => rank[(v.impact ?? "minor") as keyof typeof rank] >= rank[minImpact])
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.targets.join("; ")}`);
}

interface AxeResult {
  violations: { id: string; impact?: string | null; help: string; nodes: { target: string[] }[] }[];
}
