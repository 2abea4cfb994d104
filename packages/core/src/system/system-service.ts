import type { ReadinessBody } from "@reef/contracts";
import type { Database } from "@reef/db";

const CHECK_TIMEOUT_MS = 2_000;

function timeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Platform health as probes and `reef status` see it. */
export interface SystemService {
  readiness(): Promise<ReadinessBody>;
}

export interface SystemServiceDeps {
  database: Pick<Database, "ping" | "migrationStatus">;
  onCheckFailed?: (check: string, err: unknown) => void;
}

export function createSystemService(deps: SystemServiceDeps): SystemService {
  return {
    async readiness() {
      const checks: ReadinessBody["checks"] = {
        database: { ok: false },
        migrations: { ok: false, pending: [] },
      };
      try {
        await timeout(deps.database.ping(), CHECK_TIMEOUT_MS, "database ping");
        checks.database.ok = true;
      } catch (err) {
        // The cause may name hosts or users: it is logged, never sent.
        checks.database.error = "database unreachable";
        deps.onCheckFailed?.("database", err);
      }
      if (checks.database.ok) {
        try {
          const status = await timeout(deps.database.migrationStatus(), CHECK_TIMEOUT_MS, "migration check");
          checks.migrations = { ok: status.pending.length === 0, pending: status.pending };
        } catch (err) {
          deps.onCheckFailed?.("migrations", err);
        }
      }
      const ready = checks.database.ok && checks.migrations.ok;
      return { status: ready ? "ready" : "not_ready", checks };
    },
  };
}
