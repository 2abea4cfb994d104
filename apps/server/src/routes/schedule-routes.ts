import {
  createdScheduleSchema,
  createScheduleBodySchema,
  pageOf,
  runDetailSchema,
  runQuerySchema,
  runSchema,
  schedulePreviewQuerySchema,
  schedulePreviewSchema,
  scheduleQuerySchema,
  scheduleSchema,
  scheduleSecretSchema,
  updateScheduleBodySchema,
} from "@reef/contracts";
import type { ScheduleService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });
const one = wid.extend({ scheduleId: z.uuid() });
const TAGS = ["schedules"];
const BASE = "/api/v1/workspaces/:wid/schedules";

/** A changed schedule; `secret` only when the change made one (a notification URL added), shown this once. */
const updatedScheduleSchema = scheduleSchema.extend({ secret: z.string().nullable().optional() });

export function scheduleRoutes(deps: { schedules: ScheduleService }): FastifyPluginAsyncZod {
  const { schedules } = deps;
  return async (app) => {
    app.get(
      BASE,
      {
        schema: {
          tags: TAGS,
          summary: "The workspace's schedules and triggers, newest first",
          params: wid,
          querystring: scheduleQuerySchema,
          response: { 200: pageOf(scheduleSchema) },
        },
      },
      async (request) => schedules.list(requireActor(request), request.params.wid, request.query),
    );
    app.post(
      BASE,
      {
        schema: {
          tags: TAGS,
          summary: "Create a schedule or webhook trigger; its `secret` is shown only in this response",
          params: wid,
          body: createScheduleBodySchema,
          response: { 201: createdScheduleSchema },
        },
      },
      async (request, reply) =>
        reply.status(201).send(await schedules.create(requireActor(request), request.params.wid, request.body)),
    );
    app.get(
      `${BASE}/preview`,
      {
        schema: {
          tags: TAGS,
          summary: "The next five firings of a cron expression in a time zone",
          params: wid,
          querystring: schedulePreviewQuerySchema,
          response: { 200: schedulePreviewSchema },
        },
      },
      async (request) => schedules.preview(requireActor(request), request.params.wid, request.query),
    );
    app.get(
      `${BASE}/:scheduleId`,
      { schema: { tags: TAGS, params: one, response: { 200: scheduleSchema } } },
      async (request) => schedules.get(requireActor(request), request.params.wid, request.params.scheduleId),
    );
    app.patch(
      `${BASE}/:scheduleId`,
      {
        schema: {
          tags: TAGS,
          summary: "Change a schedule; `enabled: false` pauses it",
          params: one,
          body: updateScheduleBodySchema,
          response: { 200: updatedScheduleSchema },
        },
      },
      async (request) => {
        const { secret, ...view } = await schedules.update(
          requireActor(request),
          request.params.wid,
          request.params.scheduleId,
          request.body,
        );
        return secret ? { ...view, secret } : view;
      },
    );
    app.delete(
      `${BASE}/:scheduleId`,
      { schema: { tags: TAGS, params: one, response: { 204: z.null() } } },
      async (request, reply) => {
        await schedules.delete(requireActor(request), request.params.wid, request.params.scheduleId);
        return reply.status(204).send(null);
      },
    );
    app.post(
      `${BASE}/:scheduleId/run`,
      {
        schema: {
          tags: TAGS,
          summary: "Run now (also while paused); answers with the queued run",
          params: one,
          response: { 202: runSchema },
        },
      },
      async (request, reply) =>
        reply
          .status(202)
          .send(await schedules.runNow(requireActor(request), request.params.wid, request.params.scheduleId)),
    );
    app.post(
      `${BASE}/:scheduleId/rotate-secret`,
      {
        schema: {
          tags: TAGS,
          summary: "Replace the signing secret (the old one stops working); shown only in this response",
          params: one,
          response: { 200: scheduleSecretSchema },
        },
      },
      async (request) => schedules.rotateSecret(requireActor(request), request.params.wid, request.params.scheduleId),
    );
    app.get(
      `${BASE}/:scheduleId/runs`,
      {
        schema: {
          tags: TAGS,
          summary: "A schedule's runs, newest first",
          params: one,
          querystring: runQuerySchema,
          response: { 200: pageOf(runSchema) },
        },
      },
      async (request) =>
        schedules.listRuns(requireActor(request), request.params.wid, request.params.scheduleId, request.query),
    );
    app.get(
      `${BASE}/:scheduleId/runs/:runId`,
      {
        schema: {
          tags: TAGS,
          summary: "One run; its prompt and output only for the creator, or everyone when shared",
          params: one.extend({ runId: z.uuid() }),
          response: { 200: runDetailSchema },
        },
      },
      async (request) =>
        schedules.getRun(requireActor(request), request.params.wid, request.params.scheduleId, request.params.runId),
    );
  };
}
