/** A placeholder: `{{body}}` or `{{body.a.b}}` (segments are keys or array indexes). */
const PLACEHOLDER = /\{\{\s*body((?:\.[A-Za-z0-9_$-]+)*)\s*\}\}/g;

function show(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function lookup(body: unknown, path: string[]): unknown {
  let at: unknown = body;
  for (const key of path) {
    if (at === null || typeof at !== "object") return undefined;
    // Own keys only: `{{body.constructor}}` or `__proto__` read nothing.
    if (!Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/**
 * Renders a webhook schedule's prompt from a call's JSON body: `{{body}}` is the
 * whole body (as JSON), `{{body.a.b}}` a value inside it (strings as they are,
 * objects and arrays as JSON, missing as nothing). Plain substitution: nothing
 * in a template or a body is ever evaluated.
 */
export function renderPrompt(template: string, body: unknown): string {
  return template.replace(PLACEHOLDER, (_match, dotted: string) =>
    show(lookup(body, dotted ? dotted.slice(1).split(".") : [])),
  );
}
