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
  /** A cron expression that does not parse (the message says which part). */
  INVALID_CRON: 400,
  /** A time zone that is not an IANA zone name. */
  INVALID_TIMEZONE: 400,
  /** A schedule that would fire more often than the operator's minimum interval. */
  SCHEDULE_TOO_FREQUENT: 400,
  /** A one-off schedule whose time has passed. */
  RUN_AT_IN_PAST: 400,
  /** A notification URL at a private address the operator has not allowed. */
  NOTIFY_URL_NOT_ALLOWED: 400,
  /** A connector URL at a private address the operator has not allowed for connectors. */
  CONNECTOR_URL_NOT_ALLOWED: 400,
  /** A connector URL, transport or catalogue entry Reef cannot use (the message says why). */
  CONNECTOR_INVALID: 400,
  /** A sign-in, reset, confirmation or magic link that is unknown, used, expired, or opened in another browser (the message says which). */
  LINK_INVALID: 400,
  /** A single sign-on attempt the provider or Reef refused (bad state or nonce, IdP error, unsigned assertion); the message says why. */
  SSO_FAILED: 400,
  UNAUTHORIZED: 401,
  /** A wrong or already used second-factor code, or a wrong recovery code. */
  TWO_FACTOR_INVALID: 401,
  /** A webhook call whose signature does not match its trigger's secret. */
  SIGNATURE_INVALID: 401,
  /** A webhook call signed more than five minutes away from Reef's clock. */
  SIGNATURE_EXPIRED: 401,
  FORBIDDEN: 403,
  CSRF_FAILED: 403,
  /** A tool the operator does not let workspace admins grant (platform setting `grantableTools`). */
  TOOL_NOT_GRANTABLE: 403,
  /** Password sign-in is off (the operator requires single sign-on) and this is not a breakglass account. */
  SSO_REQUIRED: 403,
  /** The provider vouched for an email whose domain the operator has not allowed for it. */
  SSO_DOMAIN_NOT_ALLOWED: 403,
  /** The workspace (or the platform) needs a second factor this session was not signed in with. */
  TWO_FACTOR_REQUIRED: 403,
  /** The operator switched MCP connectors off for the whole platform. */
  CONNECTORS_DISABLED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  /** An approval someone already decided: the first answer stands. */
  APPROVAL_DECIDED: 409,
  /** An approval that waited past its deadline and was denied: nobody can decide it now. */
  APPROVAL_EXPIRED: 409,
  /** An operator-set cap (workspaces per person) is reached. */
  LIMIT_REACHED: 409,
  /** A webhook call whose delivery id was already accepted. */
  WEBHOOK_REPLAYED: 409,
  /** A paused trigger or schedule: it accepts no calls and cannot be run now. */
  SCHEDULE_PAUSED: 409,
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
  /** Too many wrong second-factor codes: the account's second factor is locked until `Retry-After`. */
  TWO_FACTOR_LOCKED: 429,
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
