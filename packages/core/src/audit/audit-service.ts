import { type Db, schema, type Tx, withScope } from "@reef/db";
import { and, desc, eq, gt, gte, lt, lte, sql } from "drizzle-orm";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";
import { type ChainedFields, chainHash, chainKey } from "./audit-chain.ts";

const { auditLog, platformAuditLog, auditChainHeads } = schema;

/** What a service says happened; the actor and request facts come from the context. */
export interface AuditEvent {
  workspaceId: string | null;
  action: string;
  targetType?: string;
  targetId?: string;
  outcome?: "success" | "failure" | "denied";
  details?: Record<string, unknown>;
}

/** An audit entry as the API returns it: the hashed fields plus its id. */
export interface AuditEntry extends ChainedFields {
  id: number;
}

function actorOf(ctx: RequestContext): { actorType: ChainedFields["actorType"]; actorId: string | null } {
  switch (ctx.actor.kind) {
    case "user":
      return { actorType: "user", actorId: ctx.actor.userId };
    case "api_key":
      return { actorType: "api_key", actorId: ctx.actor.keyId };
    case "system":
      return { actorType: "system", actorId: ctx.actor.name };
    default:
      return { actorType: "anonymous", actorId: null };
  }
}

/**
 * The statement that takes (creating it if need be) and locks the head of
 * `workspaceId`'s chain (null: the platform's), returning its `last_hash`.
 * A caller with other writes to make runs it as a CTE of one of its own
 * statements, saving the round trip, then appends with {@link appendAuditAfter}.
 */
export function lockAuditChain(tx: Tx, workspaceId: string | null) {
  return tx
    .insert(auditChainHeads)
    .values({ chain: chainKey(workspaceId), lastHash: null })
    .onConflictDoUpdate({ target: auditChainHeads.chain, set: { chain: sql`excluded.chain` } })
    .returning({ lastHash: auditChainHeads.lastHash });
}

/**
 * Appends one entry inside the caller's transaction, so the change and its audit
 * record commit or roll back together. Locks the chain's head row: appends to one
 * chain are serialised, other chains are not blocked.
 */
export async function appendAudit(tx: Tx, ctx: RequestContext, event: AuditEvent): Promise<void> {
  const [head] = await lockAuditChain(tx, event.workspaceId);
  await appendAuditAfter(tx, ctx, event, head?.lastHash ?? null);
}

/**
 * {@link appendAudit} for a caller that has already locked the chain's head in
 * this transaction ({@link lockAuditChain}) and read `prevHash` from it.
 */
export async function appendAuditAfter(
  tx: Tx,
  ctx: RequestContext,
  event: AuditEvent,
  prevHash: string | null,
): Promise<void> {
  const key = chainKey(event.workspaceId);
  const fields: ChainedFields = {
    workspaceId: event.workspaceId,
    occurredAt: new Date().toISOString(),
    ...actorOf(ctx),
    action: event.action,
    targetType: event.targetType ?? null,
    targetId: event.targetId ?? null,
    outcome: event.outcome ?? "success",
    ip: ctx.ip ?? null,
    userAgent: ctx.userAgent?.slice(0, 512) ?? null,
    requestId: ctx.requestId ?? null,
    details: event.details ?? null,
  };
  const hash = chainHash(prevHash, fields);
  const { occurredAt, workspaceId, ...rest } = fields;
  const row = { ...rest, occurredAt: new Date(occurredAt), prevHash, hash } as typeof platformAuditLog.$inferInsert;
  const insert =
    workspaceId === null
      ? tx.insert(platformAuditLog).values(row)
      : tx.insert(auditLog).values({ ...row, workspaceId });
  // The entry and the chain's new head in one statement (every mutation pays for this round trip); drizzle
  // parenthesises the embedded insert.
  await tx.execute(
    sql`with appended as ${insert} update ${auditChainHeads} set ${sql.identifier("last_hash")} = ${hash} where ${auditChainHeads.chain} = ${key}`,
  );
}

export interface AuditQuery {
  action?: string | undefined;
  actor?: string | undefined;
  after?: Date | undefined;
  before?: Date | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

type Row = typeof platformAuditLog.$inferSelect & { workspaceId?: string };

export function toAuditEntry(row: Row): AuditEntry {
  return {
    id: row.id,
    workspaceId: row.workspaceId ?? null,
    occurredAt: row.occurredAt.toISOString(),
    actorType: row.actorType,
    actorId: row.actorId,
    action: row.action,
    targetType: row.targetType,
    targetId: row.targetId,
    outcome: row.outcome,
    ip: row.ip,
    userAgent: row.userAgent,
    requestId: row.requestId,
    details: row.details ?? null,
  };
}

/** Newest first, keyset-paginated on the entry id; `workspaceId` null reads the platform trail. */
export async function queryAudit(tx: Tx, workspaceId: string | null, q: AuditQuery): Promise<Page<AuditEntry>> {
  const limit = clampLimit(q.limit);
  const cursor = decodeCursor(q.cursor, { id: "integer" });
  const table = workspaceId === null ? platformAuditLog : auditLog;
  const conditions = [
    workspaceId === null ? undefined : eq(auditLog.workspaceId, workspaceId),
    q.action ? eq(table.action, q.action) : undefined,
    q.actor ? eq(table.actorId, q.actor) : undefined,
    q.after ? gte(table.occurredAt, q.after) : undefined,
    q.before ? lte(table.occurredAt, q.before) : undefined,
    cursor ? lt(table.id, Number(cursor.id)) : undefined,
  ];
  const rows: Row[] = await tx
    .select()
    .from(table)
    .where(and(...conditions))
    .orderBy(desc(table.id))
    .limit(limit + 1);
  return toPage(rows, limit, toAuditEntry, (r) => ({ id: r.id }));
}

/** A break found by {@link verifyAuditChains}. */
export interface ChainBreak {
  chain: string;
  entryId: number;
  reason: string;
}

/**
 * Recomputes every chain from the start and reports entries whose hash or link
 * does not match, and chains whose head does not match their last entry (a
 * deleted tail). Runs with the owner's view of the data (the CLI passes an
 * owner connection).
 */
export async function verifyAuditChains(db: Db): Promise<{ entries: number; chains: number; breaks: ChainBreak[] }> {
  const breaks: ChainBreak[] = [];
  const last = new Map<string, { hash: string; id: number }>();
  let entries = 0;
  for (const table of [auditLog, platformAuditLog] as const) {
    let afterId = 0;
    for (;;) {
      const rows: Row[] = await db.select().from(table).where(gt(table.id, afterId)).orderBy(table.id).limit(5000);
      if (rows.length === 0) break;
      for (const row of rows) {
        entries++;
        const key = chainKey(row.workspaceId ?? null);
        const expectedPrev = last.get(key)?.hash ?? null;
        if (row.prevHash !== expectedPrev) {
          breaks.push({
            chain: key,
            entryId: row.id,
            reason: "previous hash does not match the preceding entry (an entry was removed or reordered)",
          });
        }
        const { id: _id, ...fields } = toAuditEntry(row);
        if (chainHash(row.prevHash, fields) !== row.hash) {
          breaks.push({ chain: key, entryId: row.id, reason: "entry content does not match its hash (it was edited)" });
        }
        last.set(key, { hash: row.hash, id: row.id });
      }
      afterId = rows.at(-1)?.id ?? afterId;
    }
  }
  const heads = await db.select().from(auditChainHeads);
  for (const head of heads) {
    const tail = last.get(head.chain);
    if (head.lastHash && head.lastHash !== tail?.hash) {
      breaks.push({
        chain: head.chain,
        entryId: tail?.id ?? 0,
        reason: "the chain's newest entries are missing (head does not match)",
      });
    }
  }
  return { entries, chains: last.size, breaks };
}

export interface AuditService {
  /** Writes a security event in a transaction of its own (denials, failed sign-ins). */
  recordEvent(ctx: RequestContext, event: AuditEvent): Promise<void>;
}

export function createAuditService(deps: { db: Db }): AuditService {
  return {
    recordEvent(ctx, event) {
      const scope = event.workspaceId ? { workspaceId: event.workspaceId } : {};
      return withScope(deps.db, scope, (tx) => appendAudit(tx, ctx, event));
    },
  };
}
