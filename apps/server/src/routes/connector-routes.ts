import {
  catalogEntryViewSchema,
  connectorTestResultSchema,
  connectorViewSchema,
  connectorWorkflowsSchema,
  createConnectorBodySchema,
  pageOf,
  pageQuerySchema,
  setConnectorAgentsBodySchema,
  updateConnectorBodySchema,
} from "@reef/contracts";
import type { ConnectorService } from "@reef/core";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requireActor } from "../plugins/auth.ts";

const wid = z.object({ wid: z.uuid() });
const one = wid.extend({ connectorId: z.uuid() });
const TAGS = ["connectors"];
const BASE = "/api/v1/workspaces/:wid/connectors";

/** A workspace's MCP connectors (admins manage, everyone reads) and the operator's stdio catalogue. */
export function connectorRoutes(deps: { connectors: ConnectorService }): FastifyPluginAsyncZod {
  const { connectors } = deps;
  return async (app) => {
    app.get(
      BASE,
      {
        schema: {
          tags: TAGS,
          summary: "The workspace's MCP connectors, newest first (credentials never shown)",
          params: wid,
          querystring: pageQuerySchema,
          response: { 200: pageOf(connectorViewSchema) },
        },
      },
      async (request) => connectors.list(requireActor(request), request.params.wid, request.query),
    );
    app.post(
      BASE,
      {
        schema: {
          tags: TAGS,
          summary: "Add a connector (generic MCP, n8n, Activepieces or a catalogue entry)",
          params: wid,
          body: createConnectorBodySchema,
          response: { 201: connectorViewSchema },
        },
      },
      async (request, reply) =>
        reply.status(201).send(await connectors.create(requireActor(request), request.params.wid, request.body)),
    );
    app.post(
      `${BASE}/test`,
      {
        schema: {
          tags: TAGS,
          summary: "Test a connector before saving it: connect and list its tools (nothing is stored)",
          params: wid,
          body: createConnectorBodySchema,
          response: { 200: connectorTestResultSchema },
        },
      },
      async (request) => connectors.testDraft(requireActor(request), request.params.wid, request.body),
    );
    app.get(
      `${BASE}/:connectorId`,
      { schema: { tags: TAGS, params: one, response: { 200: connectorViewSchema } } },
      async (request) => connectors.get(requireActor(request), request.params.wid, request.params.connectorId),
    );
    app.patch(
      `${BASE}/:connectorId`,
      {
        schema: {
          tags: TAGS,
          summary: "Change a connector; credentials are write-only (absent keeps, null removes)",
          params: one,
          body: updateConnectorBodySchema,
          response: { 200: connectorViewSchema },
        },
      },
      async (request) =>
        connectors.update(requireActor(request), request.params.wid, request.params.connectorId, request.body),
    );
    app.delete(
      `${BASE}/:connectorId`,
      { schema: { tags: TAGS, params: one, response: { 204: z.null() } } },
      async (request, reply) => {
        await connectors.delete(requireActor(request), request.params.wid, request.params.connectorId);
        return reply.status(204).send(null);
      },
    );
    app.post(
      `${BASE}/:connectorId/test`,
      {
        schema: {
          tags: TAGS,
          summary: "Connect to the connector and list its tools; the result is stored on it",
          params: one,
          response: { 200: connectorTestResultSchema },
        },
      },
      async (request) => connectors.test(requireActor(request), request.params.wid, request.params.connectorId),
    );
    app.put(
      `${BASE}/:connectorId/agents`,
      {
        schema: {
          tags: TAGS,
          summary: "Replace which agents may use the connector (and which of its tools)",
          params: one,
          body: setConnectorAgentsBodySchema,
          response: { 200: connectorViewSchema },
        },
      },
      async (request) =>
        connectors.setAgents(
          requireActor(request),
          request.params.wid,
          request.params.connectorId,
          request.body.agents,
        ),
    );
    app.get(
      `${BASE}/:connectorId/workflows`,
      {
        schema: {
          tags: TAGS,
          summary: "The n8n workflows or Activepieces flows the connector's API key can see",
          params: one,
          querystring: z.object({
            cursor: z.string().max(2000).optional(),
            limit: z.coerce.number().int().min(1).max(100).optional(),
          }),
          response: { 200: connectorWorkflowsSchema },
        },
      },
      async (request) =>
        connectors.workflows(requireActor(request), request.params.wid, request.params.connectorId, request.query),
    );
    app.get(
      "/api/v1/connector-catalog",
      {
        schema: {
          tags: TAGS,
          summary: "The operator's catalogue of stdio MCP servers workspaces may add (never their commands)",
          response: { 200: z.object({ items: z.array(catalogEntryViewSchema) }) },
        },
      },
      async (request) => {
        requireActor(request);
        return { items: connectors.catalog() };
      },
    );
  };
}
