import { schema } from "@reef/db";
import type { RuntimeDriver } from "@reef/runtime";
import { sql } from "drizzle-orm";
import type { createRuntimeRows } from "./runtime-rows.ts";

const { runtimes } = schema;

/**
 * After a Reef restart: keeps (adopts) runtimes the driver still sees running or paused (the next use resumes a
 * paused one), and marks the rest stopped, releasing claims a dead process left behind. Audited per runtime.
 */
export async function reconcileRuntimes(
  { platform, handleOf, verifyEndpoint, transition }: ReturnType<typeof createRuntimeRows>,
  driver: RuntimeDriver,
  opts: { claimTtlMs: number; instanceId: string },
): Promise<{ adopted: string[]; cleaned: string[] }> {
  const rows = await platform((tx) =>
    tx.select().from(runtimes).where(sql`${runtimes.state} in ('running', 'starting', 'stopping')`),
  );
  const adopted: string[] = [];
  const cleaned: string[] = [];
  for (const row of rows) {
    const claimStale =
      !row.claimedAt || Date.now() - row.claimedAt.getTime() > opts.claimTtlMs || row.claimedBy === opts.instanceId;
    if (row.state !== "running" && !claimStale) continue;
    const handle = handleOf(row);
    const status = handle ? await driver.poll(handle) : ({ status: "exited", code: null } as const);
    // Adopted only if what answers on its endpoint is still the gateway itself.
    const trusted = handle && driver.verify ? !(await verifyEndpoint(handle)) : true;
    if (row.state === "running" && (status.status === "running" || status.status === "paused") && trusted) {
      adopted.push(row.workspaceId);
      continue;
    }
    if (handle) await driver.stop(handle, { graceful: false }).catch(() => {});
    await transition(
      row.workspaceId,
      {
        state: "stopped",
        handle: null,
        endpoint: null,
        tokenSealed: null,
        claimedBy: null,
        claimedAt: null,
        stoppedAt: new Date(),
      },
      {
        action: "runtime.reconcile",
        details: { from: row.state, found: status.status },
      },
    );
    cleaned.push(row.workspaceId);
  }
  return { adopted, cleaned };
}
