import { z } from "zod";
import { nameSchema } from "./common.ts";

export const CONNECTOR_KIND_VALUES = ["mcp", "n8n", "activepieces", "catalog"] as const;
export const CONNECTOR_TRANSPORT_VALUES = ["streamable-http", "sse", "stdio"] as const;
export type ConnectorKindValue = (typeof CONNECTOR_KIND_VALUES)[number];

/** Why a connection test failed, for the UI to explain (the message says more). */
export const CONNECTOR_TEST_ERROR_CODES = [
  /** The URL's host is a private address the operator has not allowed, or does not resolve. */
  "URL_NOT_ALLOWED",
  /** Nothing answered (refused, reset, DNS, TLS). */
  "UNREACHABLE",
  /** The server answered 401 or 403: the token or headers are wrong. */
  "AUTH_FAILED",
  /** The server answered, but not as an MCP server (wrong path, wrong transport). */
  "NOT_MCP",
  /** No answer within the test's time limit. */
  "TIMEOUT",
  /** The server's MCP handshake or tool list failed (its message is shown). */
  "PROTOCOL_ERROR",
] as const;

const httpUrl = z
  .string()
  .trim()
  .max(2000)
  .url("Give a full http:// or https:// URL.")
  .refine((v) => /^https?:\/\//i.test(v), "The URL must start with http:// or https://.");

const headerName = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9-]+$/, "Header names are letters, digits and dashes.");
const headerValue = z
  .string()
  .max(4000)
  .regex(/^[^\r\n]*$/, "Header values are one line.");

/** Tool names as MCP servers give them. */
const toolName = z.string().trim().min(1).max(128);

/**
 * Credentials: write-only. Absent on update: keep what is stored; `null`:
 * remove it. Neither is ever returned (see `secretHint`).
 */
const credentialFields = {
  /** Sent as `Authorization: Bearer <token>`. */
  bearerToken: z.string().trim().min(1).max(4000).nullable().optional(),
  /** Other headers the server needs (values sealed like the token). */
  headers: z.record(headerName, headerValue).nullable().optional(),
  /** The workflow engine's REST API key (n8n, Activepieces presets), to list its workflows. */
  apiKey: z.string().trim().min(1).max(4000).nullable().optional(),
};

export const createConnectorBodySchema = z.object({
  name: nameSchema,
  kind: z.enum(CONNECTOR_KIND_VALUES),
  /** HTTP transports; default `streamable-http`. Catalogue connectors are always stdio. */
  transport: z.enum(["streamable-http", "sse"]).optional(),
  /** The MCP endpoint (`mcp`); for presets Reef derives it from `instanceUrl` unless given. */
  url: httpUrl.optional(),
  /** The n8n / Activepieces instance's address (presets). */
  instanceUrl: httpUrl.optional(),
  /** An entry of the operator's catalogue (`catalog` connectors). */
  catalogEntryId: z.string().trim().min(1).max(100).optional(),
  /** Only these tools are offered to agents; absent or null: all the server lists. */
  toolAllowlist: z.array(toolName).max(500).nullable().optional(),
  enabled: z.boolean().optional(),
  ...credentialFields,
});
export type CreateConnectorBody = z.infer<typeof createConnectorBodySchema>;

export const updateConnectorBodySchema = z.object({
  name: nameSchema.optional(),
  transport: z.enum(["streamable-http", "sse"]).optional(),
  url: httpUrl.optional(),
  instanceUrl: httpUrl.optional(),
  toolAllowlist: z.array(toolName).max(500).nullable().optional(),
  enabled: z.boolean().optional(),
  ...credentialFields,
});
export type UpdateConnectorBody = z.infer<typeof updateConnectorBodySchema>;

export const connectorToolSchema = z.object({ name: z.string(), description: z.string().optional() });

export const connectorAgentSchema = z.object({
  agentId: z.uuid(),
  /** Null: every tool the connector offers. */
  tools: z.array(toolName).max(500).nullable(),
});

export const connectorViewSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  /** The server's name inside the gateway: its tools are named `<slug>__<tool>`. */
  slug: z.string(),
  kind: z.enum(CONNECTOR_KIND_VALUES),
  transport: z.enum(CONNECTOR_TRANSPORT_VALUES),
  url: z.string().nullable(),
  instanceUrl: z.string().nullable(),
  catalogEntryId: z.string().nullable(),
  hasBearerToken: z.boolean(),
  /** Names of the other headers stored (never their values). */
  headerNames: z.array(z.string()),
  hasApiKey: z.boolean(),
  /** `…abcd`: the last characters of the stored token, to recognise it. */
  secretHint: z.string().nullable(),
  toolAllowlist: z.array(z.string()).nullable(),
  enabled: z.boolean(),
  /** The tools listed at the last successful test (null: never tested). */
  tools: z.array(connectorToolSchema).nullable(),
  lastTestedAt: z.string().nullable(),
  lastTestOk: z.boolean().nullable(),
  lastTestError: z.string().nullable(),
  agents: z.array(connectorAgentSchema),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type ConnectorView = z.infer<typeof connectorViewSchema>;

export const connectorTestResultSchema = z.object({
  ok: z.boolean(),
  tools: z.array(connectorToolSchema),
  /** The server's name and version from its MCP handshake. */
  server: z.object({ name: z.string(), version: z.string() }).nullable(),
  error: z.object({ code: z.enum(CONNECTOR_TEST_ERROR_CODES), message: z.string() }).nullable(),
  durationMs: z.number(),
});
export type ConnectorTestResult = z.infer<typeof connectorTestResultSchema>;

export const setConnectorAgentsBodySchema = z.object({ agents: z.array(connectorAgentSchema).max(500) });

/** A workflow (n8n) or flow (Activepieces) the connector's API key can see. */
export const connectorWorkflowSchema = z.object({
  id: z.string(),
  name: z.string(),
  active: z.boolean(),
  /** Whether the engine exposes it to MCP clients (n8n's "available in MCP"), where it says. */
  availableInMcp: z.boolean().nullable(),
  updatedAt: z.string().nullable(),
});
export const connectorWorkflowsSchema = z.object({
  items: z.array(connectorWorkflowSchema),
  nextCursor: z.string().nullable(),
});

/** An entry of the operator's stdio catalogue, as workspace admins see it (never its command). */
export const catalogEntryViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
});
