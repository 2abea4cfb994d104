import { createHash } from "node:crypto";
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

export type RateLimitClass =
  | "signup_ip"
  | "login_ip"
  | "login_account"
  | "invite_accept"
  | "api_read"
  | "api_write"
  | "webhook"
  /** OpenAI-compatible API requests, per API key. */
  | "openai"
  /** Wrong second-factor codes, per account: spending the allowance locks the account's second factor for the window. */
  | "two_factor"
  /** Magic-link and password-reset emails, per address. */
  | "auth_email";

/**
 * `webhook` (calls per trigger) is optional for callers that take no webhook calls; it then allows 60 a minute.
 * `openai` (OpenAI-compatible API requests per key) likewise, allowing 120 a minute;
 * `two_factor` and `auth_email` allow 5 in 15 minutes.
 */
export type RateLimitSettings = Record<
  Exclude<RateLimitClass, "webhook" | "openai" | "two_factor" | "auth_email">,
  RateLimit
> & {
  webhook?: RateLimit;
  openai?: RateLimit;
  two_factor?: RateLimit;
  auth_email?: RateLimit;
};

const DEFAULT_WEBHOOK_LIMIT: RateLimit = { points: 60, durationSec: 60 };
const DEFAULT_OPENAI_LIMIT: RateLimit = { points: 120, durationSec: 60 };
const FIVE_PER_15_MIN: RateLimit = { points: 5, durationSec: 900 };
const OPTIONAL_DEFAULTS = {
  webhook: DEFAULT_WEBHOOK_LIMIT,
  openai: DEFAULT_OPENAI_LIMIT,
  two_factor: FIVE_PER_15_MIN,
  auth_email: FIVE_PER_15_MIN,
} as const;

/** Limits shared across replicas through Postgres (rate-limiter-flexible). */
export interface RateLimits {
  /**
   * Spends one point; throws RateLimitedError when none is left. `workspaceId`
   * names the audit trail of the refusal; a function is only asked when a call
   * is refused (it may throw instead, e.g. NotFound for a caller who does not
   * belong there), so the allowed path does no extra work.
   */
  consume(
    cls: RateLimitClass,
    key: string,
    ctx: RequestContext,
    workspaceId?: string | null | (() => Promise<string | null>),
  ): Promise<void>;
  /**
   * Counts an attempt that is slowed rather than refused: answers how long to hold
   * it, 0 within the allowance and then {@link progressiveDelayMs}. Never throws, so
   * nobody can lock a key out by spending its allowance (sign-in per account).
   * The first held attempt of a window is audited with `details`.
   */
  slowdown(cls: RateLimitClass, key: string, ctx: RequestContext, details?: Record<string, unknown>): Promise<number>;
  reset(cls: RateLimitClass, key: string): Promise<void>;
  /**
   * Counts one point without refusing or auditing: for limits whose caller
   * decides and audits what spending the allowance means (a second-factor lockout).
   */
  spend(cls: RateLimitClass, key: string): Promise<RateLimitState>;
  /** The allowance left for `key`, spending none. */
  peek(cls: RateLimitClass, key: string): Promise<RateLimitState>;
}

/** What is left of an allowance: points (negative once overspent), and seconds until the window ends. */
export interface RateLimitState {
  remaining: number;
  retryAfterSec: number;
}

/** The longest a slowed attempt is held: long enough to make guessing slow, short enough for the owner. */
export const MAX_HOLD_MS = 4_000;
const FIRST_HOLD_MS = 500;

/**
 * The hold for the `attempt`-th attempt in a window whose first `free` attempts
 * pass at once: 0.5 s, doubling with each further attempt, capped at 4 s.
 */
export function progressiveDelayMs(attempt: number, free: number): number {
  if (attempt <= free) return 0;
  return Math.min(FIRST_HOLD_MS * 2 ** Math.min(attempt - free - 1, 16), MAX_HOLD_MS);
}

/**
 * The stored key (the `rate_limits` key column holds 255 characters with the class
 * prefix): a longer one, such as a 254-character email, is stored as its SHA-256,
 * which still counts that exact key and nothing else.
 */
function storedKey(key: string): string {
  return key.length <= 128 ? key : `sha256:${createHash("sha256").update(key).digest("hex")}`;
}

export function createRateLimits(deps: {
  pool: pg.Pool;
  settings: RateLimitSettings;
  audit: AuditService;
}): RateLimits {
  const settingOf = (cls: RateLimitClass): RateLimit =>
    cls in OPTIONAL_DEFAULTS
      ? (deps.settings[cls] ?? OPTIONAL_DEFAULTS[cls as keyof typeof OPTIONAL_DEFAULTS])
      : deps.settings[cls as Exclude<RateLimitClass, keyof typeof OPTIONAL_DEFAULTS>];
  const limiters = new Map<RateLimitClass, RateLimiterPostgres>();
  const limiter = (cls: RateLimitClass) => {
    let l = limiters.get(cls);
    if (!l) {
      const { points, durationSec } = settingOf(cls);
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
    scope: string | null | (() => Promise<string | null>),
  ) => {
    const workspaceId = typeof scope === "function" ? await scope() : scope;
    // Audit the moment a limit trips, not every rejected request after it.
    if (res.consumedPoints === settingOf(cls).points + 1) {
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
        await limiter(cls).consume(storedKey(key));
      } catch (err) {
        if (err instanceof RateLimiterRes) throw await exceeded(cls, err, ctx, workspaceId);
        throw err;
      }
    },
    async slowdown(cls, key, ctx, details = {}) {
      let res: RateLimiterRes;
      try {
        res = await limiter(cls).consume(storedKey(key));
      } catch (err) {
        // Past the allowance the store still counts; the answer just says so.
        if (!(err instanceof RateLimiterRes)) throw err;
        res = err;
      }
      const free = settingOf(cls).points;
      if (res.consumedPoints === free + 1) {
        await deps.audit.recordEvent(ctx, {
          workspaceId: null,
          action: "rate_limit.login_delayed",
          outcome: "denied",
          details: { class: cls, ...details },
        });
      }
      return progressiveDelayMs(res.consumedPoints, free);
    },
    async reset(cls, key) {
      await limiter(cls).delete(storedKey(key));
    },
    async spend(cls, key) {
      let res: RateLimiterRes;
      try {
        res = await limiter(cls).consume(storedKey(key));
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        res = err;
      }
      return {
        remaining: settingOf(cls).points - res.consumedPoints,
        retryAfterSec: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
      };
    },
    async peek(cls, key) {
      const res = await limiter(cls).get(storedKey(key));
      if (!res) return { remaining: settingOf(cls).points, retryAfterSec: 0 };
      return {
        remaining: settingOf(cls).points - res.consumedPoints,
        retryAfterSec: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
      };
    },
  };
}
