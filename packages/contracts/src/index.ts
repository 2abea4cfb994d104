export * from "./admin.ts";
export * from "./agents.ts";
export {
  AppError,
  BadRequestError,
  CapacityError,
  ConflictError,
  ForbiddenError,
  LimitReachedError,
  NotFoundError,
  QuotaExceededError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  UpstreamError,
} from "./app-error.ts";
export * from "./approvals.ts";
export * from "./audit.ts";
export * from "./auth.ts";
export * from "./chat.ts";
export * from "./common.ts";
export * from "./connectors.ts";
export * from "./egress.ts";
export { ERROR_CODES, type ErrorBody, type ErrorCode, errorBodySchema } from "./error-codes.ts";
export { type HealthBody, healthBodySchema, type ReadinessBody, readinessBodySchema } from "./health.ts";
export * from "./identity.ts";
export * from "./openai.ts";
export * from "./providers.ts";
export * from "./runtime.ts";
export * from "./schedules.ts";
export * from "./settings.ts";
export * from "./workspaces.ts";
