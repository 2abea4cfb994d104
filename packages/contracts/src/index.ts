export {
  AppError,
  BadRequestError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
} from "./app-error.ts";
export { ERROR_CODES, type ErrorBody, type ErrorCode, errorBodySchema } from "./error-codes.ts";
export { type HealthBody, healthBodySchema, type ReadinessBody, readinessBodySchema } from "./health.ts";
