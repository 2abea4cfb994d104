export { type AppConfig, type AppDeps, buildApp, DEFAULT_WEB_DIST, servicesOf } from "./app.ts";
export { createLogger, loggerOptions, REDACT_PATHS, redactUrl, serializeError } from "./logger.ts";
export { type RouteEntry, routeTable } from "./route-table.ts";
export { appRolePassword, openConfiguredDatabase, type RunningServer, startServer } from "./server.ts";
export { othersCanEnter, planServiceDir } from "./service-layout.ts";
export { REEF_VERSION } from "./version.ts";
