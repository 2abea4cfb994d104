import {
  enrolConfirmBodySchema,
  enrolSignInResultSchema,
  enrolStartBodySchema,
  passwordConfirmBodySchema,
  recoveryCodesSchema,
  totpConfirmBodySchema,
  totpSetupSchema,
  twoFactorSignInResultSchema,
  twoFactorStatusSchema,
  twoFactorVerifyBodySchema,
} from "@reef/contracts";
import type { TwoFactorService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireUser, type SessionCookies } from "../plugins/auth.ts";

/**
 * Two-factor sign-in: the second step of a password or magic-link sign-in (and
 * enrolling an authenticator there when policy requires one), the account
 * page's settings, and operators' reset. The TOTP secret is only ever in the
 * answer to setup and enrol; no response after that carries it.
 */
export function twoFactorRoutes(deps: { twoFactor: TwoFactorService; cookies: SessionCookies }): FastifyPluginAsyncZod {
  const { twoFactor, cookies } = deps;
  return async (app) => {
    app.post(
      "/api/v1/auth/two-factor",
      {
        schema: {
          tags: ["auth"],
          summary: "Finish signing in with a code from the authenticator app, or a recovery code (each works once)",
          body: twoFactorVerifyBodySchema,
          response: { 200: twoFactorSignInResultSchema },
        },
      },
      async (request, reply) => {
        const result = await twoFactor.verifyChallenge(request.ctx, request.body);
        cookies.set(reply, result.session);
        return {
          user: result.user,
          recoveryCodeUsed: result.recoveryCodeUsed,
          recoveryCodesLeft: result.recoveryCodesLeft,
        };
      },
    );

    app.post(
      "/api/v1/auth/two-factor/enrol",
      {
        schema: {
          tags: ["auth"],
          summary: "Signing in where two-factor is required: a new authenticator's secret and otpauth URI",
          body: enrolStartBodySchema,
          response: { 200: totpSetupSchema },
        },
      },
      async (request) => twoFactor.enrolStart(request.ctx, request.body.challenge),
    );

    app.post(
      "/api/v1/auth/two-factor/enrol/confirm",
      {
        schema: {
          tags: ["auth"],
          summary: "Finish enrolling at sign-in with a code: signs in and answers the recovery codes (shown once)",
          body: enrolConfirmBodySchema,
          response: { 200: enrolSignInResultSchema },
        },
      },
      async (request, reply) => {
        const result = await twoFactor.enrolConfirm(request.ctx, request.body.challenge, request.body.code);
        cookies.set(reply, result.session);
        return { user: result.user, recoveryCodes: result.recoveryCodes };
      },
    );

    app.get(
      "/api/v1/me/two-factor",
      {
        schema: {
          tags: ["auth"],
          summary: "Whether two-factor is on, recovery codes left, and whether it is required",
          response: { 200: twoFactorStatusSchema },
        },
      },
      async (request) => twoFactor.status(requireUser(request)),
    );

    app.post(
      "/api/v1/me/two-factor/setup",
      {
        schema: {
          tags: ["auth"],
          summary: "Start setting up an authenticator (password required); pending until confirmed with a code",
          body: passwordConfirmBodySchema,
          response: { 200: totpSetupSchema },
        },
      },
      async (request) => twoFactor.setup(requireUser(request), request.body.password),
    );

    app.post(
      "/api/v1/me/two-factor/confirm",
      {
        schema: {
          tags: ["auth"],
          summary: "Turn two-factor on with a code from the new authenticator; answers ten recovery codes, shown once",
          body: totpConfirmBodySchema,
          response: { 200: recoveryCodesSchema },
        },
      },
      async (request) => ({ recoveryCodes: await twoFactor.confirm(requireUser(request), request.body.code) }),
    );

    app.post(
      "/api/v1/me/two-factor/disable",
      {
        schema: {
          tags: ["auth"],
          summary: "Turn two-factor off (password required; refused where the platform or a workspace requires it)",
          body: passwordConfirmBodySchema,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await twoFactor.disable(requireUser(request), request.body.password);
        return reply.status(204).send(null);
      },
    );

    app.post(
      "/api/v1/me/two-factor/recovery-codes",
      {
        schema: {
          tags: ["auth"],
          summary: "A new set of ten recovery codes (password required); the old set stops working",
          body: passwordConfirmBodySchema,
          response: { 200: recoveryCodesSchema },
        },
      },
      async (request) => ({
        recoveryCodes: await twoFactor.regenerateRecoveryCodes(requireUser(request), request.body.password),
      }),
    );

    app.post(
      "/api/v1/admin/users/:userId/two-factor/reset",
      {
        schema: {
          tags: ["admin"],
          summary: "Remove a person's authenticator and recovery codes and sign them out everywhere (operators only)",
          params: z.object({ userId: z.uuid() }),
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await twoFactor.adminReset(requireUser(request), request.params.userId);
        return reply.status(204).send(null);
      },
    );
  };
}
