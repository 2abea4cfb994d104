import { schema, type Tx } from "@reef/db";
import { and, eq, inArray, isNull, or } from "drizzle-orm";
import type { Action } from "../authz/permissions.ts";

const { users, workspaceMembers, rolePermissions } = schema;

/**
 * The email addresses (each once) of the workspace's active members whose role
 * may do `action`, and of `alsoUserId` when they are an active member too: the
 * people to email about something that only they can act on (an approval to
 * decide, a schedule that keeps failing).
 */
export async function memberEmailsFor(
  tx: Tx,
  workspaceId: string,
  action: Action,
  alsoUserId: string | null,
): Promise<string[]> {
  const roles = tx
    .select({ role: rolePermissions.role })
    .from(rolePermissions)
    .where(eq(rolePermissions.action, action));
  const rows = await tx
    .select({ email: users.email })
    .from(workspaceMembers)
    .innerJoin(users, eq(users.id, workspaceMembers.userId))
    .where(
      and(
        eq(workspaceMembers.workspaceId, workspaceId),
        isNull(users.deactivatedAt),
        or(inArray(workspaceMembers.role, roles), alsoUserId ? eq(users.id, alsoUserId) : undefined),
      ),
    );
  return [...new Set(rows.map((r) => r.email))];
}
