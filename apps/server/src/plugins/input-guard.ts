import { BadRequestError } from "@reef/contracts";
import type { FastifyInstance } from "fastify";
import { fieldLabel } from "./validation-text.ts";

type Where = "params" | "querystring" | "body";

const MAX_DEPTH = 64;

/** The path (dotted, as validation errors name it) of the first string or key holding a NUL, if any. */
export function findNul(value: unknown, at: string[] = [], depth = 0): string[] | undefined {
  if (typeof value === "string") return value.includes("\u0000") ? at : undefined;
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNul(value[i], [...at, String(i)], depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key.includes("\u0000")) return [...at, key.replaceAll("\u0000", "\\0")];
    const found = findNul(v, [...at, key], depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Refuses a NUL character anywhere in a request's path parameters, query or
 * JSON body with 400, before any route validates or acts on it. Postgres text
 * cannot hold NUL, so one that slipped through a schema would otherwise surface
 * as a 500 (or worse, be cut short by some other system), and no legitimate
 * name, email, filter or message contains one. Done once here rather than in
 * every schema so a new route or field is covered without anyone remembering.
 */
export function registerInputGuard(app: FastifyInstance): void {
  app.addHook("preValidation", async (request) => {
    const parts: [Where, unknown][] = [
      ["params", request.params],
      ["querystring", request.query],
      ["body", request.body],
    ];
    for (const [where, value] of parts) {
      const path = findNul(value);
      if (path) {
        const field = path.join(".");
        // Plain words like every other validation message; the character is invisible, so say which one.
        const label = fieldLabel(field);
        const text = "Remove the invisible NUL character (\\u0000); it is never accepted.";
        throw new BadRequestError(
          label ? `${label}: ${text.replace(/^./, (c) => c.toLowerCase())}` : text,
          [{ in: where, path: field, message: text }],
          "VALIDATION_FAILED",
        );
      }
    }
  });
}
