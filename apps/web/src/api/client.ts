import { errorSentence, errorText } from "./error-text.ts";

/** An error answer of the API: its stable code, the message to show, and the HTTP status. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function cookie(name: string): string | undefined {
  return document.cookie
    .split("; ")
    .find((c) => c.startsWith(`${name}=`))
    ?.slice(name.length + 1);
}

/** Headers of a cookie-authenticated request: JSON, and the CSRF double-submit token on mutations. */
export function requestHeaders(method: string): Record<string, string> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (method !== "GET") {
    headers["content-type"] = "application/json";
    // `__Host-` prefixed when Reef is served over https (see the server's csrf.ts).
    const csrf = cookie("__Host-reef_csrf") ?? cookie("reef_csrf");
    if (csrf) headers["x-csrf-token"] = csrf;
  }
  return headers;
}

export async function toApiError(res: Response): Promise<ApiError> {
  let body: { code?: string; message?: string; details?: unknown } = {};
  try {
    body = await res.json();
  } catch {}
  return new ApiError(
    res.status,
    body.code ?? "INTERNAL",
    body.message ?? `The server answered ${res.status}. Try again in a moment.`,
    body.details,
  );
}

/** Calls the Reef API; resolves with the JSON body, rejects with an {@link ApiError}. */
export async function api<T>(
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: requestHeaders(method),
      credentials: "same-origin",
      ...(body === undefined ? (method === "GET" ? {} : { body: "{}" }) : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiError(0, "NETWORK", "Reef cannot be reached. Check your connection and try again.");
  }
  if (!res.ok) throw await toApiError(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** The message to show for any error: a plain sentence for its stable code, and what to do next. */
export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return errorSentence(errorText(err.code, err.message));
  return err instanceof Error && err.message ? err.message : "Something went wrong.";
}

/** Per-field messages from a validation error (`details` is a list of issues, or names one field). */
export function fieldErrors(err: unknown): Record<string, string> {
  if (!(err instanceof ApiError)) return {};
  const out: Record<string, string> = {};
  if (Array.isArray(err.details)) {
    for (const issue of err.details as { path?: string; message?: string }[]) {
      const key = issue.path?.split(".")[0];
      if (key && issue.message) out[key] = issue.message;
    }
  } else {
    const field = (err.details as { field?: string } | undefined)?.field;
    if (field) out[field] = err.message;
  }
  return out;
}
