import { ERROR_CODES, type ErrorCode } from "./error-codes.ts";

/**
 * The one error family services throw. The HTTP layer renders it as
 * `{ requestId, code, message, details }` with the code's status; anything that
 * is not an AppError is an internal error and is never shown to the client.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, opts: { details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "AppError";
    this.code = code;
    this.status = ERROR_CODES[code];
    this.details = opts.details;
  }
}

/** The codes answered with 400. */
export type BadRequestCode = { [K in ErrorCode]: (typeof ERROR_CODES)[K] extends 400 ? K : never }[ErrorCode];

export class BadRequestError extends AppError {
  constructor(message: string, details?: unknown, code: BadRequestCode = "BAD_REQUEST") {
    super(code, message, { details });
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = "Sign in to continue.") {
    super("UNAUTHORIZED", message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message = "You are not allowed to do this.") {
    super("FORBIDDEN", message);
  }
}

/** Also used for another workspace's resources, so ids never reveal existence. */
export class NotFoundError extends AppError {
  constructor(message = "Not found.") {
    super("NOT_FOUND", message);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: unknown) {
    super("CONFLICT", message, { details });
  }
}

export class RateLimitedError extends AppError {
  /** Seconds until a retry may succeed; sent as `Retry-After`. */
  readonly retryAfter: number;
  constructor(retryAfter: number, message = "Too many requests. Try again later.") {
    super("RATE_LIMITED", message, { details: { retryAfter } });
    this.retryAfter = Math.max(1, Math.ceil(retryAfter));
  }
}

export class UnavailableError extends AppError {
  readonly retryable: boolean;
  constructor(message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super("UNAVAILABLE", message, { details: { retryable: opts.retryable ?? true }, cause: opts.cause });
    this.retryable = opts.retryable ?? true;
  }
}

/** A workspace used up a monthly allowance (messages or tokens); `retryAfter` is the time until it renews. */
export class QuotaExceededError extends AppError {
  readonly retryAfter: number;
  constructor(message: string, details: { limit: string; used: number; max: number; retryAfter: number }) {
    super("QUOTA_EXCEEDED", message, { details });
    this.retryAfter = Math.max(1, Math.ceil(details.retryAfter));
  }
}

/** An operator-set cap is reached (e.g. workspaces per person); `details` names it. */
export class LimitReachedError extends AppError {
  constructor(message: string, details: { limit: string; max: number; used: number }) {
    super("LIMIT_REACHED", message, { details });
  }
}

/**
 * No room to start a gateway: the person's own cap (`RUNTIME_LIMIT_REACHED`, 429)
 * or the whole machine's (`CAPACITY_FULL`, 503). `retryAfter` is sent as `Retry-After`.
 */
export class CapacityError extends AppError {
  readonly retryAfter: number;
  constructor(
    code: "RUNTIME_LIMIT_REACHED" | "CAPACITY_FULL",
    message: string,
    details: { limit: string; max: number; used: number; retryAfter: number; position?: number },
  ) {
    super(code, message, { details });
    this.retryAfter = Math.max(1, Math.ceil(details.retryAfter));
  }
}

/** An upstream the user configured (an LLM provider) failed; the message says why in plain words. */
export class UpstreamError extends AppError {
  constructor(message: string, details?: unknown) {
    super("BAD_GATEWAY", message, { details });
  }
}
