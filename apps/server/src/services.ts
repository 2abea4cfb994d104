import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import {
  createAdminService,
  createAgentService,
  createApiKeyService,
  createAuditQueryService,
  createAuditService,
  createChatService,
  createIdentityService,
  createInviteService,
  createPermissions,
  createPlatformSealer,
  createPlatformSettings,
  createProviderService,
  createQuotaService,
  createRateLimits,
  createRuntimeManager,
  createRuntimeService,
  createRuntimeTokenSealer,
  createSystemService,
  createVault,
  createWorkspaceGate,
  createWorkspaceService,
  defaultMaxRuntimes,
} from "@reef/core";
import { DockerDriver, KubernetesDriver, ProcessDriver, type RuntimeDriver } from "@reef/runtime";
import type { FastifyBaseLogger } from "fastify";
import type { AppConfig, AppDeps } from "./app.ts";

const HOUR_MS = 3_600_000;

/** The runtime driver the configuration names. */
function createDriver(config: AppConfig, layout: AppDeps["layout"], log: FastifyBaseLogger): RuntimeDriver {
  switch (config.runtimeDriver) {
    case "docker":
      return new DockerDriver({
        socketPath: config.dockerSocket,
        image: config.runtimeImage,
        readyTimeoutMs: config.runtimeStartTimeoutSeconds * 1000,
      });
    case "kubernetes": {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromDefault();
      return new KubernetesDriver({
        kubeConfig,
        namespace: config.kubernetesNamespace,
        image: config.runtimeImage,
        reefSelector: { "app.kubernetes.io/name": "reef" },
        readyTimeoutMs: config.runtimeStartTimeoutSeconds * 1000,
      });
    }
    default:
      return new ProcessDriver({
        rootDir: layout?.runtimesDir ?? join(config.dataDir, "runtimes"),
        ...(layout?.mirror ? { nodePath: layout.mirror.node, openclawEntry: layout.mirror.openclawEntry } : {}),
        readyTimeoutMs: config.runtimeStartTimeoutSeconds * 1000,
        onLog: (workspaceId, line) => log.debug({ workspaceId, gateway: line }, "gateway output"),
        onWarning: (message) => log.warn(message),
      });
  }
}

/** Builds every service from its dependencies: the one place that wires the core together. */
export function createServices(
  deps: Pick<AppDeps, "database" | "layout"> & { config: AppConfig },
  log: FastifyBaseLogger,
) {
  const { config } = deps;
  const db = deps.database.db;
  const audit = createAuditService({ db });
  const rateLimits = createRateLimits({
    pool: deps.database.pool,
    audit,
    settings: {
      signup_ip: config.rateLimitSignupIp,
      login_ip: config.rateLimitLoginIp,
      login_account: config.rateLimitLoginAccount,
      invite_accept: config.rateLimitInviteAccept,
      api_read: config.rateLimitApiRead,
      api_write: config.rateLimitApiWrite,
    },
  });
  const permissions = createPermissions({ db });
  const gate = createWorkspaceGate({ db, permissions, audit, rateLimits });
  const driver = createDriver(config, deps.layout, log);
  const keyring = { current: config.secretKey, previous: config.secretKeyPrevious ?? [] };
  const vault = createVault({ keyring });
  const agents = createAgentService({ db, gate, vault });
  const explicit = new Set(config.explicitKeys ?? []);
  const platformSettings = createPlatformSettings({
    db,
    sealer: createPlatformSealer(keyring),
    defaults: {
      publicUrl: config.publicUrl,
      smtpUrl: config.smtpUrl,
      smtpFrom: config.smtpFrom,
      idleTimeoutMinutes: config.runtimeIdleTimeoutMinutes,
      providerAllowedHosts: config.providerAllowedHosts,
      caps: {
        maxWorkspacesPerUser: config.maxWorkspacesPerUser,
        maxRuntimesPerUser: config.maxRuntimesPerUser,
        maxRuntimes: config.maxRuntimes ?? defaultMaxRuntimes(),
      },
      fixed: {
        publicUrl: explicit.has("publicUrl"),
        email: explicit.has("smtpUrl"),
        idleTimeout: explicit.has("runtimeIdleTimeoutMinutes"),
        providerAllowedHosts: explicit.has("providerAllowedHosts"),
        caps: {
          maxWorkspacesPerUser: explicit.has("maxWorkspacesPerUser"),
          maxRuntimesPerUser: explicit.has("maxRuntimesPerUser"),
          maxRuntimes: explicit.has("maxRuntimes"),
        },
      },
    },
  });
  const runtimeManager = createRuntimeManager({
    db,
    driver,
    sealer: createRuntimeTokenSealer(keyring),
    settingsFor: (workspaceId) => agents.gatewaySettings(workspaceId),
    instanceId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    idleTimeoutMs: platformSettings.idleTimeoutMs,
    startTimeoutMs: config.runtimeStartTimeoutSeconds * 1000,
    limits: { memoryMb: config.runtimeMemoryMb, cpus: config.runtimeCpus, pids: config.runtimePids },
    // Containers and pods get a hard limit from their engine; a child process only this watchdog.
    enforceMemoryLimit: driver.kind === "process",
    caps: async () => {
      const caps = await platformSettings.caps();
      return { perUser: caps.maxRuntimesPerUser, total: caps.maxRuntimes };
    },
    log,
  });
  const quotas = createQuotaService({
    gate,
    limits: { messages: config.quotaMonthlyMessages ?? null, tokens: config.quotaMonthlyTokens ?? null },
  });
  return {
    system: createSystemService({
      database: deps.database,
      onCheckFailed: (check, err) => log.warn({ err, check }, "readiness check failed"),
    }),
    identity: createIdentityService({ db, audit, rateLimits, sessionTtlMs: config.sessionTtlHours * HOUR_MS }),
    workspaces: createWorkspaceService({
      db,
      gate,
      destroyRuntime: runtimeManager.destroy,
      maxWorkspacesPerUser: async () => (await platformSettings.caps()).maxWorkspacesPerUser,
    }),
    invites: createInviteService({
      db,
      gate,
      rateLimits,
      mailer: platformSettings.mailer,
      publicUrl: platformSettings.publicUrl,
      ttlMs: config.inviteTtlHours * HOUR_MS,
    }),
    apiKeys: createApiKeyService({ db, gate }),
    auditQuery: createAuditQueryService({ gate }),
    admin: createAdminService({ db }),
    platformSettings,
    runtimeManager,
    runtimes: createRuntimeService({ gate, manager: runtimeManager, driver }),
    vault,
    providers: createProviderService({ gate, vault, allowedHosts: platformSettings.providerAllowedHosts }),
    agents,
    quotas,
    chat: createChatService({ db, gate, agents, runtimes: runtimeManager, quotas, log }),
  };
}
