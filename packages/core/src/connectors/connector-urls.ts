import { AppError, BadRequestError, type ConnectorKindValue } from "@reef/contracts";
import { assertCallable } from "../shared/guarded-http.ts";

/** The longest slug: tool names are `<slug>__<tool>`, and models see them. */
export const SLUG_MAX = 30;

/**
 * The gateway-side name of a connector, from its display name: lowercase, a
 * letter first, letters, digits and dashes, at most {@link SLUG_MAX} characters.
 * `taken` holds the workspace's slugs: a clash gets `-2`, `-3`… within the limit.
 */
export function slugFor(name: string, taken: ReadonlySet<string>): string {
  let base = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .replace(/-+$/, "");
  if (!base) base = "connector";
  base = base.slice(0, SLUG_MAX).replace(/-+$/, "");
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) {
    const suffix = `-${n}`;
    const candidate = `${base.slice(0, SLUG_MAX - suffix.length).replace(/-+$/, "")}${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}

export const connectorInvalid = (message: string, field?: string) =>
  new BadRequestError(message, field ? { field } : undefined, "CONNECTOR_INVALID");

export const connectorsDisabled = () =>
  new AppError("CONNECTORS_DISABLED", "The operator has switched MCP connectors off on this Reef.");

export const URL_NOT_ALLOWED_MESSAGE =
  "Reef may not call this address: it is not a public address, and the operator has not allowed its host for connectors.";

/**
 * Checks a URL a workspace admin gave: http(s), no user name or password in it
 * (credentials go in the vault, not in a URL that is shown and logged).
 */
export function checkUrlShape(url: string, field: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw connectorInvalid("Give a full http:// or https:// URL.", field);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw connectorInvalid("The URL must start with http:// or https://.", field);
  }
  if (parsed.username || parsed.password) {
    throw connectorInvalid("Put credentials in the token or headers, not in the URL.", field);
  }
  if (parsed.hash) throw connectorInvalid("The URL must not have a #fragment.", field);
  return parsed;
}

/**
 * Refuses a URL at a private address the operator has not allowed, when it is
 * saved (each call re-checks at connect time too: DNS may change).
 */
export async function requireCallable(url: string, field: string, allowedHosts: readonly string[]): Promise<void> {
  try {
    await assertCallable(url, { allowedHosts, timeoutMs: 5000 });
  } catch {
    throw new BadRequestError(URL_NOT_ALLOWED_MESSAGE, { field }, "CONNECTOR_URL_NOT_ALLOWED");
  }
}

const stripSlash = (url: string) => url.replace(/\/+$/, "");

/** n8n's instance-level MCP endpoint (Settings → Instance-level MCP). */
export function n8nMcpUrl(instanceUrl: string): string {
  return `${stripSlash(instanceUrl)}/mcp-server/http`;
}

/** `<instance>/api/v1/projects/<projectId>/mcp-server/http`: Activepieces' project MCP server. */
const ACTIVEPIECES_MCP = /^(.*?)\/api\/v1\/projects\/([A-Za-z0-9_-]+)\/mcp-server\/http\/?$/;

/** The instance and project an Activepieces MCP URL names, when it has the current form. */
export function activepiecesParts(mcpUrl: string): { instanceUrl: string; projectId: string } | undefined {
  const url = new URL(mcpUrl);
  const m = ACTIVEPIECES_MCP.exec(`${url.origin}${url.pathname}`);
  if (!m?.[2]) return undefined;
  return { instanceUrl: stripSlash(m[1] ?? url.origin), projectId: m[2] };
}

/** What a preset resolves to: the MCP URL and the instance (for workflow listing). */
export function resolvePreset(input: {
  kind: ConnectorKindValue;
  url?: string | null | undefined;
  instanceUrl?: string | null | undefined;
}): { url: string; instanceUrl: string | null } {
  switch (input.kind) {
    case "n8n": {
      if (!input.url && !input.instanceUrl) {
        throw connectorInvalid(
          "Give your n8n instance's address (for example https://n8n.example.com).",
          "instanceUrl",
        );
      }
      const instanceUrl = input.instanceUrl ? stripSlash(input.instanceUrl) : new URL(input.url as string).origin;
      return { url: input.url ?? n8nMcpUrl(instanceUrl), instanceUrl };
    }
    case "activepieces": {
      if (!input.url) {
        throw connectorInvalid(
          "Give the MCP server URL Activepieces shows in the project's settings (…/api/v1/projects/<project>/mcp-server/http).",
          "url",
        );
      }
      const parts = activepiecesParts(input.url);
      return {
        url: input.url,
        instanceUrl: input.instanceUrl
          ? stripSlash(input.instanceUrl)
          : (parts?.instanceUrl ?? new URL(input.url).origin),
      };
    }
    default: {
      if (!input.url) throw connectorInvalid("Give the MCP server's URL.", "url");
      return { url: input.url, instanceUrl: input.instanceUrl ? stripSlash(input.instanceUrl) : null };
    }
  }
}
