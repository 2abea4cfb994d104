import { type GatewaySessionTarget, gatewayRequest } from "./gateway-session-client.ts";

/** A decision as the gateway takes it: Reef keeps "always" for itself (its own allowlist). */
export type GatewayApprovalDecision = "allow-once" | "deny";

/** What became of a decision sent to the gateway. */
export type ResolveOutcome =
  /** The gateway took it: the waiting command runs (or is refused). */
  | "resolved"
  /** The gateway no longer waits for it (answered, expired, or the gateway restarted since). */
  | "gone";

// OpenClaw's answers for an approval that is no longer pending (approval-errors.ts in OpenClaw).
const STALE = /unknown or expired approval|approval expired or not found|approval already resolved|APPROVAL_NOT_FOUND/i;

/**
 * Answers one of a running gateway's pending approvals over its WebSocket
 * control protocol (`exec.approval.resolve` / `plugin.approval.resolve`), as an
 * operator connection. First answer wins in the gateway too: an approval it
 * already settled is `gone`, not an error.
 */
export async function resolveGatewayApproval(
  target: GatewaySessionTarget,
  approval: { id: string; kind: "exec" | "plugin"; decision: GatewayApprovalDecision },
  opts: { timeoutMs?: number } = {},
): Promise<ResolveOutcome> {
  const method = approval.kind === "plugin" ? "plugin.approval.resolve" : "exec.approval.resolve";
  try {
    await gatewayRequest(target, method, { id: approval.id, decision: approval.decision }, opts);
    return "resolved";
  } catch (err) {
    if (err instanceof Error && STALE.test(err.message)) return "gone";
    throw err;
  }
}
