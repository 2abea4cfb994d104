import { type ExecPolicy, schema, type Tx } from "@reef/db";
import { and, desc, eq, isNull, lte, or, type SQL, sql } from "drizzle-orm";
import { olderThan } from "../shared/pagination.ts";

const { approvals, agents, users, apiKeys } = schema;

export type ApprovalRow = typeof approvals.$inferSelect;
export type ApprovalStatus = (typeof schema.APPROVAL_STATUSES)[number];
export type ApprovalDecision = (typeof schema.APPROVAL_DECISIONS)[number];

/** A row with the names the view shows. */
export interface ApprovalRecord {
  row: ApprovalRow;
  agentName: string | null;
  requesterName: string | null;
  deciderName: string | null;
}

/** Binds an approval's sealed subject to its own row: it does not open anywhere else. */
export const approvalRecordId = (approvalId: string) => `approval:${approvalId}`;

const requester = sql<string | null>`coalesce(${users.name}, ${apiKeys.name})`.as("requester_name");
const decider = sql<string | null>`(select u.name from users u where u.id = ${approvals.decidedByUserId})`.as(
  "decider_name",
);

function selectRecords(tx: Tx) {
  return tx
    .select({ row: approvals, agentName: agents.name, requesterName: requester, deciderName: decider })
    .from(approvals)
    .leftJoin(agents, eq(agents.id, approvals.agentId))
    .leftJoin(users, eq(users.id, approvals.requestedByUserId))
    .leftJoin(apiKeys, eq(apiKeys.id, approvals.requestedByApiKeyId));
}

/** Still waiting: pending and not past its deadline. */
export const isLive = sql`${approvals.status} = 'pending' and ${approvals.expiresAt} > now()`;

/** Which statuses a list asks for, with a pending row past its deadline counted as expired. */
export function statusFilter(status: ApprovalStatus | "all"): SQL | undefined {
  switch (status) {
    case "all":
      return undefined;
    case "pending":
      return isLive;
    case "expired":
      return or(
        eq(approvals.status, "expired"),
        and(eq(approvals.status, "pending"), lte(approvals.expiresAt, sql`now()`)),
      );
    default:
      return eq(approvals.status, status);
  }
}

/** Whose approvals a caller sees when not every one of the workspace's. */
export type OwnerFilter = { userId: string } | { apiKeyId: string };

function ownedBy(owner: OwnerFilter): SQL {
  return "userId" in owner
    ? eq(approvals.requestedByUserId, owner.userId)
    : (and(isNull(approvals.requestedByUserId), eq(approvals.requestedByApiKeyId, owner.apiKeyId)) as SQL);
}

export const approvalDal = {
  async insert(tx: Tx, values: typeof approvals.$inferInsert): Promise<ApprovalRow | undefined> {
    const [row] = await tx
      .insert(approvals)
      .values(values)
      .onConflictDoNothing({ target: [approvals.workspaceId, approvals.gatewayApprovalId] })
      .returning();
    return row;
  },

  async findByGatewayId(tx: Tx, workspaceId: string, gatewayApprovalId: string): Promise<ApprovalRecord | undefined> {
    const [r] = await selectRecords(tx).where(
      and(eq(approvals.workspaceId, workspaceId), eq(approvals.gatewayApprovalId, gatewayApprovalId)),
    );
    return r;
  },

  async find(tx: Tx, workspaceId: string, id: string): Promise<ApprovalRecord | undefined> {
    const [r] = await selectRecords(tx).where(and(eq(approvals.workspaceId, workspaceId), eq(approvals.id, id)));
    return r;
  },

  /** Newest first, keyset-paginated on (createdAt, id). */
  list(
    tx: Tx,
    q: {
      workspaceId: string;
      status: ApprovalStatus | "all";
      owner?: OwnerFilter | undefined;
      cursor?: Record<"createdAt" | "id", string> | undefined;
      limit: number;
    },
  ): Promise<ApprovalRecord[]> {
    return selectRecords(tx)
      .where(
        and(
          eq(approvals.workspaceId, q.workspaceId),
          statusFilter(q.status),
          q.owner ? ownedBy(q.owner) : undefined,
          olderThan(approvals.createdAt, approvals.id, q.cursor),
        ),
      )
      .orderBy(desc(approvals.createdAt), desc(approvals.id))
      .limit(q.limit + 1);
  },

  /**
   * The one write that decides: only a row still pending and within its
   * deadline changes, so of two answers (or an answer and the timeout) exactly
   * one wins. @returns the decided row, or undefined when it was not pending.
   */
  async settle(
    tx: Tx,
    id: string,
    set: {
      status: Exclude<ApprovalStatus, "pending">;
      decision: ApprovalDecision | null;
      decidedByUserId: string | null;
      decidedVia: "person" | "timeout" | "gateway";
    },
    opts: { withinDeadline: boolean },
  ): Promise<ApprovalRow | undefined> {
    const [row] = await tx
      .update(approvals)
      .set({ ...set, decidedAt: new Date() })
      .where(and(eq(approvals.id, id), opts.withinDeadline ? isLive : eq(approvals.status, "pending")))
      .returning();
    return row;
  },

  /** Claims the one reminder email of a row still waiting. @returns whether this caller sends it. */
  async claimNotice(tx: Tx, id: string): Promise<boolean> {
    const rows = await tx
      .update(approvals)
      .set({ notifiedAt: new Date() })
      .where(and(eq(approvals.id, id), isLive, isNull(approvals.notifiedAt)))
      .returning({ id: approvals.id });
    return rows.length > 0;
  },

  /** A workspace's approvals that need the sweep: past their deadline, or waiting long enough for a reminder. */
  dueForSweep(tx: Tx, workspaceId: string, remindBefore: Date): Promise<ApprovalRow[]> {
    return tx
      .select()
      .from(approvals)
      .where(
        and(
          eq(approvals.workspaceId, workspaceId),
          eq(approvals.status, "pending"),
          or(
            lte(approvals.expiresAt, sql`now()`),
            and(isNull(approvals.notifiedAt), lte(approvals.createdAt, remindBefore)),
          ),
        ),
      )
      .limit(100);
  },

  async agentPolicy(
    tx: Tx,
    workspaceId: string,
    agentId: string,
  ): Promise<{ execPolicy: ExecPolicy; execAllowlist: string[] } | undefined> {
    const [a] = await tx
      .select({ execPolicy: agents.execPolicy, execAllowlist: agents.execAllowlist })
      .from(agents)
      .where(and(eq(agents.workspaceId, workspaceId), eq(agents.id, agentId)));
    return a;
  },

  /**
   * Appends one entry to an agent's exec allowlist (once). The agents domain
   * owns the column; this is the one write approvals make to it, for "allow
   * always", audited by the caller in the same transaction.
   */
  async addToAllowlist(tx: Tx, workspaceId: string, agentId: string, entry: string): Promise<boolean> {
    const rows = await tx
      .update(agents)
      .set({ execAllowlist: sql`array_append(${agents.execAllowlist}, ${entry})`, updatedAt: new Date() })
      .where(
        and(
          eq(agents.workspaceId, workspaceId),
          eq(agents.id, agentId),
          sql`not (${entry} = any(${agents.execAllowlist}))`,
          sql`coalesce(array_length(${agents.execAllowlist}, 1), 0) < 200`,
        ),
      )
      .returning({ id: agents.id });
    return rows.length > 0;
  },
};
