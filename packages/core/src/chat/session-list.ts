import { schema, type Tx } from "@reef/db";
import { and, desc, type SQL, sql } from "drizzle-orm";
import { clampLimit, decodeCursor, encodeCursor, type Page } from "../shared/pagination.ts";
import type { TranscriptSealer } from "./transcript-sealing.ts";

const { chatSessions } = schema;
type SessionRow = typeof chatSessions.$inferSelect;

/** How many rows are read (and their titles opened) at a time while searching. */
const SEARCH_BATCH = 200;

const pinnedKey = sql<number>`(case when ${chatSessions.pinnedAt} is null then 0 else 1 end)`;
const activity = sql`coalesce(${chatSessions.lastMessageAt}, ${chatSessions.createdAt})`;
// Microseconds, as Postgres keeps them: a cursor rounded to milliseconds would skip or repeat rows.
const activityText = sql<string>`to_char(${activity} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * One page of a member's sessions: pinned first, then newest activity first
 * (last message, else creation), keyset-paginated on (pinned, activity, id).
 * With `q`, only sessions whose title contains it (case-insensitive): titles
 * are sealed, so rows are read in order and opened in batches until the page
 * is full, and the cursor is the last row returned, so paging stays exact.
 */
export async function listSessionPage(
  tx: Tx,
  sealer: TranscriptSealer,
  where: SQL | undefined,
  q: { cursor?: string | undefined; limit?: number | undefined; q?: string | undefined },
): Promise<Page<SessionRow>> {
  const limit = clampLimit(q.limit);
  let cursor = decodeCursor(q.cursor, { p: "integer", at: "timestamp", id: "uuid" });
  const needle = q.q?.trim().toLocaleLowerCase() ?? "";
  const batch = needle ? SEARCH_BATCH : limit + 1;
  const found: (SessionRow & { sortAt: string })[] = [];
  for (;;) {
    const after = cursor
      ? sql`(${pinnedKey}, ${activity}, ${chatSessions.id}) < (${Number(cursor.p)}, ${cursor.at}::timestamptz, ${cursor.id}::uuid)`
      : undefined;
    const rows = await tx
      .select({ row: chatSessions, sortAt: activityText })
      .from(chatSessions)
      .where(and(where, after))
      .orderBy(desc(pinnedKey), desc(activity), desc(chatSessions.id))
      .limit(batch);
    for (const { row, sortAt } of rows) {
      const title = await sealer.openTitle(tx, row);
      if (!needle || title.toLocaleLowerCase().includes(needle)) found.push({ ...row, title, sortAt });
      if (found.length > limit) break;
    }
    const last = rows.at(-1);
    if (found.length > limit || rows.length < batch || !last) break;
    cursor = { p: String(last.row.pinnedAt ? 1 : 0), at: last.sortAt, id: last.row.id };
  }
  const more = found.length > limit;
  const kept = found.slice(0, limit);
  const end = kept.at(-1);
  return {
    items: kept.map(({ sortAt: _s, ...row }) => row),
    nextCursor: more && end ? encodeCursor({ p: end.pinnedAt ? 1 : 0, at: end.sortAt, id: end.id }) : null,
  };
}
