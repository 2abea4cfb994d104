import { BadRequestError, UpstreamError } from "@reef/contracts";
import { EgressRefusedError, guardedGet } from "../shared/guarded-http.ts";
import { activepiecesParts, URL_NOT_ALLOWED_MESSAGE } from "./connector-urls.ts";

/** A workflow (n8n) or flow (Activepieces) as the connector page lists it. */
export interface WorkflowItem {
  id: string;
  name: string;
  active: boolean;
  availableInMcp: boolean | null;
  updatedAt: string | null;
}

export interface WorkflowPage {
  items: WorkflowItem[];
  nextCursor: string | null;
}

export interface WorkflowSource {
  kind: "n8n" | "activepieces";
  instanceUrl: string;
  /** The MCP URL (Activepieces: names the project whose flows are listed). */
  url: string;
  apiKey: string;
}

const str = (v: unknown): string | null => (typeof v === "string" && v ? v : null);
const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

function mapN8n(raw: unknown): WorkflowItem | undefined {
  const w = obj(raw);
  const id = str(w.id) ?? (typeof w.id === "number" ? String(w.id) : null);
  if (!id) return undefined;
  const settings = obj(w.settings);
  return {
    id,
    name: str(w.name) ?? id,
    active: w.active === true,
    availableInMcp: typeof settings.availableInMCP === "boolean" ? settings.availableInMCP : null,
    updatedAt: str(w.updatedAt),
  };
}

function mapActivepieces(raw: unknown): WorkflowItem | undefined {
  const f = obj(raw);
  const id = str(f.id);
  if (!id) return undefined;
  const version = obj(f.version);
  return {
    id,
    name: str(version.displayName) ?? str(f.displayName) ?? id,
    active: f.status === "ENABLED",
    // Activepieces exposes flows to MCP clients through an "MCP tool" trigger; its list does not say which.
    availableInMcp: null,
    updatedAt: str(f.updated) ?? str(version.updated),
  };
}

/**
 * Lists the workflows the connector's API key can see, through the guarded
 * HTTP client (the same private-address policy as the MCP connection). n8n:
 * `GET /api/v1/workflows` with `X-N8N-API-KEY`; Activepieces: `GET
 * /api/v1/flows?projectId=` with the key as a bearer token. The engine's
 * cursor is passed through. Failures are clear 400/502 errors, never a 500.
 */
export async function listWorkflows(
  source: WorkflowSource,
  q: { cursor?: string | undefined; limit?: number | undefined },
  opts: { allowedHosts: readonly string[]; timeoutMs?: number },
): Promise<WorkflowPage> {
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 100);
  const base = source.instanceUrl.replace(/\/+$/, "");
  let url: URL;
  let headers: Record<string, string>;
  if (source.kind === "n8n") {
    url = new URL(`${base}/api/v1/workflows`);
    headers = { accept: "application/json", "x-n8n-api-key": source.apiKey };
  } else {
    const projectId = activepiecesParts(source.url)?.projectId;
    if (!projectId) {
      throw new BadRequestError(
        "Reef cannot tell the Activepieces project from this MCP URL (expected …/api/v1/projects/<project>/mcp-server/http).",
        { field: "url" },
        "CONNECTOR_INVALID",
      );
    }
    url = new URL(`${base}/api/v1/flows`);
    url.searchParams.set("projectId", projectId);
    headers = { accept: "application/json", authorization: `Bearer ${source.apiKey}` };
  }
  url.searchParams.set("limit", String(limit));
  if (q.cursor) url.searchParams.set("cursor", q.cursor);

  const engine = source.kind === "n8n" ? "n8n" : "Activepieces";
  let res: Awaited<ReturnType<typeof guardedGet>>;
  try {
    res = await guardedGet(url.toString(), {
      headers,
      timeoutMs: opts.timeoutMs ?? 10_000,
      allowedHosts: opts.allowedHosts,
      maxRedirects: 0,
    });
  } catch (err) {
    if (err instanceof EgressRefusedError) {
      throw new BadRequestError(URL_NOT_ALLOWED_MESSAGE, { field: "instanceUrl" }, "CONNECTOR_URL_NOT_ALLOWED");
    }
    if ((err as Error).name === "TimeoutError" || (err as Error).name === "AbortError") {
      throw new UpstreamError(`${engine} did not answer within 10 seconds.`, { reason: "timeout" });
    }
    throw new UpstreamError(`${engine} could not be reached at ${base}.`, { reason: "unreachable" });
  }
  if (res.status === 401 || res.status === 403) {
    throw new UpstreamError(`${engine} refused the API key (HTTP ${res.status}): check it on the connector.`, {
      reason: "auth_failed",
      status: res.status,
    });
  }
  if (res.status < 200 || res.status >= 300) {
    throw new UpstreamError(`${engine} answered HTTP ${res.status} to the workflow list.`, {
      reason: "upstream_status",
      status: res.status,
    });
  }
  let body: Record<string, unknown>;
  try {
    body = obj(JSON.parse(res.text));
  } catch {
    throw new UpstreamError(`${engine}'s answer is not JSON: is ${base} the instance's address?`, {
      reason: "not_json",
    });
  }
  if (!Array.isArray(body.data)) {
    throw new UpstreamError(`${engine}'s answer has no workflow list: is ${base} the instance's address?`, {
      reason: "unexpected_shape",
    });
  }
  const map = source.kind === "n8n" ? mapN8n : mapActivepieces;
  const items = body.data.map(map).filter((w): w is WorkflowItem => w !== undefined);
  const next = source.kind === "n8n" ? body.nextCursor : body.next;
  return { items, nextCursor: str(next) };
}
