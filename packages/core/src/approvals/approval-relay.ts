import type { approvalSchema } from "@reef/contracts";
import type { z } from "zod";

/** An approval as the API and the chat stream show it. */
export type ApprovalView = z.infer<typeof approvalSchema>;

/** What a gateway said when one of its runs asked for approval (from its `*.approval.requested` event). */
export interface GatewayApprovalRequest {
  /** The gateway's approval id (what `approval.resolve` / `exec.approval.resolve` take). */
  gatewayApprovalId: string;
  kind: "exec" | "plugin";
  /** The command, or the plugin action's title and description. */
  subject: string;
  cwd: string | null;
  /** The gateway session the run belongs to, when the gateway says (matches Reef's `gatewaySessionKey`). */
  sessionKey: string | null;
  /** When the gateway itself gives up waiting (ms since epoch), when it says. */
  expiresAtMs: number | null;
}

/** The turn a request arrived during: whose run it is and where its answer goes. */
export interface ApprovalTurn {
  workspaceId: string;
  sessionId: string;
  sessionKey: string;
  messageId: number;
  agentId: string;
  owner: { userId: string | null; apiKeyId: string | null };
  /** Reaches the workspace's gateway, to deliver a decision or a timeout. */
  gateway: { endpoint: URL; token: string };
}

/**
 * How the chat service hands approval requests it sees on a turn's gateway
 * connection to the approvals service, and learns of decisions. Implemented by
 * `approval-service.ts`; the chat service only relays.
 */
export interface ApprovalRelay {
  /**
   * Records a request seen during `turn` (idempotent per gateway approval id)
   * and starts its timeout. @returns what to show in the turn's stream, or null
   * when the request belongs to another session's run (every operator
   * connection hears every request).
   */
  requested(turn: ApprovalTurn, req: GatewayApprovalRequest): Promise<ApprovalView | null>;
  /** The gateway says a request was resolved (by anyone): the stored row catches up. @returns the updated view, or null if unknown. */
  resolved(
    turn: ApprovalTurn,
    gatewayApprovalId: string,
    decision: "allow-once" | "allow-always" | "deny" | null,
  ): Promise<ApprovalView | null>;
}
