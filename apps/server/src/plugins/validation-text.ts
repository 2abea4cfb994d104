/**
 * Turns schema validation issues into sentences a person can act on
 * ("Name: enter at least 1 character."), never the schema library's own wording
 * ("Too small: expected string to have >=1 characters"). Messages written in a
 * contract (`.min(8, "looks too short to be an API key")`) are kept: they were
 * written for people already.
 */

/** One issue as fastify-type-provider-zod reports it: the zod issue code is the `keyword`. */
export interface ValidationIssue {
  keyword?: string;
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** The library's default wording; anything else was written by hand in a contract. */
const LIBRARY_WORDING = /^(Too small|Too big|Invalid|Unrecognized key|Expected|Required)\b/;

// Field names whose plain form is not just the camelCase split.
const LABELS: Record<string, string> = {
  baseUrl: "Base URL",
  apiKey: "API key",
  url: "URL",
  publicUrl: "Public URL",
  smtpUrl: "Mail server URL",
  id: "ID",
  wid: "Workspace",
  sid: "Conversation",
  agentId: "Agent",
  providerId: "Provider",
  userId: "Person",
  email: "Email",
};

/** "baseUrl" → "Base URL", "starterPrompts.2" → "Starter prompts (item 3)". */
export function fieldLabel(path: string): string {
  const parts = path.split(".").filter(Boolean);
  const named = [...parts].reverse().find((p) => !/^\d+$/.test(p));
  if (!named) return "";
  const index = parts.at(-1) !== named ? Number(parts.at(-1)) : undefined;
  const base =
    LABELS[named] ??
    named
      .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
      .replace(/[_-]+/g, " ")
      .toLowerCase()
      .replace(/^./, (c) => c.toUpperCase());
  return index === undefined ? base : `${base} (item ${index + 1})`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function capitalise(s: string): string {
  return s.replace(/^./, (c) => c.toUpperCase());
}

/** What to do about one issue, without the field name: "Enter at least 1 character." */
export function issueText(issue: ValidationIssue): string {
  const message = issue.message ?? "";
  if (message && !LIBRARY_WORDING.test(message)) return capitalise(message.replace(/\.?$/, "."));
  const p = issue.params ?? {};
  const origin = String(p.origin ?? "");
  const exact = p.exact === true;
  switch (issue.keyword) {
    case "too_small": {
      const n = Number(p.minimum);
      if (origin === "string") {
        return exact ? `Enter exactly ${plural(n, "character")}.` : `Enter at least ${plural(n, "character")}.`;
      }
      if (origin === "array" || origin === "set") return `Give at least ${plural(n, "item")}.`;
      return p.inclusive === false ? `Use a number above ${n}.` : `Use ${n} or more.`;
    }
    case "too_big": {
      const n = Number(p.maximum);
      if (origin === "string") return `Use at most ${plural(n, "character")}.`;
      if (origin === "array" || origin === "set") return `Give at most ${plural(n, "item")}.`;
      return p.inclusive === false ? `Use a number below ${n}.` : `Use ${n} or less.`;
    }
    case "invalid_type":
      if (/received undefined/.test(message)) return "Fill this in.";
      if (p.expected === "int") return "Use a whole number.";
      if (p.expected === "number") return "Use a number.";
      if (p.expected === "boolean") return "Choose yes or no.";
      if (p.expected === "array") return "Give a list.";
      return "This value has the wrong form.";
    case "invalid_value": {
      const values = Array.isArray(p.values) ? (p.values as unknown[]).map(String) : [];
      return values.length && values.length <= 8
        ? `Choose one of: ${values.join(", ")}.`
        : "Choose one of the options.";
    }
    case "invalid_format":
      switch (p.format) {
        case "email":
          return "Enter an email address, like name@example.com.";
        case "url":
          return "Enter a web address starting with http:// or https://.";
        case "uuid":
        case "guid":
          return "This is not a valid ID.";
        case "datetime":
        case "date":
          return "Enter a date.";
        default:
          return "This value is not in the expected format.";
      }
    case "unrecognized_keys": {
      const keys = Array.isArray(p.keys) ? (p.keys as unknown[]).map(String) : [];
      return `Reef does not know ${keys.length === 1 ? "the field" : "the fields"} ${keys.join(", ")}; leave ${keys.length === 1 ? "it" : "them"} out.`;
    }
    case "not_multiple_of":
      return `Use a multiple of ${String(p.divisor)}.`;
    default:
      return "This value is not accepted.";
  }
}

/**
 * The per-field details and one summary sentence for a failed validation.
 * `where` is the part of the request (body, querystring, params).
 */
export function describeValidation(
  where: string,
  issues: ValidationIssue[],
): { message: string; details: { in: string; path: string; message: string }[] } {
  const details = issues.map((v) => ({
    in: where,
    path: (v.instancePath ?? "").replace(/^\//, "").split("/").filter(Boolean).join("."),
    message: issueText(v),
  }));
  const sentences = details.slice(0, 3).map((d) => {
    const label = fieldLabel(d.path);
    return label ? `${label}: ${d.message.replace(/^./, (c) => c.toLowerCase())}` : d.message;
  });
  const more = details.length > 3 ? ` (and ${plural(details.length - 3, "more problem")})` : "";
  const message =
    sentences.length === 0
      ? where === "body"
        ? "Some of what was entered is not accepted."
        : "The address or its options are not accepted."
      : `${sentences.join(" ")}${more}`;
  return { message, details };
}
