/**
 * Connectors in a real browser (issue 16, helper D) against a real Reef and a real MCP server (the SDK stand-in on
 * 127.0.0.1): the operator allows the stand-in's host on the admin page, an admin adds it as a generic MCP connector,
 * tests it before saving (the tools `nonce` and `echo` are listed), saves, enables it for one of two agents with only
 * `nonce` (kept after a reload); the token never reaches the page; the operator's switch-off shows a banner; a member
 * sees everything read-only; the API keys page shows the OpenAI-compatible base URL and examples; delete asks first.
 * No console errors, and axe finds nothing serious on any screen.
 */
import { mkdirSync } from "node:fs";
import { DEFAULT_WEB_DIST } from "@reef/server";
import {
  addAgent,
  createBrowserWatch,
  joinWorkspace,
  launchChromium,
  listenTestApp,
  type McpStandIn,
  SCREENSHOTS_DIR as SHOTS,
  shotIfFailed,
  signedInContext,
  signUp,
  startMcpStandIn,
  stopTestApp,
  type TestDatabase,
} from "@reef/testing";
import type { FastifyInstance } from "fastify";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let mcp: McpStandIn;
let browser: Browser;
let wid = "";
let owner: Awaited<ReturnType<typeof signUp>>;
let member: Awaited<ReturnType<typeof signUp>>;
let researcher = "";
let writer = "";
let connectorId = "";
let page: Page;
let memberPage: Page | undefined;
const { watch, shot, consoleErrors, a11yViolations } = createBrowserWatch();
const audit = (p: Page, name: string) => shot(p, name, { fullPage: false });
const token = () => mcp.token ?? "";

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  mcp = await startMcpStandIn();
  ({ app, db, base } = await listenTestApp({ webDistDir: DEFAULT_WEB_DIST }));
  browser = await launchChromium();
  // The first account is the operator: it owns the workspace and sets the platform's connector hosts.
  owner = await signUp(app, { name: "Ada Admin" });
  wid = owner.workspaceId;
  member = await signUp(app, { name: "Mo Member" });
  await joinWorkspace(owner.client, wid, member.email, member.client, "member");
  const provider = (
    await owner.client.post(`/api/v1/workspaces/${wid}/providers`, {
      name: "LLM",
      kind: "openai-compatible",
      baseUrl: "http://127.0.0.1:9/v1",
      apiKey: "sk-web-connectors-0123456789",
      models: ["m"],
    })
  ).json();
  researcher = await addAgent(owner.client, wid, { name: "Researcher", providerId: provider.id, model: "m" });
  writer = await addAgent(owner.client, wid, { name: "Writer", providerId: provider.id, model: "m" });
  const context = await signedInContext(browser, base, owner.client, { viewport: { width: 1280, height: 900 } });
  page = watch(await context.newPage(), "admin");
}, 60_000);

afterEach((ctx) => shotIfFailed(ctx, { connectors: page, member: memberPage }));

afterAll(async () => {
  await browser?.close();
  await stopTestApp(app, db);
  await mcp?.close();
}, 60_000);

const connectorJson = async () =>
  (await owner.client.get(`/api/v1/workspaces/${wid}/connectors/${connectorId}`)).json();

describe("connectors in the browser", () => {
  it("the operator allows the stand-in's host for connectors on the admin page", async () => {
    const host = new URL(mcp.url).host;
    await page.goto(`${base}/admin`);
    const hosts = page.getByLabel("Allowed connector hosts");
    await hosts.waitFor();
    expect(await page.getByLabel(/Let workspaces connect MCP servers/).isChecked()).toBe(true);
    await hosts.fill(host);
    await page.getByRole("button", { name: "Save connector settings" }).click();
    await page.getByText("Saved. It applies at once; agents' gateways").waitFor();
    const settings = (await owner.client.get("/api/v1/admin/settings")).json();
    expect(settings.connectorAllowedHosts.value).toEqual([host]);
    expect(settings.connectorsEnabled.value).toBe(true);
  }, 60_000);

  it("empty state offers the presets; the n8n form asks only for the instance, the token and the API key", async () => {
    await page.goto(`${base}/w/${wid}/connectors`);
    await page.getByRole("navigation", { name: "Workspace" }).getByRole("link", { name: "Connectors" }).waitFor();
    await page.getByRole("heading", { name: "No connectors yet" }).waitFor();
    expect(await page.title()).toMatch(/^Connectors · /);
    const presets = page.getByRole("list", { name: "Kinds of connector" });
    for (const name of ["n8n", "Activepieces", "Other MCP server"]) {
      await presets.getByRole("button", { name, exact: true }).waitFor();
    }
    await audit(page, "connectors-empty");

    await presets.getByRole("button", { name: "n8n", exact: true }).click();
    const form = page.getByRole("form", { name: "Add n8n connector" });
    await form.getByLabel("n8n instance URL").waitFor();
    // The first field takes focus, so a keyboard user types straight away.
    expect(await form.getByLabel("Name").evaluate((el) => el === document.activeElement)).toBe(true);
    await form.getByLabel("MCP access token").waitFor();
    await form.getByLabel("REST API key (optional)").waitFor();
    expect(await form.getByLabel("MCP server URL").count()).toBe(0);
    await form.getByText("What to set up in n8n").click();
    await form.getByText("Instance-level MCP", { exact: false }).first().waitFor();
    // Add stays disabled, and says why, until the required fields are there.
    expect(await form.getByRole("button", { name: "Add connector" }).isDisabled()).toBe(true);
    await form.getByText("Enter the n8n instance URL.").waitFor();
    await audit(page, "connectors-n8n-form");
    await form.getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("heading", { name: "No connectors yet" }).waitFor();
  }, 60_000);

  it("adds a generic MCP server: the draft test lists nonce and echo, then it is saved and tested", async () => {
    await page.getByRole("button", { name: "Other MCP server" }).click();
    const form = page.getByRole("form", { name: "Add MCP server connector" });
    await form.getByLabel("Name").fill("Stand-in tools");
    await form.getByLabel("MCP server URL").fill(mcp.url);
    await form.getByLabel("Bearer token").fill(token());
    await form.getByRole("button", { name: "Test connection" }).click();
    const found = form.getByRole("list", { name: "Tools found" });
    await found.waitFor({ timeout: 20_000 });
    await found.getByText("nonce", { exact: true }).waitFor();
    await found.getByText("echo", { exact: true }).waitFor();
    await form.getByText(/Connected to reef-mcp-stand-in 1\.0\.0 in [\d.]+ s: 2 tools found\./).waitFor();
    await audit(page, "connectors-draft-test");

    await form.getByRole("button", { name: "Add connector" }).click();
    await page.waitForURL(/\/connectors\/[0-9a-f-]{36}$/, { timeout: 20_000 });
    connectorId = page.url().split("/").pop() ?? "";
    await page.getByRole("heading", { level: 1, name: /Stand-in tools/ }).waitFor();
    const tools = page.getByRole("list", { name: "Tools of Stand-in tools" });
    await tools.getByText("nonce", { exact: true }).waitFor();
    await tools.getByText("echo", { exact: true }).waitFor();
    await page.getByText(/Worked .*ago|Worked now/).waitFor();
    const saved = await connectorJson();
    expect(saved).toMatchObject({ name: "Stand-in tools", kind: "mcp", url: mcp.url, hasBearerToken: true });
    expect(saved.tools.map((t: { name: string }) => t.name).sort()).toEqual(["echo", "nonce"]);
    // The token reached the server (the tests used it) and never the page.
    expect(mcp.requests.some((r) => r.authorization === `Bearer ${token()}`)).toBe(true);
    expect(await page.content()).not.toContain(token());
    await audit(page, "connectors-detail");
  }, 60_000);

  it("enables it for one of two agents with only nonce; the choice is there after a reload", async () => {
    const form = page.getByRole("form", { name: "Agents that may use Stand-in tools" });
    await form.getByLabel("Researcher").check();
    const tools = form.getByRole("group", { name: "Tools Researcher may use" });
    await tools.getByLabel("Only some tools").check();
    await tools.getByLabel("echo").uncheck();
    expect(await form.getByRole("group", { name: "Tools Writer may use" }).count()).toBe(0);
    await form.getByRole("button", { name: "Save agent access" }).click();
    await page.getByText("Saved: 1 agent may use Stand-in tools.").waitFor();
    expect((await connectorJson()).agents).toEqual([{ agentId: researcher, tools: ["nonce"] }]);

    await page.reload();
    const after = page.getByRole("form", { name: "Agents that may use Stand-in tools" });
    await after.getByLabel("Researcher").waitFor();
    expect(await after.getByLabel("Researcher").isChecked()).toBe(true);
    expect(await after.getByLabel("Writer").isChecked()).toBe(false);
    const group = after.getByRole("group", { name: "Tools Researcher may use" });
    expect(await group.getByLabel("Only some tools").isChecked()).toBe(true);
    expect(await group.getByLabel("nonce").isChecked()).toBe(true);
    expect(await group.getByLabel("echo").isChecked()).toBe(false);
    expect(writer).not.toBe(researcher);
    expect(await page.content()).not.toContain(token());
    await audit(page, "connectors-agents");
  }, 60_000);

  it("edit shows the token as stored, with Replace and Remove, never its value", async () => {
    await page.getByRole("button", { name: "Edit", exact: true }).click();
    const form = page.getByRole("form", { name: "Edit Stand-in tools" });
    await form.getByText(`Stored (…${token().slice(-4)})`).waitFor();
    await form.getByRole("button", { name: "Replace bearer token" }).waitFor();
    await form.getByRole("button", { name: "Remove bearer token" }).waitFor();
    expect(await page.content()).not.toContain(token());
    // Replace opens an empty field for the new value, focused.
    await form.getByRole("button", { name: "Replace bearer token" }).click();
    const field = form.getByLabel("Bearer token");
    expect(await field.inputValue()).toBe("");
    expect(await field.evaluate((el) => el === document.activeElement)).toBe(true);
    await audit(page, "connectors-edit");
    await form.getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("button", { name: "Edit", exact: true }).waitFor();
  }, 60_000);

  it("when the operator switches connectors off, the page says so", async () => {
    await owner.client.patch("/api/v1/admin/settings", { connectorsEnabled: false });
    await page.reload();
    await page.getByText("Connectors are switched off on this server.").waitFor();
    await audit(page, "connectors-switched-off");
    await owner.client.patch("/api/v1/admin/settings", { connectorsEnabled: true });
    await page.reload();
    await page.getByRole("heading", { level: 1, name: /Stand-in tools/ }).waitFor();
    expect(await page.getByText("Connectors are switched off on this server.").count()).toBe(0);
  }, 60_000);

  it("a member sees the connectors and who uses them, read-only", async () => {
    const context = await signedInContext(browser, base, member.client, { viewport: { width: 1280, height: 900 } });
    memberPage = watch(await context.newPage(), "member");
    await memberPage.goto(`${base}/w/${wid}/connectors`);
    const list = memberPage.getByRole("list", { name: "Connectors" });
    await list.getByRole("link", { name: "Stand-in tools" }).waitFor();
    await list.getByText("Researcher (1 of the tools)").waitFor();
    expect(await memberPage.getByRole("button", { name: "Add connector" }).count()).toBe(0);
    await memberPage.getByText("Owners and admins add, change and test them.").waitFor();
    await audit(memberPage, "connectors-member-list");
    await list.getByRole("link", { name: "Stand-in tools" }).click();
    await memberPage.getByRole("list", { name: "Agents using Stand-in tools" }).getByText("Researcher").waitFor();
    for (const name of ["Test connection", "Edit", "Delete", "Save agent access"]) {
      expect(await memberPage.getByRole("button", { name, exact: true }).count()).toBe(0);
    }
    expect(await memberPage.content()).not.toContain(token());
    await audit(memberPage, "connectors-member-detail");
    await context.close();
    memberPage = undefined;
  }, 60_000);

  it("the API keys page shows the OpenAI-compatible base URL and examples, with a new key filled in", async () => {
    await page.goto(`${base}/w/${wid}/api-keys`);
    const panel = page.getByRole("region", { name: "Use your agents from other apps" });
    await panel.waitFor();
    const baseUrl = `${base}/api/v1/workspaces/${wid}/openai/v1`;
    expect(await panel.getByTestId("openai-base-url").textContent()).toBe(baseUrl);
    const example = panel.getByTestId("openai-example");
    const curl = (await example.textContent()) ?? "";
    expect(curl).toContain(`curl ${baseUrl}/chat/completions`);
    expect(curl).toContain("Authorization: Bearer reef_…");
    // Each agent is a model: the example names one of them by id.
    expect(curl).toMatch(new RegExp(`"model": "(${researcher}|${writer})"`));
    await audit(page, "api-keys-openai");

    await page.getByLabel("Key name").fill("Open WebUI");
    await page.getByRole("button", { name: "Create key" }).click();
    const key = (await page.locator(".notice-ok code").first().textContent()) ?? "";
    expect(key).toMatch(/^reef_/);
    await expect.poll(async () => (await example.textContent()) ?? "").toContain(`Bearer ${key}`);
    await panel.getByLabel("Example for").selectOption({ label: "Python (openai package)" });
    const python = (await example.textContent()) ?? "";
    expect(python).toContain("from openai import OpenAI");
    expect(python).toContain(`OpenAI(base_url="${baseUrl}", api_key="${key}")`);
    await panel.getByLabel("Fill in the key created just now").uncheck();
    expect(await example.textContent()).toContain('api_key="reef_…"');
  }, 60_000);

  it("at 390 px (dark) nothing scrolls sideways: the detail with its agents, and the add form", async () => {
    const context = await signedInContext(browser, base, owner.client, {
      viewport: { width: 390, height: 844 },
      colorScheme: "dark",
    });
    const phone = watch(await context.newPage(), "phone");
    const noSideways = () =>
      phone.evaluate(() => (document.scrollingElement as HTMLElement).scrollWidth <= window.innerWidth + 1);
    await phone.goto(`${base}/w/${wid}/connectors/${connectorId}`);
    await phone.getByRole("form", { name: "Agents that may use Stand-in tools" }).getByLabel("Researcher").waitFor();
    expect(await noSideways()).toBe(true);
    await shot(phone, "connectors-phone-detail-dark");
    await phone.goto(`${base}/w/${wid}/connectors`);
    await phone.getByRole("button", { name: "Add connector" }).click();
    await phone.getByRole("button", { name: "Other MCP server" }).click();
    await phone.getByRole("button", { name: "Add a header" }).click();
    await phone.getByLabel("Header 1 name").waitFor();
    expect(await noSideways()).toBe(true);
    await shot(phone, "connectors-phone-form-dark");
    await context.close();
  }, 60_000);

  it("delete asks first, then the list is empty again", async () => {
    await page.goto(`${base}/w/${wid}/connectors/${connectorId}`);
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Delete the connector Stand-in tools?" });
    await dialog.getByText("1 agent loses its tools at their next message.").waitFor();
    await audit(page, "connectors-delete-dialog");
    await dialog.getByRole("button", { name: "Delete connector" }).click();
    await page.waitForURL(/\/connectors$/);
    await page.getByRole("heading", { name: "No connectors yet" }).waitFor();
    expect((await owner.client.get(`/api/v1/workspaces/${wid}/connectors`)).json().items).toEqual([]);
  }, 60_000);

  it("no console errors and no accessibility violations", () => {
    expect(consoleErrors).toEqual([]);
    expect(a11yViolations).toEqual([]);
  });
});
