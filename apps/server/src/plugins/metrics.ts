import { createHash, timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "@reef/contracts";
import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/**
 * Prometheus metrics on their own registry (one per app instance, so tests and
 * several apps in one process never collide): process defaults plus an HTTP
 * latency histogram labelled by route pattern, never by raw URL, to keep the
 * label set bounded.
 *
 * They tell an outsider which routes exist, how busy Reef is and its memory, so
 * they are served only to a scraper with the configured bearer token; with no
 * token configured `/metrics` is not served at all (404).
 */
export function registerMetrics(app: FastifyInstance, opts: { token?: string | undefined }): Registry | undefined {
  const { token } = opts;
  if (!token) return undefined;
  // Comparing digests keeps the comparison constant-time whatever the presented length.
  const expected = digest(token);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "reef_" });
  const duration = new Histogram({
    name: "reef_http_request_duration_seconds",
    help: "HTTP request latency by method, route pattern and status code",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    duration.observe(
      { method: request.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  app.get("/metrics", { schema: { hide: true } }, async (request, reply) => {
    const presented = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1] ?? "";
    if (!timingSafeEqual(digest(presented), expected)) {
      reply.header("www-authenticate", "Bearer");
      throw new UnauthorizedError("Send the metrics token: Authorization: Bearer <REEF_METRICS_TOKEN>.");
    }
    reply.type(registry.contentType);
    return registry.metrics();
  });
  return registry;
}
