import { z } from "zod";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const port = z.coerce.number().int().min(0).max(65_535);
const postgresUrl = z
  .string()
  .url()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), "must be a postgres:// or postgresql:// URL");

/**
 * The root secret: 32 random bytes, as base64 (44 characters) or hex (64).
 * Every other secret (database role password, vault data keys) is derived from
 * or wrapped by it.
 */
export const secretKeySchema = z
  .string()
  .trim()
  .transform((v, ctx) => {
    const bytes = /^[0-9a-f]{64}$/i.test(v) ? Buffer.from(v, "hex") : Buffer.from(v, "base64");
    if (bytes.length !== 32 || (!/^[0-9a-f]{64}$/i.test(v) && bytes.toString("base64") !== v)) {
      ctx.addIssue({ code: "custom", message: "must be 32 bytes encoded as base64 (44 characters) or hex (64)" });
      return z.NEVER;
    }
    return bytes;
  });

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
const ALLOWED_HOST = /^(?:(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d{1,5})?|[0-9a-f]*:[0-9a-f:.]*:[0-9a-f:.]*)$/;

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** A rate limit written as `<points>/<window>`, e.g. `10/15m` (window units s, m, h, d). */
export const rateLimitSchema = z
  .string()
  .trim()
  .regex(/^\d+\/\d+[smhd]$/, "must look like 10/15m: points per window (s, m, h or d)")
  .transform((v) => {
    const [points, window] = v.split("/") as [string, string];
    const unit = window.slice(-1) as keyof typeof UNIT_SECONDS;
    return { points: Number(points), durationSec: Number(window.slice(0, -1)) * UNIT_SECONDS[unit] };
  })
  .refine((v) => v.points >= 1 && v.durationSec >= 1, "points and window must be at least 1");

/** Every setting Reef reads, with its default. Parsed once at boot. */
export const configSchema = z.object({
  port: port.default(7420),
  host: z.string().min(1).default("127.0.0.1"),
  dataDir: z.string().min(1).default("./.reef"),
  /**
   * Where the embedded database and gateway runtimes live when Reef runs as root.
   * Unset: the data dir if their unprivileged OS users can enter it, else
   * `/var/lib/reef/<instance>` (recorded in the data dir's `service-dir` file).
   */
  serviceDir: z.string().min(1).optional(),
  publicUrl: z.string().url().optional(),
  databaseUrl: postgresUrl.optional(),
  databaseAppUrl: postgresUrl.optional(),
  databasePoolSize: z.coerce.number().int().min(1).max(500).default(10),
  embeddedPostgresPort: port.default(0),
  secretKey: secretKeySchema.optional(),
  /**
   * Old root keys, still accepted while `reef rotate-keys` moves everything to
   * `secretKey`: comma-separated in the environment, a string or an array in a file.
   */
  secretKeyPrevious: z
    .union([z.string(), z.array(z.string())])
    .transform((v, ctx) => {
      const parts = (Array.isArray(v) ? v : v.split(",")).map((p) => p.trim()).filter(Boolean);
      const keys: Buffer[] = [];
      for (const [i, part] of parts.entries()) {
        const key = secretKeySchema.safeParse(part);
        if (!key.success) {
          ctx.addIssue({ code: "custom", message: `key ${i + 1}: ${key.error.issues[0]?.message ?? "invalid key"}` });
          return z.NEVER;
        }
        keys.push(key.data);
      }
      return keys;
    })
    .optional(),
  logLevel: z.enum(LOG_LEVELS).default("info"),
  logFormat: z.enum(["auto", "json", "pretty"]).default("auto"),
  bodyLimitBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .max(100 * 1024 * 1024)
    .default(1024 * 1024),
  shutdownTimeoutMs: z.coerce.number().int().min(0).max(600_000).default(10_000),
  smtpUrl: z
    .string()
    .url()
    .refine((v) => /^smtps?:\/\//.test(v), "must be an smtp:// or smtps:// URL")
    .optional(),
  smtpFrom: z.string().min(3).default("Reef <reef@localhost>"),
  /**
   * Bearer token a Prometheus scraper sends to `GET /metrics`
   * (`Authorization: Bearer <token>`). Unset: `/metrics` answers 404.
   */
  metricsToken: z
    .string()
    .min(24, "use at least 24 characters (e.g. openssl rand -hex 32)")
    .max(512)
    .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
    .optional(),
  /**
   * Hosts on this machine or a private network that providers may use (a local
   * Ollama, say): `host` or `host:port`, comma-separated in the environment.
   * Reef refuses every other non-public address as a provider's base URL.
   */
  providerAllowedHosts: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((h) => h.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.string().regex(ALLOWED_HOST, "must be a host or host:port ([v6]:port for IPv6)")).max(100))
    .default([]),
  /**
   * The tool groups workspace admins may grant agents (`web`, `files`, `shell`),
   * comma-separated in the environment. Files and shell take effect only on
   * sandboxed runtimes. Unset: web only, and operators may widen it in the admin page.
   */
  grantableTools: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((t) => t.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.enum(["web", "files", "shell"])).max(3))
    .optional(),
  /** How long an agent's request for approval waits for a person before it is denied. */
  approvalTimeoutSeconds: z.coerce.number().int().min(10).max(86_400).default(300),
  /** Run schedules and webhook triggers in this process (every replica may; each firing runs once). */
  schedulerEnabled: z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]).default(true),
  /** The shortest interval a cron schedule may fire at (seconds; tests use 1). */
  scheduleMinIntervalSeconds: z.coerce.number().int().min(1).max(86_400).default(300),
  /** Runs this process executes at once. */
  schedulerConcurrency: z.coerce.number().int().min(1).max(100).default(4),
  /** Retries of a failed run (with exponential backoff from `scheduleRetryDelaySeconds`) before it ends failed. */
  scheduleRetryLimit: z.coerce.number().int().min(0).max(10).default(2),
  scheduleRetryDelaySeconds: z.coerce.number().int().min(1).max(3600).default(30),
  /** Failed runs in a row after which the schedule's creator and the workspace admins are emailed. */
  scheduleFailureAlertAfter: z.coerce.number().int().min(1).max(100).default(3),
  /** How often workers look for due firings (seconds; fractions allowed down to 0.5). */
  schedulerPollSeconds: z.coerce.number().min(0.5).max(60).default(1),
  /**
   * Whether workspaces may add MCP connectors (operators may also switch them
   * off in the admin page). Off: no connector reaches any gateway.
   */
  connectorsEnabled: z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]).default(true),
  /**
   * Non-public hosts MCP connectors may point at (`host` or `host:port`,
   * comma-separated in the environment); every other private address is refused.
   */
  connectorAllowedHosts: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((h) => h.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.string().regex(ALLOWED_HOST, "must be a host or host:port ([v6]:port for IPv6)")).max(100))
    .default([]),
  /**
   * A JSON file listing the stdio MCP servers workspaces may add (run inside
   * their runtime): `[{ id, name, description, command, args }]`. Only the
   * operator writes commands; workspace admins pick entries.
   */
  mcpCatalogFile: z.string().min(1).optional(),
  /**
   * Process driver: an absolute directory holding the catalogue's stdio
   * servers (`node /opt/reef-mcp/<server>/index.js`), mounted read-only into
   * every gateway's sandbox at the same path. Checked at start: not Reef's
   * data or runtime directories, nothing in it writable by group or others.
   */
  mcpServersDir: z.string().min(1).optional(),
  /**
   * Password sign-in off for everyone except breakglass accounts (`reef
   * create-admin`): people sign in with a configured SSO provider. Operators
   * may also switch it in the admin page unless it is set here.
   */
  requireSso: z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]).default(false),
  /** Every account needs a second factor (TOTP) to sign in with a password or a magic link. */
  requireTwoFactor: z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]).default(false),
  /**
   * Accept OIDC issuers and SAML endpoints over plain http (an IdP on a trusted
   * internal network, or tests). Off: https only.
   */
  ssoAllowHttp: z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]).default(false),
  /** Wrong second-factor codes one account may enter per window before it is locked out for the window. */
  rateLimitTwoFactor: rateLimitSchema.prefault("5/15m"),
  /** Magic-link and password-reset emails one address may be sent per window. */
  rateLimitAuthEmail: rateLimitSchema.prefault("5/15m"),
  /** Requests to the OpenAI-compatible API one API key may make, as points per window. */
  rateLimitOpenai: rateLimitSchema.prefault("120/1m"),
  /** Calls one webhook trigger accepts, as points per window. */
  rateLimitWebhook: rateLimitSchema.prefault("60/1m"),
  /**
   * Hosts on this machine or a private network that gateways may reach through
   * Reef's egress proxy (an intranet wiki, an internal MCP server): `host` or
   * `host:port`, comma-separated in the environment. Separate from provider
   * hosts: allowing a local Ollama for LLM calls must not open raw TCP to it
   * for every agent. Every other non-public address is refused.
   */
  egressAllowedHosts: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((h) => h.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.string().regex(ALLOWED_HOST, "must be a host or host:port ([v6]:port for IPv6)")).max(100))
    .default([]),
  runtimeDriver: z.enum(["process", "docker", "kubernetes"]).default("process"),
  /**
   * Process-driver gateways run inside bubblewrap. `auto`: wherever the host
   * allows (elsewhere unsandboxed, and agents get no shell or file tools);
   * `required`: Reef refuses to start without it.
   */
  sandbox: z.enum(["auto", "required"]).default("auto"),
  /**
   * Where gateways in containers or pods reach this Reef (its LLM proxy is
   * served under `/internal` there), e.g. `http://reef.reef.svc:7420`. Unset:
   * such gateways get no way to call their models through Reef.
   */
  runtimeCallbackUrl: z
    .string()
    .url()
    .refine((v) => /^https?:\/\//.test(v), "must be an http:// or https:// URL")
    .optional(),
  /** The tag deploy/docker/build-images.sh builds (OpenClaw from npm at the pinned version). */
  runtimeImage: z.string().min(1).default("reef-gateway:2026.9.6"),
  dockerSocket: z.string().min(1).default("/var/run/docker.sock"),
  /**
   * Reef's own container (name or id) when Reef runs in Docker next to its
   * gateways (compose): the docker driver then connects it to each workspace's
   * network and reaches gateways by container name instead of a published port.
   */
  dockerReefContainer: z.string().min(1).optional(),
  kubernetesNamespace: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a Kubernetes namespace name")
    .default("reef-runtimes"),
  /** Idle minutes before a workspace's gateway is stopped (memory freed; the next message starts it cold). */
  runtimeIdleTimeoutMinutes: z.coerce
    .number()
    .min(1)
    .max(24 * 60)
    .default(240),
  /**
   * Idle minutes before it is paused (frozen: no CPU, memory kept unless the host swaps it out, the next message
   * resumes it in about a second); 0: never. Drivers that cannot pause (kubernetes) only stop.
   */
  runtimePauseAfterMinutes: z.coerce
    .number()
    .int()
    .min(0)
    .max(24 * 60)
    .default(10),
  /**
   * Minutes a gateway stays paused before its memory is moved out to swap, where the host has swap and the driver
   * can (process driver with control groups): far less memory, a slower first answer on resume.
   */
  runtimeSwapOutAfterMinutes: z.coerce
    .number()
    .int()
    .min(0)
    .max(24 * 60)
    .default(30),
  runtimeStartTimeoutSeconds: z.coerce.number().int().min(10).max(600).default(120),
  runtimeMemoryMb: z.coerce.number().int().min(512).max(65_536).default(2048),
  /**
   * CPU cores one gateway may use (a CFS quota; process driver as root, docker,
   * kubernetes). 2, not 1: a gateway's start is a burst over several threads,
   * and one core made cold starts 1.3x slower (21.4 s against 16.5 s, measured).
   */
  runtimeCpus: z.coerce.number().min(0.1).max(64).default(2),
  /** Processes and threads one gateway's tree may have (a gateway idles at about 60). */
  runtimePids: z.coerce.number().int().min(128).max(65_536).default(1024),
  /** Workspaces one person may own (0: no limit). */
  maxWorkspacesPerUser: z.coerce.number().int().min(0).max(10_000).default(5),
  /** Gateways running at once in the workspaces one person owns (0: no limit). */
  maxRuntimesPerUser: z.coerce.number().int().min(0).max(10_000).default(3),
  /** Gateways running at once on this Reef (0: no limit); unset: from the machine's memory. */
  maxRuntimes: z.coerce.number().int().min(0).max(100_000).optional(),
  /** Messages per workspace per month; unset means unlimited. */
  quotaMonthlyMessages: z.coerce.number().int().min(1).optional(),
  /** Prompt plus completion tokens per workspace per month; unset means unlimited. */
  quotaMonthlyTokens: z.coerce.number().int().min(1).optional(),
  sessionTtlHours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 366)
    .default(24 * 14),
  inviteTtlHours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24 * 7),
  rateLimitSignupIp: rateLimitSchema.prefault("10/1h"),
  rateLimitLoginIp: rateLimitSchema.prefault("30/15m"),
  // Sign-in attempts per account that pass at once; later ones are held (0.5 s doubling to 4 s), never refused.
  rateLimitLoginAccount: rateLimitSchema.prefault("5/15m"),
  rateLimitInviteAccept: rateLimitSchema.prefault("20/15m"),
  rateLimitApiRead: rateLimitSchema.prefault("1200/1m"),
  rateLimitApiWrite: rateLimitSchema.prefault("300/1m"),
  trustProxy: z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]).default(false),
});

export type ConfigInput = z.input<typeof configSchema>;
/** Parsed config before the secret key is resolved. */
export type ParsedConfig = z.output<typeof configSchema>;

/** Environment variable for each setting; the config file uses the camelCase keys. */
export const ENV_NAMES: Record<keyof ParsedConfig, string> = {
  port: "REEF_PORT",
  host: "REEF_HOST",
  dataDir: "REEF_DATA_DIR",
  serviceDir: "REEF_SERVICE_DIR",
  publicUrl: "REEF_PUBLIC_URL",
  databaseUrl: "DATABASE_URL",
  databaseAppUrl: "REEF_DATABASE_APP_URL",
  databasePoolSize: "REEF_DATABASE_POOL_SIZE",
  embeddedPostgresPort: "REEF_EMBEDDED_POSTGRES_PORT",
  secretKey: "REEF_SECRET_KEY",
  secretKeyPrevious: "REEF_SECRET_KEY_PREVIOUS",
  logLevel: "REEF_LOG_LEVEL",
  logFormat: "REEF_LOG_FORMAT",
  bodyLimitBytes: "REEF_BODY_LIMIT_BYTES",
  shutdownTimeoutMs: "REEF_SHUTDOWN_TIMEOUT_MS",
  trustProxy: "REEF_TRUST_PROXY",
  smtpUrl: "REEF_SMTP_URL",
  smtpFrom: "REEF_SMTP_FROM",
  metricsToken: "REEF_METRICS_TOKEN",
  providerAllowedHosts: "REEF_PROVIDER_ALLOWED_HOSTS",
  egressAllowedHosts: "REEF_EGRESS_ALLOWED_HOSTS",
  grantableTools: "REEF_GRANTABLE_TOOLS",
  approvalTimeoutSeconds: "REEF_APPROVAL_TIMEOUT_SECONDS",
  schedulerEnabled: "REEF_SCHEDULER_ENABLED",
  scheduleMinIntervalSeconds: "REEF_SCHEDULE_MIN_INTERVAL_SECONDS",
  schedulerConcurrency: "REEF_SCHEDULER_CONCURRENCY",
  scheduleRetryLimit: "REEF_SCHEDULE_RETRY_LIMIT",
  scheduleRetryDelaySeconds: "REEF_SCHEDULE_RETRY_DELAY_SECONDS",
  scheduleFailureAlertAfter: "REEF_SCHEDULE_FAILURE_ALERT_AFTER",
  schedulerPollSeconds: "REEF_SCHEDULER_POLL_SECONDS",
  rateLimitWebhook: "REEF_RATE_LIMIT_WEBHOOK",
  connectorsEnabled: "REEF_CONNECTORS_ENABLED",
  connectorAllowedHosts: "REEF_CONNECTOR_ALLOWED_HOSTS",
  mcpCatalogFile: "REEF_MCP_CATALOG_FILE",
  mcpServersDir: "REEF_MCP_SERVERS_DIR",
  rateLimitOpenai: "REEF_RATE_LIMIT_OPENAI",
  requireSso: "REEF_REQUIRE_SSO",
  requireTwoFactor: "REEF_REQUIRE_TWO_FACTOR",
  ssoAllowHttp: "REEF_SSO_ALLOW_HTTP",
  rateLimitTwoFactor: "REEF_RATE_LIMIT_TWO_FACTOR",
  rateLimitAuthEmail: "REEF_RATE_LIMIT_AUTH_EMAIL",
  runtimeDriver: "REEF_RUNTIME_DRIVER",
  sandbox: "REEF_SANDBOX",
  runtimeCallbackUrl: "REEF_RUNTIME_CALLBACK_URL",
  runtimeImage: "REEF_RUNTIME_IMAGE",
  dockerSocket: "REEF_DOCKER_SOCKET",
  dockerReefContainer: "REEF_DOCKER_REEF_CONTAINER",
  kubernetesNamespace: "REEF_KUBERNETES_NAMESPACE",
  runtimeIdleTimeoutMinutes: "REEF_RUNTIME_IDLE_TIMEOUT_MINUTES",
  runtimePauseAfterMinutes: "REEF_RUNTIME_PAUSE_AFTER_MINUTES",
  runtimeSwapOutAfterMinutes: "REEF_RUNTIME_SWAP_OUT_AFTER_MINUTES",
  runtimeStartTimeoutSeconds: "REEF_RUNTIME_START_TIMEOUT_SECONDS",
  runtimeMemoryMb: "REEF_RUNTIME_MEMORY_MB",
  runtimeCpus: "REEF_RUNTIME_CPUS",
  runtimePids: "REEF_RUNTIME_PIDS",
  maxWorkspacesPerUser: "REEF_MAX_WORKSPACES_PER_USER",
  maxRuntimesPerUser: "REEF_MAX_RUNTIMES_PER_USER",
  maxRuntimes: "REEF_MAX_RUNTIMES",
  quotaMonthlyMessages: "REEF_QUOTA_MONTHLY_MESSAGES",
  quotaMonthlyTokens: "REEF_QUOTA_MONTHLY_TOKENS",
  sessionTtlHours: "REEF_SESSION_TTL_HOURS",
  inviteTtlHours: "REEF_INVITE_TTL_HOURS",
  rateLimitSignupIp: "REEF_RATE_LIMIT_SIGNUP_IP",
  rateLimitLoginIp: "REEF_RATE_LIMIT_LOGIN_IP",
  rateLimitLoginAccount: "REEF_RATE_LIMIT_LOGIN_ACCOUNT",
  rateLimitInviteAccept: "REEF_RATE_LIMIT_INVITE_ACCEPT",
  rateLimitApiRead: "REEF_RATE_LIMIT_API_READ",
  rateLimitApiWrite: "REEF_RATE_LIMIT_API_WRITE",
};
