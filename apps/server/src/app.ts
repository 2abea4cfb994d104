import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import helmet from "@fastify/helmet";
import type { Config } from "@reef/config";
import type { Database } from "@reef/db";
import { closeGatewayChannels } from "@reef/runtime";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import secureJson from "secure-json-parse";
import { createCsrfTokens } from "./csrf.ts";
import { createSessionCookies, registerAuth } from "./plugins/auth.ts";
import { registerErrorHandler } from "./plugins/error-handler.ts";
import { registerInputGuard } from "./plugins/input-guard.ts";
import { registerMetrics } from "./plugins/metrics.ts";
import { registerOpenApi } from "./plugins/openapi.ts";
import { registerWebApp } from "./plugins/web-app.ts";
import { recordRoutes } from "./route-table.ts";
import { accountRoutes } from "./routes/account-routes.ts";
import { agentRoutes } from "./routes/agent-routes.ts";
import { apiKeyRoutes } from "./routes/api-key-routes.ts";
import { approvalRoutes } from "./routes/approval-routes.ts";
import { auditAndAdminRoutes } from "./routes/audit-routes.ts";
import { authRoutes } from "./routes/auth-routes.ts";
import { authStateRoutes } from "./routes/auth-state-routes.ts";
import { chatRoutes } from "./routes/chat-routes.ts";
import { connectorRoutes } from "./routes/connector-routes.ts";
import { egressRoutes } from "./routes/egress-routes.ts";
import { healthRoutes } from "./routes/health-routes.ts";
import { hookRoutes } from "./routes/hook-routes.ts";
import { identityProviderRoutes } from "./routes/identity-provider-routes.ts";
import { llmProxyRoutes } from "./routes/llm-proxy-routes.ts";
import { openaiRoutes } from "./routes/openai-routes.ts";
import { providerRoutes } from "./routes/provider-routes.ts";
import { runtimeRoutes } from "./routes/runtime-routes.ts";
import { samlRoutes } from "./routes/saml-routes.ts";
import { scheduleRoutes } from "./routes/schedule-routes.ts";
import { settingsRoutes } from "./routes/settings-routes.ts";
import { ssoRoutes } from "./routes/sso-routes.ts";
import { twoFactorRoutes } from "./routes/two-factor-routes.ts";
import { workspaceRoutes } from "./routes/workspace-routes.ts";
import type { ServiceLayout } from "./service-layout.ts";
import { createServices } from "./services.ts";
import { REEF_VERSION } from "./version.ts";

/** Where `npm run build:web` puts the single-page app. */
export const DEFAULT_WEB_DIST = fileURLToPath(new URL("../../web/dist", import.meta.url));

/** The settings the app itself uses (a subset of {@link Config}). */
export type AppConfig = Pick<
  Config,
  | "bodyLimitBytes"
  | "trustProxy"
  | "publicUrl"
  | "sessionTtlHours"
  | "inviteTtlHours"
  | "rateLimitSignupIp"
  | "rateLimitLoginIp"
  | "rateLimitLoginAccount"
  | "rateLimitInviteAccept"
  | "rateLimitApiRead"
  | "rateLimitApiWrite"
  | "smtpUrl"
  | "smtpFrom"
  | "metricsToken"
  | "providerAllowedHosts"
  | "egressAllowedHosts"
  | "grantableTools"
  | "approvalTimeoutSeconds"
  | "dataDir"
  | "secretKey"
  | "secretKeyPrevious"
  | "explicitKeys"
  | "runtimeDriver"
  | "sandbox"
  | "runtimeCallbackUrl"
  | "runtimeImage"
  | "dockerSocket"
  | "dockerReefContainer"
  | "kubernetesNamespace"
  | "runtimeIdleTimeoutMinutes"
  | "runtimePauseAfterMinutes"
  | "runtimeSwapOutAfterMinutes"
  | "runtimeStartTimeoutSeconds"
  | "runtimeMemoryMb"
  | "runtimeCpus"
  | "runtimePids"
  | "maxWorkspacesPerUser"
  | "maxRuntimesPerUser"
  | "maxRuntimes"
  | "quotaMonthlyMessages"
  | "quotaMonthlyTokens"
  | "schedulerEnabled"
  | "scheduleMinIntervalSeconds"
  | "schedulerConcurrency"
  | "scheduleRetryLimit"
  | "scheduleRetryDelaySeconds"
  | "scheduleFailureAlertAfter"
  | "schedulerPollSeconds"
  | "rateLimitWebhook"
  | "rateLimitOpenai"
  | "connectorsEnabled"
  | "connectorAllowedHosts"
  | "mcpCatalogFile"
  | "mcpServersDir"
  | "requireSso"
  | "requireTwoFactor"
  | "ssoAllowHttp"
  | "rateLimitTwoFactor"
  | "rateLimitAuthEmail"
>;

const appServices = new WeakMap<FastifyInstance, ReturnType<typeof createServices>>();

/** The services an app was built with (the server's lifecycle drives the runtime manager). */
export function servicesOf(app: FastifyInstance): ReturnType<typeof createServices> {
  const services = appServices.get(app);
  if (!services) throw new Error("not an app built by buildApp");
  return services;
}

export interface AppDeps {
  config: AppConfig;
  database: Database;
  logger: Logger;
  webDistDir?: string;
  /** Where gateways' runtimes live and what they run (default: the data dir and this install). */
  layout?: Pick<ServiceLayout, "runtimesDir" | "mirror">;
  /**
   * Tests only, never an operator setting. `unsandboxedRuntimesForTests`: the attack test's control run
   * (process-driver gateways unsandboxed, shell and file tools kept, as before sandboxes);
   * `sandboxUnavailableForTests`: as on a host without bubblewrap (unsandboxed, those tools refused).
   */
  unsandboxedRuntimesForTests?: boolean;
  sandboxUnavailableForTests?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The composition root: builds services from their dependencies and mounts
 * routes, which only parse, authorise and call services. Nothing here listens
 * on a port, so tests drive it with `app.inject()`.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.bodyLimitBytes,
    trustProxy: deps.config.trustProxy,
    // A proxy's request id is kept so one id follows a request across hops.
    genReqId: (req) => {
      const incoming = req.headers["x-request-id"];
      return typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: "idle",
  }).withTypeProvider<ZodTypeProvider>();
  recordRoutes(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  // Fastify's JSON parser refuses an empty body sent as application/json, which
  // clients do for body-less POSTs (logout, accept an invite). Treat it as no
  // body; routes that need one then fail validation with a clear message.
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    try {
      done(null, secureJson.parse(text, null, { protoAction: "error", constructorAction: "error" }));
    } catch (err) {
      const error = err as Error & { statusCode?: number; code?: string };
      error.statusCode = 400;
      error.code = "FST_ERR_CTP_INVALID_JSON_BODY";
      done(error, undefined);
    }
  });
  registerErrorHandler(app);
  registerInputGuard(app);
  const services = createServices(deps, app.log);
  appServices.set(app, services);
  // Refused egress is counted in batches: write the last one before the pool closes.
  app.addHook("onClose", async () => services.egressRefusals.close());
  // LLM calls still streaming are cut; those finished are metered before the pool closes.
  app.addHook("onClose", async () => services.outbound.close());
  app.addHook("onClose", async () => services.approvals.close());
  app.addHook("onClose", async () => services.abortNotifier.close());
  // Schedules fire once the app is whole; at shutdown no new run starts (before the answers in flight are cut).
  app.addHook("onReady", async () => services.scheduler.start());
  app.addHook("preClose", async () => services.scheduler.stop());
  // Answers being written end `interrupted` (text kept) and their streams close, so shutdown is not held open.
  app.addHook("preClose", async () => services.chat.interruptAll());
  // The runs cut above are handed back to the queue (retried by any replica), then pg-boss's pool closes.
  app.addHook("onClose", async () => services.scheduler.close());
  // Shared gateway connections would otherwise hold shutdown open until they idle out.
  app.addHook("onClose", async () => closeGatewayChannels());
  // HSTS and upgrade-insecure-requests only make sense when users reach Reef
  // over https; on a plain-http LAN address they would break the app. The public
  // URL may come from the platform settings an operator saved, not only the config.
  const https = (await services.platformSettings.startupPublicUrl()).startsWith("https:");
  await app.register(helmet, {
    strictTransportSecurity: https,
    contentSecurityPolicy: {
      directives: {
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "upgrade-insecure-requests": https ? [] : null,
      },
    },
  });
  registerMetrics(app, { token: deps.config.metricsToken });
  await registerOpenApi(app, REEF_VERSION);

  const cookies = createSessionCookies({
    secure: https,
    csrf: createCsrfTokens([deps.config.secretKey, ...(deps.config.secretKeyPrevious ?? [])]),
  });
  await app.register(registerAuth, { identity: services.identity, apiKeys: services.apiKeys, cookies });
  await app.register(healthRoutes({ system: services.system, version: REEF_VERSION }));
  await app.register(authRoutes({ identity: services.identity, cookies }));
  await app.register(twoFactorRoutes({ twoFactor: services.twoFactor, cookies }));
  await app.register(ssoRoutes({ sso: services.sso, cookies, secure: https }));
  await app.register(identityProviderRoutes(services));
  await app.register(accountRoutes({ ...services, cookies, secureCookies: https }));
  await app.register(authStateRoutes(services));
  await app.register(samlRoutes({ samlFlow: services.sso.saml, cookies }));
  await app.register(workspaceRoutes(services));
  await app.register(apiKeyRoutes(services));
  await app.register(auditAndAdminRoutes(services));
  await app.register(runtimeRoutes(services));
  await app.register(settingsRoutes(services));
  await app.register(providerRoutes(services));
  await app.register(agentRoutes(services));
  await app.register(chatRoutes(services));
  await app.register(approvalRoutes(services));
  await app.register(egressRoutes(services));
  await app.register(llmProxyRoutes(services));
  await app.register(scheduleRoutes(services));
  await app.register(hookRoutes(services));
  await app.register(openaiRoutes(services));
  await app.register(connectorRoutes(services));

  await registerWebApp(app, deps.webDistDir ?? DEFAULT_WEB_DIST);
  return app;
}
