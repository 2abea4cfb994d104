import { z } from "zod";
import { nameSchema } from "./common.ts";

export const PROVIDER_KINDS = ["openai", "anthropic", "openrouter", "ollama", "openai-compatible"] as const;

const modelIdSchema = z.string().trim().min(1).max(200);
const baseUrlSchema = z
  .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
  .max(2000)
  .transform((v) => v.replace(/\/+$/, ""));
const apiKeySchema = z.string().trim().min(8, "looks too short to be an API key").max(4000);

export const createProviderBodySchema = z.object({
  name: nameSchema,
  kind: z.enum(PROVIDER_KINDS),
  /** Required for `openai-compatible`; defaults to the vendor's URL otherwise. */
  baseUrl: baseUrlSchema.optional(),
  /** Write-only: stored in the vault, never returned. Optional only for Ollama. */
  apiKey: apiKeySchema.optional(),
  /** Model ids; fetched from the provider when omitted and it lists them. */
  models: z.array(modelIdSchema).max(500).optional(),
  /** A personal provider only its creator can see and use. */
  personal: z.boolean().optional(),
});

export const updateProviderBodySchema = z.object({
  name: nameSchema.optional(),
  /** A new base URL needs `apiKey` too when the provider has a key: the stored one never goes to a new URL. */
  baseUrl: baseUrlSchema.optional(),
  apiKey: apiKeySchema.optional(),
  models: z.array(modelIdSchema).max(500).optional(),
});

export const providerSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  kind: z.enum(PROVIDER_KINDS),
  baseUrl: z.string(),
  /** `••••` and the key's last four characters, or null when there is no key. */
  apiKey: z.string().nullable(),
  models: z.array(z.string()),
  personal: z.boolean(),
  createdBy: z.uuid().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const providerTestResultSchema = z.object({
  ok: z.boolean(),
  /** Stable reason code when not ok. */
  reason: z.enum(["bad_key", "unreachable", "timeout", "not_found", "upstream_error", "not_allowed"]).nullable(),
  message: z.string(),
  models: z.array(z.string()),
  latencyMs: z.number().int(),
});
