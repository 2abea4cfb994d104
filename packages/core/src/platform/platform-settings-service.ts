import { BadRequestError, ConflictError } from "@reef/contracts";
import { type AgentTool, type Db, schema, withScope } from "@reef/db";
import { eq } from "drizzle-orm";
import { requireOperator } from "../admin/admin-service.ts";
import { DEFAULT_GRANTABLE_TOOLS, isAgentTool } from "../agents/tool-grants.ts";
import { appendAudit } from "../audit/audit-service.ts";
import { resealTotpSeedsIn } from "../identity/two-factor-service.ts";
import { createSmtpMailer, type Mailer, type SmtpServer } from "../mail/mailer.ts";
import type { RequestContext } from "../shared/context.ts";
import { createSealer, type Sealer } from "../shared/sealing.ts";
import { resealIdentityProviderSecretsIn } from "../sso/identity-provider-service.ts";

const { platformSettings, users } = schema;

type Source = "config" | "settings" | "default";
type Row = typeof platformSettings.$inferSelect;

/** What Reef's configuration says, and which settings it fixes (env or config file). */
export interface PlatformDefaults {
  publicUrl: string;
  smtpUrl?: string | undefined;
  smtpFrom: string;
  idleTimeoutMinutes: number;
  /** Idle minutes before a gateway is paused (`REEF_RUNTIME_PAUSE_AFTER_MINUTES`); 0: never. */
  pauseAfterMinutes: number;
  /** Resource caps from the configuration (0: no limit). */
  caps?: ResourceCaps | undefined;
  /** Non-public hosts providers may use (`REEF_PROVIDER_ALLOWED_HOSTS`); none when unset. */
  providerAllowedHosts?: readonly string[] | undefined;
  /** The tool groups workspace admins may grant (`REEF_GRANTABLE_TOOLS`); web only when unset. */
  grantableTools?: readonly AgentTool[] | undefined;
  /** Whether shell and file tools can take effect (gateways are sandboxed or contained); default true. */
  hostToolsAllowed?: boolean | undefined;
  /** Whether workspaces may use MCP connectors (`REEF_CONNECTORS_ENABLED`); default true. False wins over the setting. */
  connectorsEnabled?: boolean | undefined;
  /** Non-public hosts connectors may point at (`REEF_CONNECTOR_ALLOWED_HOSTS`); none when unset. */
  connectorAllowedHosts?: readonly string[] | undefined;
  /** Password sign-in only for breakglass accounts (`REEF_REQUIRE_SSO`); default false. */
  requireSso?: boolean | undefined;
  /** A second factor for password and magic-link sign-ins (`REEF_REQUIRE_TWO_FACTOR`); default false. */
  requireTwoFactor?: boolean | undefined;
  /** Settings the configuration sets explicitly: the web app shows them read-only. */
  fixed: {
    requireSso?: boolean;
    requireTwoFactor?: boolean;
    providerAllowedHosts?: boolean;
    grantableTools?: boolean;
    connectorsEnabled?: boolean;
    connectorAllowedHosts?: boolean;
    publicUrl: boolean;
    email: boolean;
    idleTimeout: boolean;
    pauseAfter?: boolean;
    caps?: Partial<Record<keyof ResourceCaps, boolean>>;
  };
}

/**
 * What one person and the whole machine may use; 0 means no limit. Checked when
 * a workspace is created and when a gateway is woken.
 */
export interface ResourceCaps {
  /** Workspaces one person may own. */
  maxWorkspacesPerUser: number;
  /** Gateways running at once in the workspaces one person owns. */
  maxRuntimesPerUser: number;
  /** Gateways running at once on this Reef. */
  maxRuntimes: number;
}

const CAP_KEYS = ["maxWorkspacesPerUser", "maxRuntimesPerUser", "maxRuntimes"] as const;
const CAP_ENV: Record<keyof ResourceCaps, string> = {
  maxWorkspacesPerUser: "REEF_MAX_WORKSPACES_PER_USER",
  maxRuntimesPerUser: "REEF_MAX_RUNTIMES_PER_USER",
  maxRuntimes: "REEF_MAX_RUNTIMES",
};
/** Without configuration (tests, embedding): no caps. */
const NO_CAPS: ResourceCaps = { maxWorkspacesPerUser: 0, maxRuntimesPerUser: 0, maxRuntimes: 0 };

export interface EmailSettingsInput {
  host: string;
  port: number;
  security: SmtpServer["security"];
  username?: string | null | undefined;
  password?: string | null | undefined;
  from: string;
}

export interface PlatformSettingsPatch {
  publicUrl?: string | null | undefined;
  email?: EmailSettingsInput | null | undefined;
  runtimeIdleTimeoutMinutes?: number | null | undefined;
  /** 0: never pause; null: back to the configuration. */
  runtimePauseAfterMinutes?: number | null | undefined;
  /** null: back to the configured list. */
  providerAllowedHosts?: string[] | null | undefined;
  /** null: back to the configured list. */
  grantableTools?: AgentTool[] | null | undefined;
  /** null: back to the configuration (on unless it says off). */
  connectorsEnabled?: boolean | null | undefined;
  /** null: back to the configured list. */
  connectorAllowedHosts?: string[] | null | undefined;
  /** null: back to the configuration. */
  requireSso?: boolean | null | undefined;
  /** null: back to the configuration. */
  requireTwoFactor?: boolean | null | undefined;
  maxWorkspacesPerUser?: number | null | undefined;
  maxRuntimesPerUser?: number | null | undefined;
  maxRuntimes?: number | null | undefined;
  setupStep?: number | undefined;
  setupCompleted?: true | undefined;
}

/** The settings in force, resolved from the row and the configuration. */
interface Effective {
  publicUrl: string;
  mailer: Mailer | undefined;
  idleTimeoutMinutes: number;
  pauseAfterMinutes: number;
  providerAllowedHosts: readonly string[];
  grantableTools: readonly AgentTool[];
  connectorsEnabled: boolean;
  connectorAllowedHosts: readonly string[];
  requireSso: boolean;
  requireTwoFactor: boolean;
  caps: ResourceCaps;
  row: Row | undefined;
}

/** The sign-in policy switches: the operator's value unless the configuration fixes it. */
const SIGN_IN_SWITCHES = { requireSso: "REEF_REQUIRE_SSO", requireTwoFactor: "REEF_REQUIRE_TWO_FACTOR" } as const;
type SignInSwitch = keyof typeof SIGN_IN_SWITCHES;
const SWITCH_KEYS = Object.keys(SIGN_IN_SWITCHES) as SignInSwitch[];

const SMTP_AAD = "platform:smtp-password";

/**
 * Platform settings an operator edits in the web app (first-run wizard and admin
 * screen): public URL, outgoing email, the default runtime idle timeout, the
 * resource caps (workspaces per person, running gateways per person and in all)
 * and the tools workspace admins may grant agents. Reads
 * are cached for `cacheMs`, so a change reaches every replica within that time and
 * applies without a restart. Values fixed by Reef's configuration win and cannot
 * be changed here. The SMTP password is sealed under the root key and never leaves.
 */
export function createPlatformSettings(deps: { db: Db; sealer: Sealer; defaults: PlatformDefaults; cacheMs?: number }) {
  const { db, sealer, defaults } = deps;
  const cacheMs = deps.cacheMs ?? 5000;
  let cached: { at: number; value: Promise<Effective> } | undefined;
  let mailerCache: { key: string; mailer: Mailer } | undefined;
  // Secure cookies and HSTS follow the scheme Reef started with; see startupPublicUrl().
  let startedOnHttps: boolean | undefined;

  const readRow = () => withScope(db, { platform: true }, async (tx) => (await tx.select().from(platformSettings))[0]);

  function mailerFor(server: string | SmtpServer, from: string): Mailer {
    const key = JSON.stringify([server, from]);
    if (mailerCache?.key !== key) mailerCache = { key, mailer: createSmtpMailer({ server, from }) };
    return mailerCache.mailer;
  }

  function serverOf(row: Row): SmtpServer | undefined {
    if (!row.smtpHost || !row.smtpPort || !row.smtpSecurity) return undefined;
    return {
      host: row.smtpHost,
      port: row.smtpPort,
      security: row.smtpSecurity,
      username: row.smtpUsername ?? undefined,
      password: row.smtpPasswordSealed ? sealer.open(row.smtpPasswordSealed, SMTP_AAD) : undefined,
    };
  }

  const capFixed = (key: keyof ResourceCaps) => defaults.fixed.caps?.[key] ?? false;
  const switchOf = (key: SignInSwitch, row: Row | undefined) =>
    (!defaults.fixed[key] ? row?.[key] : undefined) ?? defaults[key] ?? false;

  function grantableOf(row: Row | undefined): readonly AgentTool[] {
    // As for hosts, an empty list saved here is a choice (no tools), so only null falls back.
    const set = defaults.fixed.grantableTools ? undefined : row?.grantableTools;
    return set ? set.filter(isAgentTool) : (defaults.grantableTools ?? DEFAULT_GRANTABLE_TOOLS);
  }

  function capsOf(row: Row | undefined): ResourceCaps {
    const caps = { ...(defaults.caps ?? NO_CAPS) };
    for (const key of CAP_KEYS) {
      const set = row?.[key];
      // 0 is a value here (no limit), so null is the only "not set".
      if (!capFixed(key) && set != null) caps[key] = set;
    }
    return caps;
  }

  async function resolve(): Promise<Effective> {
    const row = await readRow();
    let mailer: Mailer | undefined;
    if (defaults.fixed.email) {
      mailer = defaults.smtpUrl ? mailerFor(defaults.smtpUrl, defaults.smtpFrom) : undefined;
    } else {
      const server = row && serverOf(row);
      if (server) mailer = mailerFor(server, row.smtpFrom ?? defaults.smtpFrom);
      else if (defaults.smtpUrl) mailer = mailerFor(defaults.smtpUrl, defaults.smtpFrom);
    }
    return {
      publicUrl: (!defaults.fixed.publicUrl && row?.publicUrl) || defaults.publicUrl,
      mailer,
      idleTimeoutMinutes:
        (!defaults.fixed.idleTimeout && row?.runtimeIdleTimeoutMinutes) || defaults.idleTimeoutMinutes,
      // 0 is a value here (never pause), so only null falls back.
      pauseAfterMinutes:
        (!defaults.fixed.pauseAfter ? row?.runtimePauseAfterMinutes : null) ?? defaults.pauseAfterMinutes,
      caps: capsOf(row),
      // An empty list saved here is a choice (nothing allowed), so only null falls back.
      providerAllowedHosts:
        (!defaults.fixed.providerAllowedHosts && row?.providerAllowedHosts) || defaults.providerAllowedHosts || [],
      grantableTools: grantableOf(row),
      // The configuration can switch connectors off for good; otherwise the operator's switch decides.
      connectorsEnabled:
        (defaults.connectorsEnabled ?? true) && (defaults.fixed.connectorsEnabled || row?.connectorsEnabled !== false),
      connectorAllowedHosts:
        (!defaults.fixed.connectorAllowedHosts && row?.connectorAllowedHosts) || defaults.connectorAllowedHosts || [],
      requireSso: switchOf("requireSso", row),
      requireTwoFactor: switchOf("requireTwoFactor", row),
      row,
    };
  }

  function effective(): Promise<Effective> {
    if (!cached || Date.now() - cached.at > cacheMs) {
      const value = resolve();
      cached = { at: Date.now(), value };
      // A failed read must not be cached: the next caller tries again.
      value.catch(() => {
        if (cached?.value === value) cached = undefined;
      });
    }
    return cached.value;
  }

  function view(e: Effective) {
    const row = e.row;
    const source = (fixed: boolean, set: unknown): Source => (fixed ? "config" : set != null ? "settings" : "default");
    const rowEmail = !defaults.fixed.email && row?.smtpHost ? row : undefined;
    let envServer: URL | undefined;
    if (!rowEmail && defaults.smtpUrl) envServer = new URL(defaults.smtpUrl);
    const https = e.publicUrl.startsWith("https:");
    return {
      publicUrl: { value: e.publicUrl, source: source(defaults.fixed.publicUrl, row?.publicUrl) },
      email: {
        enabled: e.mailer !== undefined,
        source: defaults.fixed.email ? ("config" as const) : rowEmail ? ("settings" as const) : ("default" as const),
        host: rowEmail?.smtpHost ?? envServer?.hostname ?? null,
        port:
          rowEmail?.smtpPort ??
          (envServer ? Number(envServer.port || (envServer.protocol === "smtps:" ? 465 : 587)) : null),
        security: rowEmail?.smtpSecurity ?? (envServer ? (envServer.protocol === "smtps:" ? "tls" : "starttls") : null),
        username: rowEmail
          ? rowEmail.smtpUsername
          : envServer?.username
            ? decodeURIComponent(envServer.username)
            : null,
        passwordSet: rowEmail ? rowEmail.smtpPasswordSealed !== null : Boolean(envServer?.password),
        from: (rowEmail ? rowEmail.smtpFrom : undefined) ?? defaults.smtpFrom,
      },
      runtimeIdleTimeoutMinutes: {
        value: e.idleTimeoutMinutes,
        source: source(defaults.fixed.idleTimeout, row?.runtimeIdleTimeoutMinutes),
      },
      runtimePauseAfterMinutes: {
        value: e.pauseAfterMinutes,
        source: source(defaults.fixed.pauseAfter ?? false, row?.runtimePauseAfterMinutes),
      },
      caps: Object.fromEntries(
        CAP_KEYS.map((key) => [key, { value: e.caps[key], source: source(capFixed(key), row?.[key]) }]),
      ) as Record<keyof ResourceCaps, { value: number; source: Source }>,
      providerAllowedHosts: {
        value: [...e.providerAllowedHosts],
        source: source(defaults.fixed.providerAllowedHosts ?? false, row?.providerAllowedHosts),
      },
      grantableTools: {
        value: [...e.grantableTools],
        source: source(defaults.fixed.grantableTools ?? false, row?.grantableTools),
        sandboxed: defaults.hostToolsAllowed ?? true,
      },
      connectorsEnabled: {
        value: e.connectorsEnabled,
        source:
          defaults.connectorsEnabled === false
            ? ("config" as const)
            : source(defaults.fixed.connectorsEnabled ?? false, row?.connectorsEnabled),
      },
      connectorAllowedHosts: {
        value: [...e.connectorAllowedHosts],
        source: source(defaults.fixed.connectorAllowedHosts ?? false, row?.connectorAllowedHosts),
      },
      requireSso: { value: e.requireSso, source: source(defaults.fixed.requireSso ?? false, row?.requireSso) },
      requireTwoFactor: {
        value: e.requireTwoFactor,
        source: source(defaults.fixed.requireTwoFactor ?? false, row?.requireTwoFactor),
      },
      setup: { completed: row?.setupCompletedAt != null, step: row?.setupStep ?? 0 },
      restartRequired: startedOnHttps !== undefined && https !== startedOnHttps,
      updatedAt: (row?.updatedAt ?? new Date(0)).toISOString(),
    };
  }

  function refuseFixed(patch: PlatformSettingsPatch) {
    const fixed = [
      patch.publicUrl !== undefined && defaults.fixed.publicUrl && "REEF_PUBLIC_URL",
      patch.email !== undefined && defaults.fixed.email && "REEF_SMTP_URL",
      patch.runtimeIdleTimeoutMinutes !== undefined &&
        defaults.fixed.idleTimeout &&
        "REEF_RUNTIME_IDLE_TIMEOUT_MINUTES",
      patch.runtimePauseAfterMinutes !== undefined && defaults.fixed.pauseAfter && "REEF_RUNTIME_PAUSE_AFTER_MINUTES",
      ...CAP_KEYS.map((key) => patch[key] !== undefined && capFixed(key) && CAP_ENV[key]),
      patch.providerAllowedHosts !== undefined && defaults.fixed.providerAllowedHosts && "REEF_PROVIDER_ALLOWED_HOSTS",
      patch.grantableTools !== undefined && defaults.fixed.grantableTools && "REEF_GRANTABLE_TOOLS",
      patch.connectorsEnabled !== undefined &&
        (defaults.fixed.connectorsEnabled || defaults.connectorsEnabled === false) &&
        "REEF_CONNECTORS_ENABLED",
      patch.connectorAllowedHosts !== undefined &&
        defaults.fixed.connectorAllowedHosts &&
        "REEF_CONNECTOR_ALLOWED_HOSTS",
      ...SWITCH_KEYS.map((key) => patch[key] !== undefined && defaults.fixed[key] && SIGN_IN_SWITCHES[key]),
    ].filter(Boolean);
    if (fixed.length)
      throw new ConflictError(
        `Set by Reef's configuration (${fixed.join(", ")}): change it there and restart, or remove it to manage it here.`,
        { settings: fixed },
      );
  }

  return {
    /**
     * The public URL at start-up, for what is fixed for the life of the process
     * (secure cookies, HSTS). A later change of scheme is reported as `restartRequired`.
     */
    async startupPublicUrl(): Promise<string> {
      const url = (await effective()).publicUrl;
      startedOnHttps = url.startsWith("https:");
      return url;
    },
    /** The public URL links and emails use. */
    async publicUrl(): Promise<string> {
      return (await effective()).publicUrl;
    },
    /** The mailer for outgoing email, or undefined when none is set up. */
    async mailer(): Promise<Mailer | undefined> {
      return (await effective()).mailer;
    },
    /** The resource caps in force (0: no limit). */
    async caps(): Promise<ResourceCaps> {
      return (await effective()).caps;
    },
    /** Non-public hosts (`host` or `host:port`) members may use as a provider's base URL. */
    async providerAllowedHosts(): Promise<readonly string[]> {
      return (await effective()).providerAllowedHosts;
    },
    /**
     * Whether MCP connectors are on platform-wide, and the non-public hosts
     * (`host` or `host:port`) they may point at: for the connector service, the
     * MCP proxy and the gateway settings.
     */
    async connectorPolicy(): Promise<{ enabled: boolean; allowedHosts: string[] }> {
      const e = await effective();
      return { enabled: e.connectorsEnabled, allowedHosts: [...e.connectorAllowedHosts] };
    },
    /** The sign-in policy in force: SSO required for non-breakglass accounts, a second factor for password sign-ins. */
    async signInPolicy(): Promise<{ requireSso: boolean; requireTwoFactor: boolean }> {
      const e = await effective();
      return { requireSso: e.requireSso, requireTwoFactor: e.requireTwoFactor };
    },
    /** The tool groups workspace admins may grant agents; the gateway is given no other. */
    async grantableTools(): Promise<readonly AgentTool[]> {
      return (await effective()).grantableTools;
    },
    /** How long a runtime may sit idle before it is stopped. */
    async idleTimeoutMs(): Promise<number> {
      return (await effective()).idleTimeoutMinutes * 60_000;
    },
    /** How long a runtime may sit idle before it is paused (0: never). */
    async pauseAfterMs(): Promise<number> {
      return (await effective()).pauseAfterMinutes * 60_000;
    },
    async get(ctx: RequestContext) {
      requireOperator(ctx);
      return view(await resolve());
    },

    /** Changes settings (operators only), audited without the password. */
    async update(ctx: RequestContext, patch: PlatformSettingsPatch) {
      requireOperator(ctx);
      refuseFixed(patch);
      await withScope(db, { platform: true, userId: ctx.actor.userId }, async (tx) => {
        const [before] = await tx.select().from(platformSettings).where(eq(platformSettings.id, 1)).for("update");
        const set: Partial<typeof platformSettings.$inferInsert> = {
          updatedAt: new Date(),
          updatedBy: ctx.actor.userId,
        };
        const changed: string[] = [];
        if (patch.publicUrl !== undefined) {
          set.publicUrl = patch.publicUrl;
          changed.push("publicUrl");
        }
        if (patch.runtimeIdleTimeoutMinutes !== undefined) {
          set.runtimeIdleTimeoutMinutes = patch.runtimeIdleTimeoutMinutes;
          changed.push("runtimeIdleTimeoutMinutes");
        }
        if (patch.runtimePauseAfterMinutes !== undefined) {
          set.runtimePauseAfterMinutes = patch.runtimePauseAfterMinutes;
          changed.push("runtimePauseAfterMinutes");
        }
        if (patch.providerAllowedHosts !== undefined) {
          set.providerAllowedHosts = patch.providerAllowedHosts;
          changed.push("providerAllowedHosts");
        }
        if (patch.connectorsEnabled !== undefined) {
          set.connectorsEnabled = patch.connectorsEnabled;
          changed.push("connectorsEnabled");
        }
        if (patch.connectorAllowedHosts !== undefined) {
          set.connectorAllowedHosts = patch.connectorAllowedHosts;
          changed.push("connectorAllowedHosts");
        }
        if (patch.grantableTools !== undefined) {
          set.grantableTools = patch.grantableTools && [...new Set(patch.grantableTools)].sort();
          changed.push("grantableTools");
        }
        for (const key of [...CAP_KEYS, ...SWITCH_KEYS]) {
          const value = patch[key];
          if (value === undefined) continue;
          (set as Record<string, unknown>)[key] = value;
          changed.push(key);
        }
        if (patch.email !== undefined) {
          changed.push("email");
          const e = patch.email;
          set.smtpHost = e?.host ?? null;
          set.smtpPort = e?.port ?? null;
          set.smtpSecurity = e?.security ?? null;
          set.smtpUsername = e?.username || null;
          set.smtpFrom = e?.from ?? null;
          if (!e || e.password === null || !e.username) set.smtpPasswordSealed = null;
          else if (e.password !== undefined) set.smtpPasswordSealed = sealer.seal(e.password, SMTP_AAD);
          else if (!before?.smtpPasswordSealed && e.username)
            throw new BadRequestError("Give the mail server's password for this user name.", { field: "password" });
        }
        if (patch.setupStep !== undefined) set.setupStep = patch.setupStep;
        if (patch.setupCompleted && !before?.setupCompletedAt) {
          set.setupCompletedAt = new Date();
          changed.push("setupCompleted");
        }
        await tx
          .insert(platformSettings)
          .values({ id: 1, ...set })
          .onConflictDoUpdate({ target: platformSettings.id, set });
        if (changed.length) {
          const details: Record<string, unknown> = { changed };
          if (patch.publicUrl !== undefined)
            details.publicUrl = { from: before?.publicUrl ?? null, to: patch.publicUrl };
          if (patch.runtimeIdleTimeoutMinutes !== undefined)
            details.runtimeIdleTimeoutMinutes = {
              from: before?.runtimeIdleTimeoutMinutes ?? null,
              to: patch.runtimeIdleTimeoutMinutes,
            };
          if (patch.runtimePauseAfterMinutes !== undefined)
            details.runtimePauseAfterMinutes = {
              from: before?.runtimePauseAfterMinutes ?? null,
              to: patch.runtimePauseAfterMinutes,
            };
          if (patch.providerAllowedHosts !== undefined)
            details.providerAllowedHosts = {
              from: before?.providerAllowedHosts ?? null,
              to: patch.providerAllowedHosts,
            };
          if (patch.connectorsEnabled !== undefined)
            details.connectorsEnabled = { from: before?.connectorsEnabled ?? null, to: patch.connectorsEnabled };
          if (patch.connectorAllowedHosts !== undefined)
            details.connectorAllowedHosts = {
              from: before?.connectorAllowedHosts ?? null,
              to: patch.connectorAllowedHosts,
            };
          if (patch.grantableTools !== undefined)
            details.grantableTools = { from: before?.grantableTools ?? null, to: set.grantableTools ?? null };
          for (const key of [...CAP_KEYS, ...SWITCH_KEYS]) {
            if (patch[key] !== undefined) details[key] = { from: before?.[key] ?? null, to: patch[key] };
          }
          if (patch.email !== undefined)
            details.email = patch.email
              ? {
                  host: patch.email.host,
                  port: patch.email.port,
                  security: patch.email.security,
                  from: patch.email.from,
                }
              : null;
          await appendAudit(tx, ctx, {
            workspaceId: null,
            action: "platform.settings_update",
            targetType: "platform",
            targetId: "settings",
            details,
          });
        }
      });
      cached = undefined;
      return view(await effective());
    },

    /**
     * Sends a test email with the saved or the given (unsaved) server settings,
     * to the operator unless `to` is given. Answers with the server's reason on
     * failure rather than throwing, so the screen can show it.
     */
    async testEmail(ctx: RequestContext, input: { to?: string | undefined; email?: EmailSettingsInput | undefined }) {
      requireOperator(ctx);
      if (input.email) refuseFixed({ email: input.email });
      const { row, to } = await withScope(db, { platform: true, userId: ctx.actor.userId }, async (tx) => ({
        row: (await tx.select().from(platformSettings))[0],
        to:
          input.to ??
          (await tx.select({ email: users.email }).from(users).where(eq(users.id, ctx.actor.userId)))[0]?.email,
      }));
      if (!to) throw new BadRequestError("Give an address to send the test email to.");
      let mailer: Mailer | undefined;
      if (input.email) {
        const e = input.email;
        const password =
          e.password ??
          (e.password === undefined && row?.smtpPasswordSealed
            ? sealer.open(row.smtpPasswordSealed, SMTP_AAD)
            : undefined);
        mailer = createSmtpMailer({
          server: { host: e.host, port: e.port, security: e.security, username: e.username ?? undefined, password },
          from: e.from,
        });
      } else {
        mailer = (await effective()).mailer;
      }
      if (!mailer) throw new BadRequestError("No mail server is set up yet.");
      try {
        await mailer.send({
          to,
          subject: "Reef test email",
          text: "This is a test email from Reef. If you can read it, invites and notifications will reach people.\n",
        });
        return { ok: true, to, message: `Sent to ${to}. Check that it arrived (and not in spam).` };
      } catch (err) {
        return { ok: false, to, message: (err as Error).message };
      }
    },
  };
}

export type PlatformSettingsService = ReturnType<typeof createPlatformSettings>;

/** The sealer for platform secrets: the SMTP password, identity providers' secrets, TOTP seeds. */
export function createPlatformSealer(keyring: Buffer | { current: Buffer; previous: Buffer[] }): Sealer {
  return createSealer(keyring, "platform-settings");
}

/**
 * Reseals the stored SMTP password, the identity providers' secrets (OIDC
 * client secrets, SAML SP keys) and the TOTP seeds under the current root key,
 * for `reef rotate-keys`. @returns how many secrets were resealed.
 */
export async function resealPlatformSecrets(db: Db, keyring: { current: Buffer; previous: Buffer[] }): Promise<number> {
  const sealer = createPlatformSealer(keyring);
  return withScope(db, { platform: true }, async (tx) => {
    const resealed = (await resealIdentityProviderSecretsIn(tx, sealer)) + (await resealTotpSeedsIn(tx, sealer));
    const [row] = await tx.select().from(platformSettings).for("update");
    const next = row?.smtpPasswordSealed ? sealer.reseal(row.smtpPasswordSealed, SMTP_AAD) : undefined;
    if (!next) return resealed;
    await tx.update(platformSettings).set({ smtpPasswordSealed: next }).where(eq(platformSettings.id, 1));
    return resealed + 1;
  });
}
