/** True when a query failed on a unique constraint (Postgres 23505), as drizzle or pg report it. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code === "23505" || e.cause?.code === "23505";
}
