import { randomUUID } from "node:crypto";
import { AppError, BadRequestError, ForbiddenError, NotFoundError } from "@reef/contracts";
import { type Db, type Tx, withScope } from "@reef/db";
import { type GatewaySessionTarget, resolveGatewayApproval } from "@reef/runtime";
import { appendAudit } from "../audit/audit-service.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";
import type { Vault } from "../vault/vault-service.ts";
import { memberEmailsFor } from "../workspace/member-emails.ts";
import { type Access, AccessDeniedError, type WorkspaceGate } from "../workspace/workspace-access.ts";
import {
  type ApprovalDecision,
  type ApprovalRecord,
  type ApprovalRow,
  type ApprovalStatus,
  approvalRecordId,
  approvalDal as dal,
  type OwnerFilter,
} from "./approval-dal.ts";
import type { ApprovalRelay, ApprovalTurn, ApprovalView, GatewayApprovalRequest } from "./approval-relay.ts";
import { exactEntry, matchAllowlist } from "./exec-allowlist.ts";

/**
 * The working directory as people should read it: relative to the agent's own
 * folder (`~/…`), since the host path tells everyone who sees the approval how
 * Reef's data directory is laid out. Anything outside that folder stays as is.
 */
export function agentRelativeCwd(cwd: string | null, agentId: string): string | null {
  if (!cwd) return cwd;
  const marker = `/agents/${agentId}`;
  const at = cwd.indexOf(marker);
  if (at < 0) return cwd;
  const rest = cwd.slice(at + marker.length);
  if (rest !== "" && !rest.startsWith("/")) return cwd;
  return `~${rest}`;
}

/** Who timeouts, sweeps and the gateway's own settlements are audited as. */
const SYSTEM: RequestContext = { actor: { kind: "system", name: "approvals" } };

const REFUSED =
  "Only the person whose chat asked, or a workspace admin or owner, can decide this approval. You can see it, but not answer it.";

export interface ApprovalServiceDeps {
  db: Db;
  gate: WorkspaceGate;
  /** Seals each request's command with the workspace's data key, like chat messages. */
  vault: Vault;
  /**
   * The workspace's gateway if it runs now. Never starts one: a stopped gateway
   * took its waiting runs with it, so there is nobody to tell.
   */
  gatewayOf: (workspaceId: string) => Promise<GatewaySessionTarget | undefined>;
  /** Workspaces whose gateway runs now (the sweep's scope). */
  runningWorkspaces: () => Promise<string[]>;
  /** How long a request waits for a person before it is denied (REEF_APPROVAL_TIMEOUT_SECONDS). */
  timeoutSeconds: number;
  /** The mailer in force, if any (reminders are sent only with one). */
  mailer: () => Promise<Mailer | undefined>;
  publicUrl: () => Promise<string>;
  /** How long a request waits before the deciders are emailed (once). Default one minute. */
  remindAfterMs?: number;
  /** Sends a decision to a gateway (tests may watch it); default: over its WebSocket control protocol. */
  deliver?: typeof resolveGatewayApproval;
  log?: { warn(obj: object, msg: string): void };
}

/** The status a reader sees: a pending row past its deadline is expired (denied), whoever has not yet written it so. */
function effectiveStatus(row: ApprovalRow, now = Date.now()): ApprovalStatus {
  return row.status === "pending" && row.expiresAt.getTime() <= now ? "expired" : row.status;
}

function ownerFilter(ctx: RequestContext, access: Access): OwnerFilter | undefined {
  if (access.userId) return { userId: access.userId };
  if (ctx.actor.kind === "api_key") return { apiKeyId: ctx.actor.keyId };
  return undefined;
}

/** Whether the caller is the one the run was for (its chat's person, or the API key that started it). */
function isOwn(owner: OwnerFilter | undefined, row: ApprovalRow): boolean {
  if (!owner) return false;
  return "userId" in owner
    ? row.requestedByUserId === owner.userId
    : row.requestedByUserId === null && row.requestedByApiKeyId === owner.apiKeyId;
}

function conflict(row: ApprovalRow): AppError {
  const status = effectiveStatus(row);
  if (status === "expired") {
    return new AppError("APPROVAL_EXPIRED", "This request waited too long and was denied; nobody can decide it now.", {
      details: { status },
    });
  }
  return new AppError("APPROVAL_DECIDED", "Someone already decided this request; the first answer stands.", {
    details: { status, decision: row.decision },
  });
}

/**
 * Approvals: a gateway's requests for a person's yes, relayed by the chat
 * service (`requested` / `resolved`), listed and decided over the API.
 *
 * The agent's exec policy answers what it can at once (allowlisted, or refused
 * by policy); the rest waits for the person chatting or a workspace approver.
 * The first answer wins (a conditional update of a pending row), and reaches
 * the gateway from whichever replica took it. A request nobody answers is
 * denied at its deadline by the process that relayed it, or by any replica's
 * sweep if that process is gone; reads count it as expired either way.
 */
export function createApprovalService(deps: ApprovalServiceDeps) {
  const { db, gate } = deps;
  const remindAfterMs = deps.remindAfterMs ?? 60_000;
  const deliver = deps.deliver ?? resolveGatewayApproval;
  const timers = new Map<string, NodeJS.Timeout[]>();
  let closed = false;

  const scoped = <T>(workspaceId: string, fn: (tx: Tx) => Promise<T>) => withScope(db, { workspaceId }, fn);

  async function toView(tx: Tx, rec: ApprovalRecord, viewer: { own: boolean; decidesAll: boolean }) {
    const { row } = rec;
    const status = effectiveStatus(row);
    const timedOut = status === "expired" && row.status === "pending";
    const view: ApprovalView = {
      id: row.id,
      kind: row.kind,
      agentId: row.agentId,
      agentName: rec.agentName,
      sessionId: row.sessionId,
      subject: await deps.vault.open(tx, row.workspaceId, approvalRecordId(row.id), row.subject),
      cwd: row.cwd,
      requestedBy: row.requestedByUserId
        ? { kind: "user", id: row.requestedByUserId, name: rec.requesterName }
        : row.requestedByApiKeyId
          ? { kind: "api_key", id: row.requestedByApiKeyId, name: rec.requesterName }
          : { kind: "unknown", id: null, name: null },
      status,
      decision: row.decision,
      decidedBy: row.decidedVia === "person" ? { id: row.decidedByUserId, name: rec.deciderName } : null,
      decidedVia: timedOut ? "timeout" : row.decidedVia,
      createdAt: row.createdAt.toISOString(),
      expiresAt: row.expiresAt.toISOString(),
      decidedAt: timedOut ? row.expiresAt.toISOString() : (row.decidedAt?.toISOString() ?? null),
      canDecide: status === "pending" && (viewer.own || viewer.decidesAll),
    };
    return view;
  }

  function clearTimers(id: string) {
    for (const t of timers.get(id) ?? []) clearTimeout(t);
    timers.delete(id);
  }

  function schedule(workspaceId: string, row: ApprovalRow) {
    if (closed) return;
    const at = (ms: number, fn: () => Promise<unknown>) => {
      const t = setTimeout(
        () => {
          fn().catch((err: unknown) =>
            deps.log?.warn({ err, workspaceId, approvalId: row.id }, "approval timer failed"),
          );
        },
        Math.max(0, ms),
      );
      t.unref();
      return t;
    };
    timers.set(row.id, [
      at(row.expiresAt.getTime() - Date.now(), async () => {
        clearTimers(row.id);
        await expire(workspaceId, row.id);
      }),
      at(row.createdAt.getTime() + remindAfterMs - Date.now(), () => remind(workspaceId, row.id)),
    ]);
  }

  /** Tells the workspace's gateway (if it still runs) what was decided; failures are logged: the decision stands. */
  async function tell(
    workspaceId: string,
    request: Pick<ApprovalRow, "gatewayApprovalId" | "kind">,
    decision: "allow-once" | "deny",
    via?: GatewaySessionTarget,
  ) {
    try {
      const target = via ?? (await deps.gatewayOf(workspaceId));
      if (!target) return;
      await deliver(target, { id: request.gatewayApprovalId, kind: request.kind, decision }, { timeoutMs: 10_000 });
    } catch (err) {
      deps.log?.warn(
        { err, workspaceId, gatewayApprovalId: request.gatewayApprovalId },
        "could not deliver an approval decision to the gateway",
      );
    }
  }

  /** Denies a request past its deadline (first writer wins), audited, then tells the gateway. */
  async function expire(workspaceId: string, id: string): Promise<boolean> {
    const row = await scoped(workspaceId, async (tx) => {
      const settled = await dal.settle(
        tx,
        id,
        { status: "expired", decision: null, decidedByUserId: null, decidedVia: "timeout" },
        { withinDeadline: false },
      );
      if (!settled) return undefined;
      await appendAudit(tx, SYSTEM, {
        workspaceId,
        action: "approval.expire",
        targetType: "approval",
        targetId: id,
        outcome: "denied",
        details: { kind: settled.kind, agentId: settled.agentId, sessionId: settled.sessionId },
      });
      return settled;
    });
    if (row) await tell(workspaceId, row, "deny");
    return row !== undefined;
  }

  /** Emails the workspace's deciders (and the person chatting) once about a request still waiting. */
  async function remind(workspaceId: string, id: string): Promise<void> {
    const mailer = await deps.mailer();
    if (!mailer) return;
    const found = await scoped(workspaceId, async (tx) => {
      if (!(await dal.claimNotice(tx, id))) return undefined;
      const rec = await dal.find(tx, workspaceId, id);
      if (!rec) return undefined;
      return { rec, to: await memberEmailsFor(tx, workspaceId, "approvals:decide", rec.row.requestedByUserId) };
    });
    if (!found) return;
    const url = `${(await deps.publicUrl()).replace(/\/$/, "")}/w/${workspaceId}/approvals`;
    const { rec } = found;
    // The command itself stays out of the email: it may hold what the chat holds.
    const text = [
      `${rec.agentName ?? "An agent"} is waiting for a decision: it asked to ${rec.row.kind === "exec" ? "run a command" : "use a plugin action"}${rec.requesterName ? ` in ${rec.requesterName}'s chat` : ""}.`,
      `Unless someone answers by ${rec.row.expiresAt.toUTCString()}, it is denied.`,
      "",
      `Review it: ${url}`,
    ].join("\n");
    for (const to of found.to) {
      await mailer
        .send({ to, subject: "An agent is waiting for your approval", text })
        .catch((err: unknown) => deps.log?.warn({ err, workspaceId, approvalId: id }, "approval reminder not sent"));
    }
  }

  /** What the agent's exec policy answers without a person: run, refuse, or ask. */
  function verdict(policy: { execPolicy: string; execAllowlist: string[] } | undefined, req: GatewayApprovalRequest) {
    if (req.kind !== "exec") return { kind: "ask" as const };
    // An agent deleted while its run waits: nothing may run in its name.
    if (!policy || policy.execPolicy === "deny") return { kind: "deny" as const, why: "policy" };
    if (policy.execPolicy === "allow") return { kind: "allow" as const, why: "policy" };
    if (matchAllowlist(req.subject, policy.execAllowlist) !== undefined)
      return { kind: "allow" as const, why: "allowlist" };
    return policy.execPolicy === "ask" ? { kind: "ask" as const } : { kind: "deny" as const, why: "allowlist" };
  }

  const relay: ApprovalRelay = {
    async requested(turn: ApprovalTurn, req: GatewayApprovalRequest): Promise<ApprovalView | null> {
      // Every operator connection hears every request: only this turn's own session is ours.
      if (!req.sessionKey || req.sessionKey.toLowerCase() !== turn.sessionKey.toLowerCase()) return null;
      const ws = turn.workspaceId;
      const ownView = { own: true, decidesAll: false };
      const first = await scoped(ws, async (tx) => {
        const existing = await dal.findByGatewayId(tx, ws, req.gatewayApprovalId);
        if (existing) return { view: await toView(tx, existing, ownView) };
        const policy = await dal.agentPolicy(tx, ws, turn.agentId);
        const answer = verdict(policy, req);
        if (answer.kind !== "ask") {
          await appendAudit(tx, SYSTEM, {
            workspaceId: ws,
            action: "approval.policy",
            targetType: "agent",
            targetId: turn.agentId,
            outcome: answer.kind === "allow" ? "success" : "denied",
            details: { decision: answer.kind, by: answer.why, sessionId: turn.sessionId },
          });
          return { auto: answer.kind };
        }
        const id = randomUUID();
        const createdAt = new Date();
        const deadline = createdAt.getTime() + deps.timeoutSeconds * 1000;
        // The gateway's own wait may be the shorter one: this row must not outlive it.
        const expiresAt = new Date(req.expiresAtMs && req.expiresAtMs < deadline ? req.expiresAtMs : deadline);
        const row = await dal.insert(tx, {
          id,
          workspaceId: ws,
          gatewayApprovalId: req.gatewayApprovalId,
          kind: req.kind,
          agentId: turn.agentId,
          sessionId: turn.sessionId,
          messageId: turn.messageId,
          requestedByUserId: turn.owner.userId,
          requestedByApiKeyId: turn.owner.apiKeyId,
          subject: await deps.vault.seal(tx, ws, approvalRecordId(id), req.subject),
          cwd: agentRelativeCwd(req.cwd, turn.agentId),
          createdAt,
          expiresAt,
        });
        const rec = row ? await dal.find(tx, ws, row.id) : await dal.findByGatewayId(tx, ws, req.gatewayApprovalId);
        if (!rec) throw new Error("approval row vanished");
        if (row) {
          await appendAudit(tx, SYSTEM, {
            workspaceId: ws,
            action: "approval.request",
            targetType: "approval",
            targetId: row.id,
            // Never the command: the audit trail is not sealed.
            details: {
              kind: req.kind,
              agentId: turn.agentId,
              sessionId: turn.sessionId,
              expiresAt: expiresAt.toISOString(),
            },
          });
        }
        return { view: await toView(tx, rec, ownView), fresh: row };
      });
      if ("auto" in first) {
        await tell(
          ws,
          { gatewayApprovalId: req.gatewayApprovalId, kind: req.kind },
          first.auto === "allow" ? "allow-once" : "deny",
          turn.gateway,
        );
        return null;
      }
      if (first.fresh) schedule(ws, first.fresh);
      return first.view;
    },

    async resolved(turn, gatewayApprovalId, decision): Promise<ApprovalView | null> {
      const ws = turn.workspaceId;
      const out = await scoped(ws, async (tx) => {
        let rec = await dal.findByGatewayId(tx, ws, gatewayApprovalId);
        if (!rec) return null;
        if (rec.row.status === "pending") {
          // Settled in the gateway itself (its own deadline, or no one to ask): the row catches up.
          const status = decision === null ? "expired" : decision === "deny" ? "denied" : "approved";
          const settled = await dal.settle(
            tx,
            rec.row.id,
            { status, decision, decidedByUserId: null, decidedVia: "gateway" },
            { withinDeadline: false },
          );
          if (settled) {
            await appendAudit(tx, SYSTEM, {
              workspaceId: ws,
              action: "approval.decide",
              targetType: "approval",
              targetId: settled.id,
              outcome: status === "approved" ? "success" : "denied",
              details: {
                decision,
                via: "gateway",
                kind: settled.kind,
                agentId: settled.agentId,
                sessionId: settled.sessionId,
              },
            });
            rec = (await dal.find(tx, ws, settled.id)) ?? rec;
          }
        }
        return { id: rec.row.id, view: await toView(tx, rec, { own: true, decidesAll: false }) };
      });
      if (!out) return null;
      if (out.view.status !== "pending") clearTimers(out.id);
      return out.view;
    },
  };

  /** Whether the caller sees this request: their own run's, or any of the workspace's with `approvals:read`. */
  async function reader(ctx: RequestContext, access: Access) {
    return {
      owner: ownerFilter(ctx, access),
      readsAll: await gate.can(access, "approvals:read"),
      decidesAll: await gate.can(access, "approvals:decide"),
    };
  }

  return {
    ...relay,

    /** The workspace's approvals the caller may see, newest first. */
    list(
      ctx: RequestContext,
      workspaceId: string,
      q: { status?: ApprovalStatus | "all" | undefined; cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<ApprovalView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      return gate.run(ctx, workspaceId, "workspace:read", async (tx, access) => {
        const who = await reader(ctx, access);
        if (!who.readsAll && !who.owner) return { items: [], nextCursor: null };
        const rows = await dal.list(tx, {
          workspaceId,
          status: q.status ?? "pending",
          owner: who.readsAll ? undefined : who.owner,
          cursor,
          limit,
        });
        const page = toPage(
          rows,
          limit,
          (r) => r,
          (r) => ({ createdAt: r.row.createdAt.toISOString(), id: r.row.id }),
        );
        const items: ApprovalView[] = [];
        // One after another: the first fills the vault's key cache for the rest.
        for (const rec of page.items) {
          items.push(await toView(tx, rec, { own: isOwn(who.owner, rec.row), decidesAll: who.decidesAll }));
        }
        return { items, nextCursor: page.nextCursor };
      });
    },

    get(ctx: RequestContext, workspaceId: string, id: string): Promise<ApprovalView> {
      return gate.run(ctx, workspaceId, "workspace:read", async (tx, access) => {
        const who = await reader(ctx, access);
        const rec = await dal.find(tx, workspaceId, id);
        const own = rec ? isOwn(who.owner, rec.row) : false;
        if (!rec || !(own || who.readsAll)) throw new NotFoundError("No such approval.");
        return toView(tx, rec, { own, decidesAll: who.decidesAll });
      });
    },

    /**
     * A person's answer. The first one wins: a later answer (or one after the
     * deadline) is 409 with `APPROVAL_DECIDED` / `APPROVAL_EXPIRED`. Decided by
     * the person whose run it is, or by holders of `approvals:decide`; anyone
     * else who can see it gets 403. `allow-always` also adds the exact command
     * to the agent's allowlist (needs `agents:manage`).
     */
    async decide(
      ctx: RequestContext,
      workspaceId: string,
      id: string,
      decision: ApprovalDecision,
    ): Promise<ApprovalView> {
      let refused = false;
      const decided = await gate
        .run(ctx, workspaceId, "workspace:read", async (tx, access) => {
          const who = await reader(ctx, access);
          const rec = await dal.find(tx, workspaceId, id);
          const own = rec ? isOwn(who.owner, rec.row) : false;
          if (!rec || !(own || who.readsAll)) throw new NotFoundError("No such approval.");
          if (!own && !who.decidesAll) {
            refused = true;
            throw new AccessDeniedError(access.role, "approvals:decide");
          }
          if (effectiveStatus(rec.row) !== "pending") throw conflict(rec.row);
          let entry: string | undefined;
          if (decision === "allow-always") {
            await gate.require(access, "agents:manage");
            const subject = await deps.vault.open(tx, workspaceId, approvalRecordId(id), rec.row.subject);
            entry = rec.row.kind === "exec" && rec.row.agentId ? exactEntry(subject) : undefined;
            if (!entry) {
              throw new BadRequestError(
                rec.row.kind === "exec"
                  ? "This command cannot be allowed always: as a single word (or over one line or 500 characters) it would allow more than this command. Allow it once, or add a pattern on the agent's page."
                  : "Only commands can be allowed always.",
                { field: "decision" },
                "VALIDATION_FAILED",
              );
            }
          }
          const settled = await dal.settle(
            tx,
            id,
            {
              status: decision === "deny" ? "denied" : "approved",
              decision,
              decidedByUserId: access.userId,
              decidedVia: "person",
            },
            { withinDeadline: true },
          );
          if (!settled) {
            const now = await dal.find(tx, workspaceId, id);
            throw conflict(now?.row ?? rec.row);
          }
          if (entry && settled.agentId) {
            const added = await dal.addToAllowlist(tx, workspaceId, settled.agentId, entry);
            await appendAudit(tx, ctx, {
              workspaceId,
              action: "agent.allowlist_add",
              targetType: "agent",
              targetId: settled.agentId,
              details: { approvalId: id, added },
            });
          }
          await appendAudit(tx, ctx, {
            workspaceId,
            action: "approval.decide",
            targetType: "approval",
            targetId: id,
            outcome: decision === "deny" ? "denied" : "success",
            details: {
              decision,
              via: "person",
              as: own ? "requester" : "approver",
              kind: settled.kind,
              agentId: settled.agentId,
              sessionId: settled.sessionId,
            },
          });
          const after = (await dal.find(tx, workspaceId, id)) ?? rec;
          return { row: settled, view: await toView(tx, after, { own, decidesAll: who.decidesAll }) };
        })
        .catch((err: unknown) => {
          // The gate audited the refusal; the message says who may decide instead of naming a permission.
          if (refused && err instanceof ForbiddenError) throw new ForbiddenError(REFUSED);
          throw err;
        });
      clearTimers(id);
      await tell(workspaceId, decided.row, decision === "deny" ? "deny" : "allow-once");
      return decided.view;
    },

    /**
     * Any replica's periodic pass over running gateways: denies requests past
     * their deadline whose relaying process is gone, and sends reminders it did
     * not send. @returns how many requests it expired.
     */
    async sweep(): Promise<number> {
      let expired = 0;
      const remindBefore = new Date(Date.now() - remindAfterMs);
      for (const ws of await deps.runningWorkspaces()) {
        const due = await scoped(ws, (tx) => dal.dueForSweep(tx, ws, remindBefore));
        for (const row of due) {
          if (row.expiresAt.getTime() <= Date.now()) {
            clearTimers(row.id);
            if (await expire(ws, row.id)) expired++;
          } else if (!row.notifiedAt) {
            await remind(ws, row.id);
          }
        }
      }
      return expired;
    },

    /** Stops this process's timers (shutdown); another replica's sweep takes over what they would have done. */
    close(): void {
      closed = true;
      for (const id of [...timers.keys()]) clearTimers(id);
    },
  };
}

export type ApprovalService = ReturnType<typeof createApprovalService>;
