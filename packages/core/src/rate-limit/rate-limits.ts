import { RateLimitedError } from "@reef/contracts";
import type pg from "pg";
import { RateLimiterPostgres, RateLimiterRes } from "rate-limiter-flexible";
import type { AuditService } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";

/** A limit: at most `points` in `durationSec` seconds. */
export interface RateLimit {
  points: number;
  durationSec: number;
}

export type RateLimitClass = "signup_ip" | "login_ip" | "login_account" | "invite_accept" | "api_read" | "api_write";

export type RateLimitSettings = Record<RateLimitClass, RateLimit>;

/** Limits shared across replicas through Postgres (rate-limiter-flexible). */
export interface RateLimits {
  /** Counts one attempt; throws RateLimited once the limit is exceeded. */
  consume(cls: RateLimitClass, key: string, ctx: RequestContext, workspaceId?: string | null): Promise<void>;
  /** Throws RateLimited if `key` has used up its limit, without counting. */
  check(cls: RateLimitClass, key: string): Promise<void>;
  /** Counts a failure (login brute force) without throwing. */
  penalise(cls: RateLimitClass, key: string, ctx: RequestContext): Promise<void>;
  reset(cls: RateLimitClass, key: string): Promise<void>;
}

export function createRateLimits(deps: {
  pool: pg.Pool;
  settings: RateLimitSettings;
  audit: AuditService;
}): RateLimits {
  const limiters = new Map<RateLimitClass, RateLimiterPostgres>();
  const limiter = (cls: RateLimitClass) => {
    let l = limiters.get(cls);
    if (!l) {
      const { points, durationSec } = deps.settings[cls];
      l = new RateLimiterPostgres({
        storeClient: deps.pool,
        storeType: "pool",
        tableName: "rate_limits",
        tableCreated: true,
        keyPrefix: cls,
        points,
        duration: durationSec,
        clearExpiredByTimeout: false,
      });
      limiters.set(cls, l);
    }
    return l;
  };

  const exceeded = async (
    cls: RateLimitClass,
    res: RateLimiterRes,
    ctx: RequestContext,
    workspaceId: string | null,
  ) => {
    // Audit the moment a limit trips, not every rejected request after it.
    if (res.consumedPoints === deps.settings[cls].points + 1) {
      await deps.audit.recordEvent(ctx, {
        workspaceId,
        action: "rate_limit.exceeded",
        outcome: "denied",
        details: { class: cls },
      });
    }
    return new RateLimitedError(res.msBeforeNext / 1000);
  };

  return {
    async consume(cls, key, ctx, workspaceId = null) {
      try {
        await limiter(cls).consume(key);
      } catch (err) {
        if (err instanceof RateLimiterRes) throw await exceeded(cls, err, ctx, workspaceId);
        throw err;
      }
    },
    async check(cls, key) {
      const res = await limiter(cls).get(key);
      if (res && res.consumedPoints >= deps.settings[cls].points) throw new RateLimitedError(res.msBeforeNext / 1000);
    },
    async penalise(cls, key, ctx) {
      let res: RateLimiterRes;
      try {
        res = await limiter(cls).consume(key);
      } catch (err) {
        if (err instanceof RateLimiterRes) return;
        throw err;
      }
      // The failure that uses up the allowance locks the key: audit that moment once.
      if (res.consumedPoints === deps.settings[cls].points) {
        await deps.audit.recordEvent(ctx, {
          workspaceId: null,
          action: "rate_limit.lockout",
          outcome: "denied",
          details: { class: cls },
        });
      }
    },
    async reset(cls, key) {
      await limiter(cls).delete(key);
    },
  };
}
