import {
  platformSettingsSchema,
  testEmailBodySchema,
  testEmailResultSchema,
  updatePlatformSettingsBodySchema,
} from "@reef/contracts";
import type { PlatformSettingsService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { requireUser } from "../plugins/auth.ts";

/** Platform settings for operators: the first-run wizard and the admin screen. */
export function settingsRoutes(deps: { platformSettings: PlatformSettingsService }): FastifyPluginAsyncZod {
  const { platformSettings } = deps;
  return async (app) => {
    app.get(
      "/api/v1/admin/settings",
      {
        schema: {
          tags: ["admin"],
          summary: "Platform settings and where each value comes from (operators only)",
          response: { 200: platformSettingsSchema },
        },
      },
      async (request) => platformSettings.get(requireUser(request)),
    );
    app.patch(
      "/api/v1/admin/settings",
      {
        schema: {
          tags: ["admin"],
          summary: "Change platform settings; applies without a restart (operators only)",
          body: updatePlatformSettingsBodySchema,
          response: { 200: platformSettingsSchema },
        },
      },
      async (request) => platformSettings.update(requireUser(request), request.body),
    );
    app.post(
      "/api/v1/admin/settings/test-email",
      {
        schema: {
          tags: ["admin"],
          summary: "Send a test email with the saved or the given mail server (operators only)",
          body: testEmailBodySchema.default({}),
          response: { 200: testEmailResultSchema },
        },
      },
      async (request) => platformSettings.testEmail(requireUser(request), request.body),
    );
  };
}
