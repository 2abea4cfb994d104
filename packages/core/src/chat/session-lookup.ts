import { ForbiddenError, NotFoundError } from "@reef/contracts";
import { schema, type Tx } from "@reef/db";
import { and, eq, isNull, lt, sql } from "drizzle-orm";
import type { RequestContext } from "../shared/context.ts";
import type { Access } from "../workspace/workspace-access.ts";
import { INTERRUPTED, type Owner } from "./turn-runner.ts";

const { chatMessages, chatSessions } = schema;

type SessionRow = typeof chatSessions.$inferSelect;

/** Whose sessions the caller's are: a person's, or (acting without one) an API key's. */
export function ownerOf(ctx: RequestContext, access: Access): Owner {
  if (access.userId) return { userId: access.userId, apiKeyId: null };
  if (ctx.actor.kind === "api_key") return { userId: null, apiKeyId: ctx.actor.keyId };
  throw new ForbiddenError("Only people and API keys can chat.");
}

/** The condition that a session row is `owner`'s. */
export function ownedBy(owner: Owner) {
  if (owner.userId !== null) return eq(chatSessions.userId, owner.userId);
  return and(isNull(chatSessions.userId), eq(chatSessions.apiKeyId, owner.apiKeyId));
}

/** The condition that a session row is `sessionId`, in the caller's workspace and theirs. */
function callersSession(ctx: RequestContext, access: Access, sessionId: string) {
  return and(
    eq(chatSessions.id, sessionId),
    eq(chatSessions.workspaceId, access.workspaceId),
    ownedBy(ownerOf(ctx, access)),
  );
}

/**
 * Finding a caller's session inside a gated transaction, and settling the
 * answers a dead replica left `streaming` in it (no heartbeat for
 * `staleAfterMs`).
 */
export function createSessionLookup(staleAfterMs: number) {
  /** The settling update (as the CTE `settled`) and the live check that leaves out the rows it settles. */
  function settleSql(tx: Tx, sessionId: string) {
    const stale = new Date(Date.now() - staleAfterMs);
    const settle = tx
      .update(chatMessages)
      .set({ status: "interrupted", error: INTERRUPTED, errorCode: "INTERRUPTED", completedAt: new Date() })
      .where(
        and(
          eq(chatMessages.sessionId, sessionId),
          eq(chatMessages.status, "streaming"),
          lt(chatMessages.heartbeatAt, stale),
        ),
      )
      .returning({ id: chatMessages.id });
    // The statement's reads see the rows as they were before the update, so the ones just settled are left out by id.
    const settled = tx.$with("settled", { id: chatMessages.id }).as(settle.getSQL());
    const live = sql<boolean>`exists (select 1 from ${chatMessages} where ${chatMessages.sessionId} = ${sessionId} and ${chatMessages.status} = 'streaming' and ${chatMessages.id} not in (select id from ${settled}))`;
    return { settle, settled, live };
  }
  /**
   * Marks the session's answers left `streaming` by a Reef that died as cut off,
   * keeping what they said. @returns whether an answer is still really streaming.
   */
  async function settleInterrupted(tx: Tx, sessionId: string): Promise<boolean> {
    const { settle, live } = settleSql(tx, sessionId);
    // `settled` is the name the live check reads (drizzle parenthesises the embedded update).
    const { rows } = await tx.execute<{ live: boolean }>(sql`with settled as ${settle} select ${live} as live`);
    return rows[0]?.live === true;
  }
  async function findSession(tx: Tx, ctx: RequestContext, access: Access, sessionId: string): Promise<SessionRow> {
    const [row] = await tx
      .select()
      .from(chatSessions)
      .where(callersSession(ctx, access, sessionId));
    if (!row) throw new NotFoundError("No such session.");
    return row;
  }

  /**
   * {@link findSession}, settling its dead answers and saying whether one is
   * still arriving (from any replica), in one round trip: every message pays
   * for it. A caller who may not see the session gets NotFound, which rolls
   * the settling back with the transaction. With `newMessageIds`, also the ids
   * for a new question and its answer (in that order), taken from the messages'
   * sequence, so both rows can be written already sealed, and the session's
   * row locked until the transaction ends.
   */
  async function findSessionSettled(
    tx: Tx,
    ctx: RequestContext,
    access: Access,
    sessionId: string,
    opts: { newMessageIds?: boolean } = {},
  ): Promise<{ session: SessionRow; live: boolean; newMessageIds: [number, number] | null }> {
    const { settled, live } = settleSql(tx, sessionId);
    // Two calls in one select list: the order they run in is not promised, so the ids are sorted below.
    const next = sql`nextval(pg_get_serial_sequence('chat_messages', 'id'))`;
    const ids = opts.newMessageIds ? sql<string[]>`array[${next}, ${next}]` : sql<null>`null`;
    const query = tx
      .with(settled)
      .select({ session: chatSessions, live, ids })
      .from(chatSessions)
      .where(callersSession(ctx, access, sessionId));
    // A sender locks the session row first: its writes lock the usage row and the audit chain's head after it,
    // the order in which a rename or a delete (row, then head) takes them too, so the two cannot deadlock.
    const [row] = await (opts.newMessageIds ? query.for("no key update") : query);
    if (!row) throw new NotFoundError("No such session.");
    const newMessageIds = row.ids ? (row.ids.map(Number).sort((a, b) => a - b) as [number, number]) : null;
    return { session: row.session, live: row.live === true, newMessageIds };
  }

  return { findSession, findSessionSettled, settleInterrupted };
}
