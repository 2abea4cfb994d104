import type { ProviderKind } from "@reef/db";
import { EgressRefusedError, type GuardedResponse, guardedGet } from "../shared/guarded-http.ts";

/** What Reef knows about each kind of provider. */
export interface ProviderKindInfo {
  /** The vendor's API base URL; none for `openai-compatible`, which must be given one. */
  defaultBaseUrl: string | undefined;
  keyRequired: boolean;
  /** The OpenClaw model API the gateway speaks to it. */
  api: "openai-completions" | "anthropic-messages";
}

export const PROVIDER_KIND_INFO: Record<ProviderKind, ProviderKindInfo> = {
  openai: { defaultBaseUrl: "https://api.openai.com/v1", keyRequired: true, api: "openai-completions" },
  anthropic: { defaultBaseUrl: "https://api.anthropic.com", keyRequired: true, api: "anthropic-messages" },
  openrouter: { defaultBaseUrl: "https://openrouter.ai/api/v1", keyRequired: true, api: "openai-completions" },
  ollama: { defaultBaseUrl: "http://127.0.0.1:11434/v1", keyRequired: false, api: "openai-completions" },
  "openai-compatible": { defaultBaseUrl: undefined, keyRequired: false, api: "openai-completions" },
};

/** Why a provider could not be reached or used, in words a user can act on. */
export type ProbeFailure = "bad_key" | "unreachable" | "timeout" | "not_found" | "upstream_error" | "not_allowed";

export type ProbeResult =
  | { ok: true; models: string[]; latencyMs: number }
  | { ok: false; reason: ProbeFailure; message: string; latencyMs: number };

/**
 * The one answer for every base URL Reef will not call, whatever listens
 * there: the same words for a closed port, a database, Reef itself or a
 * redirect into a private network, so answers cannot map the network.
 */
export const NOT_ALLOWED_MESSAGE =
  "Reef does not call this base URL: its host is not a public address. If the provider runs on this machine or a private network (a local Ollama, for example), ask the operator to allow its host and port under Admin → Settings → Provider hosts.";

/** A GET as the probe needs it; the default is {@link guardedGet} under the operator's allow-list. */
export type ProbeTransport = (
  url: string,
  init: { headers: Record<string, string>; timeoutMs: number },
) => Promise<GuardedResponse>;

export interface ProbeOptions {
  timeoutMs: number;
  /** Non-public hosts the operator allows (`host` or `host:port`). */
  allowedHosts?: readonly string[] | undefined;
  /** Replaces the guarded network call (unit tests). */
  transport?: ProbeTransport | undefined;
}

function modelsUrl(kind: ProviderKind, baseUrl: string): string {
  // Anthropic's base URL has no version segment; the others end in /v1 (or their own prefix).
  return kind === "anthropic" ? `${baseUrl}/v1/models` : `${baseUrl}/models`;
}

function authHeaders(kind: ProviderKind, apiKey: string | undefined): Record<string, string> {
  if (!apiKey) return {};
  if (kind === "anthropic") return { "x-api-key": apiKey, "anthropic-version": "2023-06-01" };
  return { authorization: `Bearer ${apiKey}` };
}

/**
 * Asks a provider for its model list: the cheapest call that proves the URL and
 * key work. Never throws; a failure comes back as a reason and a message that
 * says what to fix. The call goes through the outbound address policy, and the
 * key is sent only to the provider's own origin (never along a redirect away from it).
 */
export async function probeProvider(
  input: { kind: ProviderKind; baseUrl: string; apiKey: string | undefined },
  opts: ProbeOptions = { timeoutMs: 10_000 },
): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const url = modelsUrl(input.kind, input.baseUrl);
  const transport: ProbeTransport =
    opts.transport ?? ((u, init) => guardedGet(u, { ...init, allowedHosts: opts.allowedHosts ?? [] }));
  let res: GuardedResponse;
  try {
    res = await transport(url, {
      headers: { accept: "application/json", ...authHeaders(input.kind, input.apiKey) },
      timeoutMs: opts.timeoutMs,
    });
  } catch (err) {
    if (err instanceof EgressRefusedError) {
      return { ok: false, reason: "not_allowed", message: NOT_ALLOWED_MESSAGE, latencyMs: elapsed() };
    }
    const name = (err as Error).name;
    if (name === "TimeoutError" || name === "AbortError") {
      return {
        ok: false,
        reason: "timeout",
        message: `${input.baseUrl} did not answer within ${Math.round(opts.timeoutMs / 1000)} s.`,
        latencyMs: elapsed(),
      };
    }
    // No socket error code in the message: which one it was says what listens there.
    return {
      ok: false,
      reason: "unreachable",
      message: `Could not connect to ${input.baseUrl}. Check the base URL.`,
      latencyMs: elapsed(),
    };
  }
  const text = res.text;
  if (res.status === 401 || res.status === 403) {
    return {
      ok: false,
      reason: "bad_key",
      message: `The provider rejected the API key (HTTP ${res.status}). Check that the key is correct and active.`,
      latencyMs: elapsed(),
    };
  }
  if (res.status === 404) {
    return {
      ok: false,
      reason: "not_found",
      message: `The provider has no model list at ${url} (HTTP 404). Check the base URL (OpenAI-compatible servers usually end in /v1).`,
      latencyMs: elapsed(),
    };
  }
  if (res.status < 200 || res.status >= 300) {
    return {
      ok: false,
      reason: "upstream_error",
      message: `The provider answered HTTP ${res.status}. Try again later, or check its status page.`,
      latencyMs: elapsed(),
    };
  }
  let models: string[] = [];
  try {
    const body = JSON.parse(text) as { data?: { id?: unknown }[]; models?: { name?: unknown }[] };
    models = (body.data ?? [])
      .map((m) => m.id)
      .filter((id): id is string => typeof id === "string" && id.length > 0 && id.length <= 200);
  } catch {
    return {
      ok: false,
      reason: "upstream_error",
      message: `${url} did not answer with a model list (not JSON). Check the base URL.`,
      latencyMs: elapsed(),
    };
  }
  return { ok: true, models: [...new Set(models)].sort().slice(0, 500), latencyMs: elapsed() };
}

/** `••••` and the last four characters: enough to recognise a key, never to use it. */
export function maskKey(last4: string | null): string | null {
  return last4 === null ? null : `••••${last4}`;
}
