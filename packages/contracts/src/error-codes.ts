import { z } from "zod";

/**
 * Stable error codes. Clients (web, cli, scripts) branch on these, never on
 * messages, so a code is never renamed or reused once shipped.
 */
export const ERROR_CODES = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  MALFORMED_JSON: 400,
  /** A provider's base URL changed without its API key: the stored key only goes to the URL it was given for. */
  API_KEY_REQUIRED: 400,
  /** A provider's base URL is not a public address and the operator has not allowed its host. */
  PROVIDER_URL_NOT_ALLOWED: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  CSRF_FAILED: 403,
  /** A tool the operator does not let workspace admins grant (platform setting `grantableTools`). */
  TOOL_NOT_GRANTABLE: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  /** An approval someone already decided: the first answer stands. */
  APPROVAL_DECIDED: 409,
  /** An approval that waited past its deadline and was denied: nobody can decide it now. */
  APPROVAL_EXPIRED: 409,
  /** An operator-set cap (workspaces per person) is reached. */
  LIMIT_REACHED: 409,
  /**
   * Shell or file tools and other members' personal provider keys cannot meet in
   * one workspace: such an agent could read the keys from its gateway's config.
   */
  HOST_ACCESS_EXPOSES_KEYS: 409,
  /** Shell or file tools need gateways inside a sandbox, which this host cannot give (bubblewrap missing). */
  SANDBOX_REQUIRED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  /** The person's running-gateway cap is reached; `Retry-After` says when to try again. */
  RUNTIME_LIMIT_REACHED: 429,
  INTERNAL: 500,
  BAD_GATEWAY: 502,
  UNAVAILABLE: 503,
  /** Reef's running-gateway cap (the machine) is full; `Retry-After` says when to try again. */
  CAPACITY_FULL: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The body of every error response. */
export const errorBodySchema = z.object({
  requestId: z.string(),
  code: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;
