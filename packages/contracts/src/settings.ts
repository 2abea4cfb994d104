import { z } from "zod";

/** Where a platform setting's value comes from; `config` means fixed by env or config file (read-only here). */
export const settingSourceSchema = z.enum(["config", "settings", "default"]);

const publicUrlSchema = z
  .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
  .max(2000)
  .transform((v) => v.replace(/\/+$/, ""));
const emailAddressSchema = z.string().trim().min(3).max(254);
const smtpHostSchema = z
  .string()
  .trim()
  .min(1, "give the mail server's host name")
  .max(253)
  .regex(/^[A-Za-z0-9.:[\]-]+$/, "a host name or IP address, without smtp:// or a port");

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
const allowedHostSchema = z
  .string()
  .trim()
  .toLowerCase()
  .regex(
    /^(?:(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d{1,5})?|[0-9a-f]*:[0-9a-f:.]*:[0-9a-f:.]*)$/,
    "a host name or IP address, optionally with :port (no http://, no path)",
  );

/** The SMTP server as the settings screen edits it. The password is write-only. */
export const emailSettingsBodySchema = z.object({
  host: smtpHostSchema,
  port: z.number().int().min(1).max(65535),
  security: z.enum(["tls", "starttls", "none"]),
  username: z.string().trim().max(254).nullable().optional(),
  /** Omit to keep the stored password; null to remove it. */
  password: z.string().max(1000).nullable().optional(),
  /** The sender: `reef@example.com` or `Reef <reef@example.com>`. */
  from: emailAddressSchema,
});

const capSchema = z.number().int().min(0).max(100_000);
const capValueSchema = z.object({ value: z.number().int(), source: settingSourceSchema });

export const updatePlatformSettingsBodySchema = z
  .object({
    /** null: back to the configured default. */
    publicUrl: publicUrlSchema.nullable().optional(),
    /** null: no email (invite links are shown to the inviter instead). */
    email: emailSettingsBodySchema.nullable().optional(),
    /** Idle minutes before a workspace's gateway is stopped (its memory freed). */
    runtimeIdleTimeoutMinutes: z.number().int().min(1).max(1440).nullable().optional(),
    /** Idle minutes before it is paused (kept, resumed in about a second); 0: never. */
    runtimePauseAfterMinutes: z.number().int().min(0).max(1440).nullable().optional(),
    /**
     * Hosts on this machine or a private network that providers may use (a
     * local Ollama): `host` or `host:port`. null: back to the configured list.
     */
    providerAllowedHosts: z.array(allowedHostSchema).max(100).nullable().optional(),
    /**
     * The tool groups workspace admins may grant agents; files and shell work
     * only on sandboxed runtimes. null: back to the configured list.
     */
    grantableTools: z
      .array(z.enum(["web", "files", "shell"]))
      .max(3)
      .nullable()
      .optional(),
    /** Whether workspaces may use MCP connectors; null: back to the configuration (on unless it says off). */
    connectorsEnabled: z.boolean().nullable().optional(),
    /** Hosts on this machine or a private network that MCP connectors may use. null: back to the configured list. */
    connectorAllowedHosts: z.array(allowedHostSchema).max(100).nullable().optional(),
    /**
     * Password sign-in only for breakglass accounts (`reef create-admin`); everyone
     * else signs in with single sign-on. null: back to the configuration.
     */
    requireSso: z.boolean().nullable().optional(),
    /** A second factor (TOTP) for every password or magic-link sign-in. null: back to the configuration. */
    requireTwoFactor: z.boolean().nullable().optional(),
    /** Resource caps: 0 means no limit; null goes back to the configured default. */
    maxWorkspacesPerUser: capSchema.nullable().optional(),
    maxRuntimesPerUser: capSchema.nullable().optional(),
    maxRuntimes: capSchema.nullable().optional(),
    /** The first-run wizard's step to resume at. */
    setupStep: z.number().int().min(0).max(10).optional(),
    /** Ends the first-run wizard (cannot be undone). */
    setupCompleted: z.literal(true).optional(),
  })
  .refine((v) => Object.values(v).some((x) => x !== undefined), "give at least one setting");

export const platformSettingsSchema = z.object({
  publicUrl: z.object({ value: z.string(), source: settingSourceSchema }),
  email: z.object({
    enabled: z.boolean(),
    source: settingSourceSchema,
    host: z.string().nullable(),
    port: z.number().int().nullable(),
    security: z.enum(["tls", "starttls", "none"]).nullable(),
    username: z.string().nullable(),
    passwordSet: z.boolean(),
    from: z.string(),
  }),
  runtimeIdleTimeoutMinutes: z.object({ value: z.number(), source: settingSourceSchema }),
  runtimePauseAfterMinutes: z.object({ value: z.number(), source: settingSourceSchema }),
  /** Non-public hosts providers may use; every other private or loopback address is refused. */
  providerAllowedHosts: z.object({ value: z.array(z.string()), source: settingSourceSchema }),
  /** The tool groups workspace admins may grant; `sandboxed` says whether files and shell can take effect. */
  grantableTools: z.object({
    value: z.array(z.enum(["web", "files", "shell"])),
    source: settingSourceSchema,
    sandboxed: z.boolean(),
  }),
  /** Whether workspaces may use MCP connectors (`config`: the configuration decides). */
  connectorsEnabled: z.object({ value: z.boolean(), source: settingSourceSchema }),
  /** Non-public hosts MCP connectors may use; every other private or loopback address is refused. */
  connectorAllowedHosts: z.object({ value: z.array(z.string()), source: settingSourceSchema }),
  /** What one person and the whole machine may use (0: no limit). */
  caps: z.object({
    maxWorkspacesPerUser: capValueSchema,
    maxRuntimesPerUser: capValueSchema,
    maxRuntimes: capValueSchema,
  }),
  /** Password sign-in is off except for breakglass accounts (`config`: REEF_REQUIRE_SSO decides). */
  requireSso: z.object({ value: z.boolean(), source: settingSourceSchema }),
  /** Password and magic-link sign-ins need a second factor (`config`: REEF_REQUIRE_TWO_FACTOR decides). */
  requireTwoFactor: z.object({ value: z.boolean(), source: settingSourceSchema }),
  setup: z.object({ completed: z.boolean(), step: z.number().int() }),
  /**
   * True when the public URL's scheme changed since start-up: secure cookies and
   * HSTS follow the scheme Reef started with until it restarts.
   */
  restartRequired: z.boolean(),
  updatedAt: z.string(),
});

export const testEmailBodySchema = z.object({
  /** Defaults to the operator's own address. */
  to: z.email().max(254).optional(),
  /** Unsaved server settings to try; the saved ones when omitted. A missing password reuses the saved one. */
  email: emailSettingsBodySchema.optional(),
});
export const testEmailResultSchema = z.object({ ok: z.boolean(), to: z.string(), message: z.string() });
