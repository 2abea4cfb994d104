import type { CONNECTOR_TEST_ERROR_CODES } from "@reef/contracts";
import type { Connector, ConnectorKind } from "../api/types.ts";

/** What each kind of connector is called on the page. */
export const KIND_LABEL: Record<ConnectorKind, string> = {
  mcp: "MCP server",
  n8n: "n8n",
  activepieces: "Activepieces",
  catalog: "Operator catalogue",
};

/** The presets offered when adding a connector (catalogue entries come after them). */
export const PRESETS: { kind: Exclude<ConnectorKind, "catalog">; title: string; blurb: string }[] = [
  {
    kind: "n8n",
    title: "n8n",
    blurb: "Let agents find and run the n8n workflows you mark as available in MCP.",
  },
  {
    kind: "activepieces",
    title: "Activepieces",
    blurb: "Let agents use your Activepieces project's flows and pieces through its MCP server.",
  },
  {
    kind: "mcp",
    title: "Other MCP server",
    blurb: "Any server speaking the Model Context Protocol over Streamable HTTP or SSE.",
  },
];

type TestErrorCode = (typeof CONNECTOR_TEST_ERROR_CODES)[number];

/** Why a connection test failed, in plain words, and what to check: one entry per code of the contract. */
export const TEST_ERROR_TEXT: Record<TestErrorCode, string> = {
  URL_NOT_ALLOWED:
    "Reef only connects to public addresses, and this one is on a private network (or its name does not resolve). An operator can allow its host under Admin → Settings → Connectors.",
  UNREACHABLE:
    "Nothing answered at this address. Check the URL, and that the server is running and reachable from Reef's machine.",
  AUTH_FAILED:
    "The server refused the credentials. Check the token or headers; for n8n, copy a fresh access token from Settings → Instance-level MCP.",
  NOT_MCP:
    "Something answered, but not as an MCP server. Check the path (n8n: /mcp-server/http) and the transport (Streamable HTTP or SSE).",
  TIMEOUT:
    "The server did not answer in time. Try again; if it keeps happening, check that it is up and not overloaded.",
  PROTOCOL_ERROR: "The server answered, but its MCP handshake or tool list failed.",
};

/** The sentence for a test error code (unknown codes fall back to the server's message). */
export function testErrorText(code: string | undefined, message: string | undefined): string {
  const known = code ? (TEST_ERROR_TEXT as Record<string, string>)[code] : undefined;
  return known ?? message ?? "The test failed.";
}

/** The stored outcome of the last test ("AUTH_FAILED: the server said…") as a plain sentence. */
export function lastTestText(stored: string): string {
  const m = /^([A-Z_]+): ([\s\S]*)$/.exec(stored);
  return m ? testErrorText(m[1], m[2]) : stored;
}

/** The host (and port) of a URL, for the list: the full URL may carry a project id or a token. */
export function hostOf(url: string | null): string {
  if (!url) return "";
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** The address shown for a connector: its instance for presets, else its MCP URL. */
export function addressOf(c: Connector): string {
  return c.kind === "catalog" ? "Runs inside the workspace" : hostOf(c.instanceUrl ?? c.url);
}

/** "2 minutes ago", "3 days ago": when the last test ran. */
export function ago(iso: string): string {
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  if (Math.abs(s) < 60) return rtf.format(-s, "second");
  if (Math.abs(s) < 3600) return rtf.format(-Math.round(s / 60), "minute");
  if (Math.abs(s) < 86_400) return rtf.format(-Math.round(s / 3600), "hour");
  return rtf.format(-Math.round(s / 86_400), "day");
}

/** The tools agents may be given: the allow-list when set, else what the last test found. */
export function knownTools(c: Connector): string[] {
  return c.toolAllowlist ?? c.tools?.map((t) => t.name) ?? [];
}
