import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import {
  createAbortNotifier,
  createAccountService,
  createAdminService,
  createAgentService,
  createApiKeyService,
  createApprovalService,
  createAuditQueryService,
  createAuditService,
  createAuthState,
  createChatService,
  createConnectorService,
  createEgressPolicy,
  createEgressProxy,
  createEgressRefusalRecorder,
  createEgressService,
  createEmailLinkService,
  createIdentityProviderService,
  createIdentityService,
  createInviteService,
  createOidcFlow,
  createOpenAiService,
  createPermissions,
  createPlatformSealer,
  createPlatformSettings,
  createProviderFailures,
  createProviderService,
  createQuotaService,
  createRateLimits,
  createRuntimeManager,
  createRuntimeOutbound,
  createRuntimeService,
  createRuntimeTokenSealer,
  createScheduler,
  createScheduleService,
  createSignIn,
  createSsoService,
  createSystemService,
  createTwoFactorService,
  createVault,
  createWebhookService,
  createWorkspaceGate,
  createWorkspaceService,
  defaultMaxRuntimes,
  loadMcpCatalog,
} from "@reef/core";
import {
  checkMcpServersDir,
  DockerDriver,
  describeSandbox,
  KubernetesDriver,
  ProcessDriver,
  probeSandbox,
  type RuntimeDriver,
  type SandboxProbe,
  sandboxCommandProblem,
} from "@reef/runtime";
import type { FastifyBaseLogger } from "fastify";
import type { AppConfig, AppDeps } from "./app.ts";

const HOUR_MS = 3_600_000;

/** The tests' switches (see AppDeps): the attack test's unconfined control run, or a host without bubblewrap. */
type TestSandbox = { unconfined?: boolean | undefined; unavailable?: boolean | undefined };

/**
 * The process driver, sandboxed where the host allows (said once, at start).
 * `REEF_SANDBOX=required` refuses to start Reef where it cannot be.
 */
function createProcessDriver(
  config: AppConfig,
  layout: AppDeps["layout"],
  log: FastifyBaseLogger,
  forTests: TestSandbox,
): ProcessDriver {
  const probe: SandboxProbe =
    forTests.unconfined || forTests.unavailable
      ? { available: false, reason: "switched off for this test" }
      : probeSandbox();
  if (config.sandbox === "required" && !probe.available) {
    throw new Error(`REEF_SANDBOX=required, but ${describeSandbox(probe)}`);
  }
  if (probe.available) log.info(describeSandbox(probe));
  else log.warn(describeSandbox(probe));
  // Only root can give each workspace's gateway an OS user of its own (runtime-users.ts).
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0) {
    log.info(
      `Reef is not running as root: gateways share Reef's OS user (uid ${uid}) instead of one OS user per workspace; ${probe.available ? "the bubblewrap sandbox still applies" : "they are not sandboxed either"}`,
    );
  }
  const rootDir = layout?.runtimesDir ?? join(config.dataDir, "runtimes");
  // Shared read-only by every sandbox: a bad directory stops Reef here, with the reason.
  const mcpServersDir = config.mcpServersDir
    ? checkMcpServersDir(config.mcpServersDir, {
        reefDirs: [config.dataDir, rootDir, dirname(rootDir)],
        owners: [...new Set([0, process.getuid?.() ?? 0])],
      })
    : undefined;
  return new ProcessDriver({
    rootDir,
    ...(mcpServersDir ? { mcpServersDir } : {}),
    ...(layout?.mirror ? { nodePath: layout.mirror.node, openclawEntry: layout.mirror.openclawEntry } : {}),
    sandbox: probe.available,
    ...(forTests.unconfined ? { unconfinedForTests: true } : {}),
    readyTimeoutMs: config.runtimeStartTimeoutSeconds * 1000,
    onLog: (workspaceId, line) => log.debug({ workspaceId, gateway: line }, "gateway output"),
    onWarning: (message) => log.warn(message),
  });
}

/** The runtime driver the configuration names. */
function createDriver(
  config: AppConfig,
  layout: AppDeps["layout"],
  log: FastifyBaseLogger,
  forTests: TestSandbox,
): RuntimeDriver {
  switch (config.runtimeDriver) {
    case "docker":
      return new DockerDriver({
        socketPath: config.dockerSocket,
        image: config.runtimeImage,
        readyTimeoutMs: config.runtimeStartTimeoutSeconds * 1000,
        ...(config.dockerReefContainer ? { reefContainer: config.dockerReefContainer } : {}),
        onWarning: (message, details) => log.warn(details, message),
      });
    case "kubernetes": {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromDefault();
      return new KubernetesDriver({
        kubeConfig,
        namespace: config.kubernetesNamespace,
        image: config.runtimeImage,
        reefSelector: { "app.kubernetes.io/name": "reef" },
        // In-cluster, the service account's namespace (kubeconfig: the current context's).
        reefNamespace: kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace,
        readyTimeoutMs: config.runtimeStartTimeoutSeconds * 1000,
      });
    }
    default:
      return createProcessDriver(config, layout, log, forTests);
  }
}

/** Builds every service from its dependencies: the one place that wires the core together. */
export function createServices(
  deps: Pick<AppDeps, "database" | "layout" | "unsandboxedRuntimesForTests" | "sandboxUnavailableForTests"> & {
    config: AppConfig;
  },
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
      webhook: config.rateLimitWebhook,
      openai: config.rateLimitOpenai,
      two_factor: config.rateLimitTwoFactor,
      auth_email: config.rateLimitAuthEmail,
    },
  });
  const signIn = createSignIn({
    db,
    sessionTtlMs: config.sessionTtlHours * HOUR_MS,
    // The operator's switches over the configuration, read per sign-in (platformSettings is defined below).
    policy: {
      requireSso: async () => (await platformSettings.signInPolicy()).requireSso,
      requireTwoFactor: async () => (await platformSettings.signInPolicy()).requireTwoFactor,
    },
  });
  const permissions = createPermissions({ db });
  const gate = createWorkspaceGate({ db, permissions, audit, rateLimits });
  const driver = createDriver(config, deps.layout, log, {
    unconfined: deps.unsandboxedRuntimesForTests,
    unavailable: deps.sandboxUnavailableForTests,
  });
  // Containers and pods contain their gateways; a process gateway only inside its sandbox.
  const runtimeIsolation = {
    driver: driver.kind,
    sandboxed: driver instanceof ProcessDriver ? driver.sandboxed : true,
    // The attack test's control run keeps shell and file tools on unconfined gateways, on purpose.
    hostToolsAllowed:
      (driver instanceof ProcessDriver ? driver.sandboxed : true) || deps.unsandboxedRuntimesForTests === true,
    ...(driver instanceof ProcessDriver && driver.sandboxUnavailableReason
      ? { reason: driver.sandboxUnavailableReason }
      : {}),
  };
  const keyring = { current: config.secretKey, previous: config.secretKeyPrevious ?? [] };
  const vault = createVault({ keyring });
  // The operator's stdio catalogue, read once: a bad file stops Reef here with a clear message.
  // On the process driver its commands must run inside a sandbox (see mcp-servers-dir.ts); containers run
  // their image's, which Reef cannot see from here.
  const mcpCatalog = loadMcpCatalog(
    config.mcpCatalogFile,
    driver instanceof ProcessDriver ? (command) => sandboxCommandProblem(command, driver.mcpServersDir) : undefined,
  );
  if (config.mcpServersDir && !(driver instanceof ProcessDriver)) {
    log.warn(
      `REEF_MCP_SERVERS_DIR is for the process driver: with ${driver.kind}, bake the catalogue's servers into the runtime image`,
    );
  }
  const agents = createAgentService({
    db,
    gate,
    vault,
    hostToolsAllowed: runtimeIsolation.hostToolsAllowed,
    // platformSettings is defined below; this is read only when an agent is read or written.
    grantableTools: () => platformSettings.grantableTools(),
    connectorsEnabled: async () => (await platformSettings.connectorPolicy()).enabled,
    mcpCatalog,
  });
  const explicit = new Set(config.explicitKeys ?? []);
  const platformSealer = createPlatformSealer(keyring);
  const platformSettings = createPlatformSettings({
    db,
    sealer: platformSealer,
    defaults: {
      publicUrl: config.publicUrl,
      smtpUrl: config.smtpUrl,
      smtpFrom: config.smtpFrom,
      idleTimeoutMinutes: config.runtimeIdleTimeoutMinutes,
      pauseAfterMinutes: config.runtimePauseAfterMinutes,
      providerAllowedHosts: config.providerAllowedHosts,
      grantableTools: config.grantableTools,
      hostToolsAllowed: runtimeIsolation.hostToolsAllowed,
      connectorsEnabled: config.connectorsEnabled,
      connectorAllowedHosts: config.connectorAllowedHosts,
      requireSso: config.requireSso,
      requireTwoFactor: config.requireTwoFactor,
      caps: {
        maxWorkspacesPerUser: config.maxWorkspacesPerUser,
        maxRuntimesPerUser: config.maxRuntimesPerUser,
        maxRuntimes: config.maxRuntimes ?? defaultMaxRuntimes(),
      },
      fixed: {
        publicUrl: explicit.has("publicUrl"),
        email: explicit.has("smtpUrl"),
        idleTimeout: explicit.has("runtimeIdleTimeoutMinutes"),
        pauseAfter: explicit.has("runtimePauseAfterMinutes"),
        providerAllowedHosts: explicit.has("providerAllowedHosts"),
        grantableTools: explicit.has("grantableTools"),
        connectorsEnabled: explicit.has("connectorsEnabled"),
        connectorAllowedHosts: explicit.has("connectorAllowedHosts"),
        requireSso: explicit.has("requireSso"),
        requireTwoFactor: explicit.has("requireTwoFactor"),
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
    settingsPolicyKey: () => agents.gatewayPolicyKey(),
    // Defined below (it needs the quotas); called only once a gateway starts.
    outbound: (workspaceId, settings) => outbound.forStart(workspaceId, settings),
    instanceId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    idleTimeoutMs: platformSettings.idleTimeoutMs,
    pauseAfterMs: platformSettings.pauseAfterMs,
    swapOutAfterMs: config.runtimeSwapOutAfterMinutes * 60_000,
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
  // Gateways' outbound traffic other than LLM calls (HTTPS_PROXY / HTTP_PROXY): the outbound server hands it to egressProxy.
  const egressPolicy = createEgressPolicy({ db, operatorAllowedHosts: async () => config.egressAllowedHosts ?? [] });
  const egressRefusals = createEgressRefusalRecorder({ db, log });
  const egressProxy = createEgressProxy({ policy: egressPolicy, refusals: egressRefusals, log });
  const quotas = createQuotaService({
    gate,
    limits: { messages: config.quotaMonthlyMessages ?? null, tokens: config.quotaMonthlyTokens ?? null },
  });
  // What the LLM proxy sees go wrong with a provider reaches the chat turns at once (fail fast, not after a minute).
  const providerFailures = createProviderFailures();
  // Every gateway's way out: LLM calls through the proxy (keys opened per call, metered, budgeted), the rest to egressProxy.
  const outbound = createRuntimeOutbound({
    onProviderFailure: providerFailures.report,
    db,
    vault,
    quotas,
    allowedHosts: platformSettings.providerAllowedHosts,
    egress: egressProxy,
    callbackUrl: config.runtimeCallbackUrl,
    log,
    // Reef's MCP proxy: connectors on or off, and the non-public hosts they may reach.
    connectorPolicy: platformSettings.connectorPolicy,
  });
  // Relayed by the chat service, decided over the API; decisions reach the gateway from any replica.
  const approvals = createApprovalService({
    db,
    gate,
    vault,
    gatewayOf: (workspaceId) => runtimeManager.current(workspaceId),
    runningWorkspaces: () => runtimeManager.running(),
    timeoutSeconds: config.approvalTimeoutSeconds,
    mailer: platformSettings.mailer,
    publicUrl: platformSettings.publicUrl,
    log,
  });
  // A Stop reaches the replica relaying the answer at once (LISTEN/NOTIFY), not at its next heartbeat.
  const abortNotifier = createAbortNotifier({ appUrl: deps.database.appUrl, log });
  const chat = createChatService({
    db,
    gate,
    agents,
    runtimes: runtimeManager,
    quotas,
    vault,
    approvals,
    providerFailures,
    abortNotifier,
    log,
  });
  abortNotifier.listen((sessionId) => chat.stopTurn(sessionId));
  // Schedules' firings and runs (pg-boss on its own pool); runs chat as their schedule's creator.
  const scheduler = createScheduler({
    db,
    appUrl: deps.database.appUrl,
    config,
    chat,
    vault,
    mailer: platformSettings.mailer,
    publicUrl: platformSettings.publicUrl,
    allowedHosts: async () => [
      ...(await platformSettings.providerAllowedHosts()),
      ...(config.egressAllowedHosts ?? []),
    ],
    log,
  });
  const oidcFlow = createOidcFlow({
    db,
    sealer: platformSealer,
    publicUrl: platformSettings.publicUrl,
    allowHttp: config.ssoAllowHttp,
  });
  if (driver.kind !== "process" && !config.runtimeCallbackUrl) {
    log.warn(
      { driver: driver.kind },
      "REEF_RUNTIME_CALLBACK_URL is not set: gateways in containers cannot reach Reef's LLM proxy, so their agents cannot call models",
    );
  }
  return {
    /** Whether gateways run contained (for the admin view, health and the benchmarks). */
    sandbox: runtimeIsolation,
    driver,
    system: createSystemService({
      database: deps.database,
      onCheckFailed: (check, err) => log.warn({ err, check }, "readiness check failed"),
    }),
    identity: createIdentityService({ db, audit, rateLimits, signIn }),
    // Single sign-on: operators' providers (OIDC issuers checked on save) and people's sign-ins through them.
    identityProviders: createIdentityProviderService({
      db,
      sealer: platformSealer,
      publicUrl: platformSettings.publicUrl,
      ssoAllowHttp: config.ssoAllowHttp,
      checkOidc: oidcFlow.check,
    }),
    sso: createSsoService({
      db,
      audit,
      signIn,
      oidc: oidcFlow,
      sealer: platformSealer,
      publicUrl: platformSettings.publicUrl,
      rateLimits,
    }),
    // Emailed links and the account page: mail and public URL as invites get them (platform settings, per request).
    emailLinks: createEmailLinkService({
      db,
      audit,
      rateLimits,
      signIn,
      mailer: platformSettings.mailer,
      publicUrl: platformSettings.publicUrl,
      log,
    }),
    account: createAccountService({
      db,
      audit,
      rateLimits,
      policy: signIn.policy,
      mailer: platformSettings.mailer,
      publicUrl: platformSettings.publicUrl,
      log,
    }),
    authState: createAuthState({ db, policy: signIn.policy, mailer: platformSettings.mailer }),
    signIn,
    // TOTP and recovery codes: enrolment, the second sign-in step, operators' reset (seeds under the platform key).
    twoFactor: createTwoFactorService({
      db,
      audit,
      rateLimits,
      signIn,
      sealer: platformSealer,
      platformRequires: async () => (await platformSettings.signInPolicy()).requireTwoFactor,
      mailer: platformSettings.mailer,
    }),
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
    runtimes: createRuntimeService({ gate, manager: runtimeManager, driver, isolation: runtimeIsolation, log }),
    vault,
    providers: createProviderService({ gate, vault, allowedHosts: platformSettings.providerAllowedHosts }),
    agents,
    quotas,
    egress: createEgressService({ db, gate, policy: egressPolicy }),
    egressRefusals,
    egressProxy,
    outbound,
    approvals,
    abortNotifier,
    chat,
    // Reef's agents as OpenAI models, for API keys (openai-routes.ts).
    openai: createOpenAiService({ db, gate, agents, chat, rateLimits, log }),
    scheduler,
    schedules: createScheduleService({
      db,
      gate,
      vault,
      agents,
      scheduler,
      minIntervalSeconds: config.scheduleMinIntervalSeconds,
      // The same hosts the notifications are sent under (see the scheduler above).
      notifyAllowedHosts: async () => [
        ...(await platformSettings.providerAllowedHosts()),
        ...(config.egressAllowedHosts ?? []),
      ],
    }),
    connectors: createConnectorService({
      gate,
      vault,
      catalog: mcpCatalog,
      policy: platformSettings.connectorPolicy,
    }),
    webhooks: createWebhookService({ db, vault, scheduler, rateLimits }),
  };
}
