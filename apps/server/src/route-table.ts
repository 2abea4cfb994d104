import type { FastifyInstance } from "fastify";

/** One method + path the app answers, as registered. */
export interface RouteEntry {
  method: string;
  url: string;
  /** The route validates a request body (so callers must send a valid one to reach its handler). */
  hasBody: boolean;
  /** Left out of the OpenAPI document (internal and static routes). */
  hidden: boolean;
}

const tables = new WeakMap<FastifyInstance, RouteEntry[]>();

/**
 * Starts recording every route registered on `app` (and its plugins), so tests
 * that must cover all routes (the bad-input walk, the isolation suite) read the
 * table from the app itself instead of a list someone must remember to update.
 */
export function recordRoutes(app: FastifyInstance): void {
  const routes: RouteEntry[] = [];
  tables.set(app, routes);
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = route.schema as { body?: unknown; hide?: boolean } | undefined;
    for (const method of methods) {
      routes.push({ method, url: route.url, hasBody: schema?.body !== undefined, hidden: schema?.hide === true });
    }
  });
}

export function routeTable(app: FastifyInstance): RouteEntry[] {
  const routes = tables.get(app);
  if (!routes) throw new Error("routes were not recorded for this app");
  return [...routes];
}
