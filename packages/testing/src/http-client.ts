import type { ApiClient } from "./api-client.ts";

/**
 * `client`'s session (its cookies, and its CSRF token echoed as the web app does)
 * over a real port at `base`, with `fetch` like a browser: for what `app.inject()`
 * cannot do, such as reading a chat answer as it streams.
 */
export function httpClient(base: string, client: ApiClient, opts: { onBody?: (text: string) => void } = {}) {
  const headers = () => {
    const h: Record<string, string> = { "content-type": "application/json" };
    h.cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const csrf = client.cookies.get("reef_csrf");
    if (csrf) h["x-csrf-token"] = csrf;
    return h;
  };
  const raw = (method: string, path: string, body?: unknown, signal?: AbortSignal) =>
    fetch(base + path, {
      method,
      headers: headers(),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
    });
  return {
    /** The response as it comes, unread (a stream stays open). */
    raw,
    /** The response read to its end, its body parsed as JSON (null when empty). */
    async json(method: string, path: string, body?: unknown) {
      const res = await raw(method, path, body);
      const text = await res.text();
      opts.onBody?.(text);
      return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
    },
    /** Sends a chat message and returns the raw streaming response. */
    send(wid: string, sid: string, text: string, signal?: AbortSignal) {
      return raw("POST", `/api/v1/workspaces/${wid}/sessions/${sid}/messages`, { text }, signal);
    },
  };
}

export type HttpClient = ReturnType<typeof httpClient>;
