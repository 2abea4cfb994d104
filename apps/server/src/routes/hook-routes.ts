import { hookAcceptedSchema, WEBHOOK_HEADERS } from "@reef/contracts";
import type { WebhookService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";

/** Where a webhook call starts: no session, no cookie, no CSRF (see plugins/auth.ts); the signature is the credential. */
export const HOOK_PREFIX = "/api/v1/hooks/";

declare module "fastify" {
  interface FastifyRequest {
    /** A webhook call's body exactly as sent, for its HMAC (set only on hook routes). */
    rawBody?: Buffer;
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/**
 * Inbound webhook triggers. The body is kept as bytes (the signature covers
 * them exactly as sent) and parsed only after the call is verified. This
 * plugin's own content-type parsers replace the app's JSON parser for these
 * routes only.
 */
export function hookRoutes(deps: { webhooks: WebhookService }): FastifyPluginAsyncZod {
  return async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "buffer" }, (request, body, done) => {
      request.rawBody = body as Buffer;
      // Nothing for the route's validation or the input guard to walk: the service parses it.
      done(null, undefined);
    });
    app.post(
      `${HOOK_PREFIX}:wid/:scheduleId`,
      {
        schema: {
          tags: ["schedules"],
          summary: "Fire a webhook trigger: a JSON body signed with the trigger's secret (X-Reef-* headers)",
          params: z.object({ wid: z.string().max(64), scheduleId: z.string().max(64) }),
          response: { 202: hookAcceptedSchema },
        },
      },
      async (request, reply) => {
        const accepted = await deps.webhooks.accept(
          { ip: request.ip, userAgent: request.headers["user-agent"], requestId: String(request.id) },
          request.params.wid,
          request.params.scheduleId,
          {
            timestamp: header(request.headers[WEBHOOK_HEADERS.timestamp]),
            delivery: header(request.headers[WEBHOOK_HEADERS.delivery]),
            signature: header(request.headers[WEBHOOK_HEADERS.signature]),
          },
          request.rawBody ?? Buffer.alloc(0),
        );
        return reply.status(202).send(accepted);
      },
    );
  };
}
