import { setTimeout as sleep } from "node:timers/promises";
import type { AppError } from "@reef/contracts";
import type { AuditService } from "../audit/audit-service.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext } from "../shared/context.ts";
import { verifyPassword } from "./passwords.ts";
import type { UserRow } from "./sign-in.ts";

/**
 * Holds a password guess against the account `email` back as long as sign-in
 * would: every place that checks a password shares sign-in's per-account
 * counter, so guessing through a side door is no faster than at the sign-in page.
 */
export async function holdPasswordGuess(rateLimits: RateLimits, ctx: RequestContext, email: string): Promise<void> {
  const key = email.toLowerCase();
  const holdMs = await rateLimits.slowdown("login_account", key, ctx, { email: key });
  if (holdMs > 0) await sleep(holdMs);
}

/** How a wrong password is recorded and refused where it was asked for. */
export interface WrongPassword {
  /** The audit entry's action (outcome `failure`, target the user). */
  action: string;
  details: Record<string, unknown>;
  /** The refusal thrown to the caller. */
  error: () => AppError;
}

/**
 * Proves a signed-in person's current password before a sensitive change,
 * held back like sign-in ({@link holdPasswordGuess}). A wrong one is audited and
 * refused as `wrong` says; a right one resets the account's guess counter, as a
 * successful sign-in does.
 */
export async function provePassword(
  deps: { rateLimits: RateLimits; audit: AuditService },
  ctx: RequestContext,
  user: UserRow,
  password: string,
  wrong: WrongPassword,
): Promise<void> {
  await holdPasswordGuess(deps.rateLimits, ctx, user.email);
  if (!(await verifyPassword(user.passwordHash, password))) {
    await deps.audit.recordEvent(ctx, {
      workspaceId: null,
      action: wrong.action,
      outcome: "failure",
      targetType: "user",
      targetId: user.id,
      details: wrong.details,
    });
    throw wrong.error();
  }
  await deps.rateLimits.reset("login_account", user.email.toLowerCase());
}
