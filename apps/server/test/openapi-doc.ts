/**
 * The app's own OpenAPI document as the input-walking tests read it
 * (hostile-input, route-fuzz): its schemas, operations and `$ref`s.
 */

/** The JSON Schema subset the route schemas use. */
export type JsonSchema = {
  $ref?: string;
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
};
export type Parameter = { name: string; in: string; required?: boolean; schema?: JsonSchema };
export type Operation = {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
};
export type OpenApi = {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, JsonSchema> };
};

/** A schema with its `$ref`s (to components) followed; `{}` for none. */
export function resolveSchema(doc: OpenApi, s: JsonSchema | undefined): JsonSchema {
  if (!s) return {};
  if (!s.$ref) return s;
  return resolveSchema(doc, doc.components?.schemas?.[s.$ref.replace("#/components/schemas/", "")]);
}

/** Every operation of the document: method (upper case), path template and its description. */
export function operationsOf(doc: OpenApi): { method: string; path: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
  );
}
