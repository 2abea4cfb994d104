/**
 * Where to land after signing in: a path on Reef itself, or undefined. Anything
 * else (another origin, `//host`, `/\host`, control characters, a backslash
 * anywhere, an overlong value) is refused, so a crafted sign-in link (emailed or
 * through a single sign-on provider) cannot send someone off-site with a fresh
 * session. Applied when a `next` is taken in and again when it is used.
 */
export function safeNextPath(next: unknown): string | undefined {
  if (typeof next !== "string" || next.length > 2000) return undefined;
  if (!next.startsWith("/") || next.startsWith("//")) return undefined;
  // Browsers read `\` as `/`; control characters can hide either.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(next)) return undefined;
  return next;
}

/** {@link safeNextPath}, with Reef's home page `/` for anything refused. */
export function safeNext(next: unknown): string {
  return safeNextPath(next) ?? "/";
}
