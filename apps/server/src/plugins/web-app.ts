import { existsSync } from "node:fs";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { sendError, sendRouteNotFound } from "./error-handler.ts";

const API_PREFIXES = ["/api/", "/healthz", "/readyz", "/metrics"];

/**
 * Serves the built single-page app at `/`. Unknown non-API GETs that want HTML
 * get `index.html` so client-side routes survive a reload; everything else gets
 * the JSON 404.
 */
export async function registerWebApp(app: FastifyInstance, distDir: string): Promise<void> {
  const built = existsSync(join(distDir, "index.html"));
  if (built) {
    await app.register(fastifyStatic, { root: distDir, prefix: "/", wildcard: false, index: ["index.html"] });
  } else {
    app.log.warn({ distDir }, "the web app is not built; run `npm run build:web`");
  }
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "/";
    const wantsPage =
      (request.method === "GET" || request.method === "HEAD") &&
      !API_PREFIXES.some((p) => path.startsWith(p)) &&
      (request.headers.accept ?? "").includes("text/html");
    if (!wantsPage) return sendRouteNotFound(request, reply);
    if (!built) {
      return sendError(
        reply,
        request,
        503,
        "UNAVAILABLE",
        "The web app is not built on this server. Run `npm run build:web`.",
      );
    }
    return reply.type("text/html; charset=utf-8").sendFile("index.html");
  });
}
