import { AppError, ERROR_CODES, type ErrorBody, type ErrorCode } from "@reef/contracts";
import { isDatabaseUnavailable } from "@reef/db";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { describeValidation } from "./validation-text.ts";

// Fastify's own client errors, mapped onto our stable codes.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: "MALFORMED_JSON",
  FST_ERR_CTP_EMPTY_JSON_BODY: "MALFORMED_JSON",
  FST_ERR_CTP_BODY_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "BAD_REQUEST",
  FST_ERR_BAD_URL: "BAD_REQUEST",
  FST_ERR_VALIDATION: "VALIDATION_FAILED",
};

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  MALFORMED_JSON: "The request body is not valid JSON.",
  PAYLOAD_TOO_LARGE: "The request body is too large.",
  UNSUPPORTED_MEDIA_TYPE: "This content type is not accepted here; send application/json.",
  BAD_REQUEST: "The request is malformed.",
  UNAVAILABLE: "Reef cannot reach its database right now. Try again in a few seconds.",
  INTERNAL: "Something went wrong on our side. It has been logged; quote the request id if you report it.",
};

function codeForStatus(status: number): ErrorCode {
  const match = (Object.entries(ERROR_CODES) as [ErrorCode, number][]).find(([, s]) => s === status);
  return match?.[0] ?? (status >= 500 ? "INTERNAL" : "BAD_REQUEST");
}

export function sendError(
  reply: FastifyReply,
  request: FastifyRequest,
  status: number,
  code: ErrorCode | string,
  message: string,
  details?: unknown,
): FastifyReply {
  const body: ErrorBody = { requestId: String(request.id), code, message };
  if (details !== undefined) body.details = details;
  return reply.status(status).type("application/json; charset=utf-8").send(body);
}

/**
 * The single error handler: AppErrors keep their code and message, request
 * validation failures list what was wrong, Fastify's client errors get stable
 * codes, and everything else is a logged 500 with a generic message.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if ("retryAfter" in error && typeof error.retryAfter === "number") {
        reply.header("retry-after", String(error.retryAfter));
      }
      if (error.status >= 500) request.log.error({ err: error }, error.message);
      return sendError(reply, request, error.status, error.code, error.message, error.details);
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      // Plain words with the field named; the per-field details stay for forms to place next to each input.
      const { message, details } = describeValidation(error.validationContext ?? "request", error.validation);
      return sendError(reply, request, 400, "VALIDATION_FAILED", message, details);
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = (error.code && FASTIFY_CODES[error.code]) || codeForStatus(status);
      const message = MESSAGES[code] ?? error.message;
      return sendError(reply, request, ERROR_CODES[code] ?? status, code, message);
    }
    if (isDatabaseUnavailable(error)) {
      // The database restarting or out of reach: retryable, and not a bug to report.
      request.log.warn({ err: error }, "database unavailable");
      reply.header("retry-after", "5");
      return sendError(reply, request, 503, "UNAVAILABLE", MESSAGES.UNAVAILABLE ?? "Unavailable");
    }
    request.log.error({ err: error }, "unhandled error");
    return sendError(reply, request, 500, "INTERNAL", MESSAGES.INTERNAL ?? "Internal error");
  });
}

/** 404 for API paths that match no route. */
export function sendRouteNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(reply, request, 404, "NOT_FOUND", `No route ${request.method} ${request.url.split("?")[0]}.`);
}
