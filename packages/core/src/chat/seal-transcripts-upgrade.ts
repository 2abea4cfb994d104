import { type Db, schema, type Tx, withScope } from "@reef/db";
import { and, asc, eq, gt, inArray, ne, sql } from "drizzle-orm";
import type { Vault } from "../vault/vault-service.ts";
import { createTranscriptSealer } from "./transcript-sealing.ts";

const { workspaces, chatSessions, chatMessages } = schema;

/** Rows sealed per transaction: short transactions, so chats carry on while the upgrade runs. */
export const SEAL_BATCH = 500;
/** Sessions whose messages one query looks through. */
const SESSIONS_PER_QUERY = 100;

export interface SealTranscriptsResult {
  /** Messages whose content this run sealed. */
  messages: number;
  /** Session titles this run sealed. */
  titles: number;
  /** Workspaces in which it sealed anything. */
  workspaces: number;
}

/**
 * The upgrade step that seals transcripts written before sealing existed:
 * every message and session title not yet marked sealed, workspace by
 * workspace (each in its own scope, so row-level security holds throughout),
 * in batches of {@link SEAL_BATCH} rows per transaction.
 *
 * Idempotent and safe to run on several replicas at once: rows are claimed with
 * `for update skip locked` and updated only while still unsealed, so each is
 * sealed exactly once, and a replica never waits for another. An answer still
 * `streaming` (written by a Reef that predates sealing, during a rolling
 * update) is left for the next run: its writer may still be saving it in clear.
 * `signal` stops it between batches (shutdown); what is done stays done.
 */
export async function sealExistingTranscripts(deps: {
  db: Db;
  vault: Vault;
  batchSize?: number;
  signal?: AbortSignal;
}): Promise<SealTranscriptsResult> {
  const { db } = deps;
  const batch = deps.batchSize ?? SEAL_BATCH;
  const sealer = createTranscriptSealer(deps.vault);
  const result: SealTranscriptsResult = { messages: 0, titles: 0, workspaces: 0 };

  /** Where a pass over some sessions' messages has got to, in the order of their index (session, id). */
  type Position = { sessionId: string; id: number } | undefined;

  /**
   * Seals the next batch of the messages of `sessionIds` after `from`. They are
   * found through the sessions' index, in its order: a pass visits each message
   * once, where filtering on the workspace would scan the whole table per workspace.
   */
  async function sealMessages(tx: Tx, workspaceId: string, sessionIds: string[], from: Position) {
    const rows = await tx
      .select({ id: chatMessages.id, sessionId: chatMessages.sessionId, content: chatMessages.content })
      .from(chatMessages)
      .where(
        and(
          inArray(chatMessages.sessionId, sessionIds),
          from
            ? sql`(${chatMessages.sessionId}, ${chatMessages.id}) > (${from.sessionId}::uuid, ${from.id})`
            : undefined,
          eq(chatMessages.workspaceId, workspaceId),
          eq(chatMessages.sealed, false),
          ne(chatMessages.status, "streaming"),
        ),
      )
      .orderBy(asc(chatMessages.sessionId), asc(chatMessages.id))
      .limit(batch)
      .for("update", { skipLocked: true });
    if (rows.length) {
      const sealed: string[] = [];
      for (const r of rows) sealed.push(await sealer.sealMessage(tx, workspaceId, r.sessionId, r.id, r.content));
      // One statement per batch: a round trip per row makes a large upgrade several times slower.
      await tx.execute(sql`
        update ${chatMessages} set content = v.content, sealed = true
        from unnest(${sql.param(rows.map((r) => r.id))}::bigint[], ${sql.param(sealed)}::text[]) as v(id, content)
        where ${chatMessages.id} = v.id and not ${chatMessages.sealed}`);
    }
    const last = rows.at(-1);
    return { count: rows.length, next: last && { sessionId: last.sessionId, id: last.id } };
  }

  async function sealTitles(tx: Tx, workspaceId: string, sessionIds: string[]): Promise<number> {
    const rows = await tx
      .select({ id: chatSessions.id, title: chatSessions.title })
      .from(chatSessions)
      .where(
        and(
          inArray(chatSessions.id, sessionIds),
          eq(chatSessions.workspaceId, workspaceId),
          eq(chatSessions.titleSealed, false),
        ),
      )
      .for("update", { skipLocked: true });
    if (rows.length === 0) return 0;
    const sealed: string[] = [];
    for (const r of rows) sealed.push(await sealer.sealTitle(tx, workspaceId, r.id, r.title));
    await tx.execute(sql`
      update ${chatSessions} set title = v.title, title_sealed = true
      from unnest(${sql.param(rows.map((r) => r.id))}::uuid[], ${sql.param(sealed)}::text[]) as v(id, title)
      where ${chatSessions.id} = v.id and not ${chatSessions.titleSealed}`);
    return rows.length;
  }

  const inScope = <T>(workspaceId: string, fn: (tx: Tx) => Promise<T>) => withScope(db, { workspaceId }, fn);

  async function sealWorkspace(workspaceId: string): Promise<{ titles: number; messages: number }> {
    const sessions = await inScope(workspaceId, (tx) =>
      tx
        .select({ id: chatSessions.id, titleSealed: chatSessions.titleSealed })
        .from(chatSessions)
        .where(eq(chatSessions.workspaceId, workspaceId)),
    );
    let titles = 0;
    const unsealed = sessions.filter((r) => !r.titleSealed).map((r) => r.id);
    for (let i = 0; i < unsealed.length && !deps.signal?.aborted; i += batch) {
      const ids = unsealed.slice(i, i + batch);
      titles += await inScope(workspaceId, (tx) => sealTitles(tx, workspaceId, ids));
    }
    let messages = 0;
    for (let i = 0; i < sessions.length; i += SESSIONS_PER_QUERY) {
      const ids = sessions.slice(i, i + SESSIONS_PER_QUERY).map((r) => r.id);
      let from: Position;
      // Until a batch comes back short: done, or the rest is another replica's (locked rows are skipped).
      for (;;) {
        if (deps.signal?.aborted) return { titles, messages };
        const done = await inScope(workspaceId, (tx) => sealMessages(tx, workspaceId, ids, from));
        messages += done.count;
        if (done.count < batch) break;
        from = done.next;
      }
    }
    return { titles, messages };
  }

  let after: string | undefined;
  for (;;) {
    // Operators' scope lists workspaces (never their content), a page at a time.
    const page = await withScope(db, { platform: true }, (tx) =>
      tx
        .select({ id: workspaces.id })
        .from(workspaces)
        .where(after ? gt(workspaces.id, after) : undefined)
        .orderBy(asc(workspaces.id))
        .limit(1000),
    );
    for (const { id } of page) {
      if (deps.signal?.aborted) return result;
      const { titles, messages } = await sealWorkspace(id);
      result.titles += titles;
      result.messages += messages;
      if (titles || messages) result.workspaces++;
    }
    if (page.length < 1000) return result;
    after = page.at(-1)?.id;
  }
}
