import { BadRequestError } from "@reef/contracts";
import { and, eq, lt, or, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

/** Opaque keyset cursors: the sort key of the last row, base64url-encoded JSON. */
export function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** What a cursor key must hold, checked before it reaches a query. */
export type CursorKind = "uuid" | "timestamp" | "integer" | "text";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// What encodeCursor writes (toISOString): a four-digit year keeps it inside Postgres' range.
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

function valid(kind: CursorKind, v: unknown): string | undefined {
  const text = typeof v === "number" ? String(v) : typeof v === "string" ? v : undefined;
  if (text === undefined || text.length > 512 || text.includes("\u0000")) return undefined;
  switch (kind) {
    case "uuid":
      return UUID.test(text) ? text : undefined;
    case "timestamp":
      return ISO_TIMESTAMP.test(text) && !Number.isNaN(Date.parse(text)) ? text : undefined;
    case "integer": {
      const n = Number(text);
      return /^\d+$/.test(text) && Number.isSafeInteger(n) ? String(n) : undefined;
    }
    case "text":
      return text;
  }
}

/**
 * Reads a cursor made by {@link encodeCursor}. A cursor is client input: anything
 * that is not the expected JSON object with every key of the expected kind is a
 * 400, so a tampered one never reaches a query (where it would be a 500).
 */
export function decodeCursor<K extends string>(
  cursor: string | undefined,
  shape: Readonly<Record<K, CursorKind>>,
): Record<K, string> | undefined {
  if (!cursor) return undefined;
  const refuse = () =>
    new BadRequestError("The cursor is not valid; start again from the first page.", { field: "cursor" });
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw refuse();
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw refuse();
  const out = {} as Record<K, string>;
  for (const key of Object.keys(shape) as K[]) {
    const v = valid(shape[key], (value as Record<string, unknown>)[key]);
    if (v === undefined) throw refuse();
    out[key] = v;
  }
  return out;
}

export function clampLimit(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? DEFAULT_LIMIT, 1), MAX_LIMIT);
}

/** A page of a keyset-paginated list. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Builds a page from `limit + 1` fetched rows. */
export function toPage<R, T>(
  rows: R[],
  limit: number,
  map: (row: R) => T,
  cursorOf: (row: R) => Record<string, string | number>,
): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept.at(-1);
  return { items: kept.map(map), nextCursor: more && last !== undefined ? encodeCursor(cursorOf(last)) : null };
}

/**
 * The keyset condition for "newest first" lists ordered by (created_at desc, id
 * desc): rows strictly after the cursor's row.
 */
export function olderThan(
  createdAt: PgColumn,
  id: PgColumn,
  cursor: Record<"createdAt" | "id", string> | undefined,
): SQL | undefined {
  if (!cursor) return undefined;
  const at = new Date(cursor.createdAt);
  return or(lt(createdAt, at), and(eq(createdAt, at), lt(id, cursor.id)));
}
