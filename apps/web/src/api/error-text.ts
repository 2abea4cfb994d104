import type { ChatErrorCode, ErrorCode } from "@reef/contracts";

/** What an error means in plain words, and what the person can do next. */
export interface ErrorText {
  /** One plain sentence: what happened. */
  text: string;
  /** What to do about it, when there is something to do. */
  next?: string;
}

interface Entry extends ErrorText {
  /**
   * The server's own message for this code names the specific thing ("3 agents use this
   * provider…") and is written for people: show it rather than the generic sentence.
   */
  server?: true;
}

// Every stable code (`Record<ErrorCode, …>` makes a new code without a sentence a type error).
const API_CODES: Record<ErrorCode, Entry> = {
  BAD_REQUEST: {
    text: "Reef could not use that request.",
    next: "Check what you entered and try again.",
    server: true,
  },
  VALIDATION_FAILED: { text: "Some of what you entered is not accepted; correct it and try again.", server: true },
  MALFORMED_JSON: { text: "The page sent something Reef could not read.", next: "Reload the page and try again." },
  API_KEY_REQUIRED: {
    text: "A new address needs the API key again: Reef only sends a stored key to the address it was given for.",
    next: "Enter the key and save.",
  },
  PROVIDER_URL_NOT_ALLOWED: {
    text: "Reef only calls public addresses, and this one is on a private network.",
    next: "Ask your operator to allow its host under Admin → Settings → Provider hosts.",
    server: true,
  },
  INVALID_CRON: {
    text: "This cron expression is not valid.",
    next: "Pick a preset or check the five fields.",
    server: true,
  },
  INVALID_TIMEZONE: { text: "This time zone is not known.", next: "Pick one from the list.", server: true },
  SCHEDULE_TOO_FREQUENT: {
    text: "This schedule would run more often than this server allows.",
    next: "Choose a longer interval.",
    server: true,
  },
  RUN_AT_IN_PAST: { text: "This time has already passed.", next: "Pick a time in the future.", server: true },
  NOTIFY_URL_NOT_ALLOWED: {
    text: "Reef only notifies public addresses, and this one is on a private network.",
    next: "Use a public address, or ask your operator to allow its host.",
    server: true,
  },
  CONNECTOR_URL_NOT_ALLOWED: {
    text: "Reef only connects to public addresses, and this one is on a private network.",
    next: "Ask your operator to allow its host under Admin → Settings → Connectors.",
    server: true,
  },
  CONNECTOR_INVALID: {
    text: "Reef cannot use this connector as given.",
    next: "Correct it and try again.",
    server: true,
  },
  UNAUTHORIZED: { text: "You are not signed in.", next: "Sign in and try again." },
  // --- sign-in and account (issue 17) ---
  LINK_INVALID: {
    text: "This link cannot be used: it was already used, has expired, or was opened in another browser.",
    next: "Request a new link.",
    server: true,
  },
  SSO_FAILED: { text: "Single sign-on did not complete.", next: "Try again, or ask your operator.", server: true },
  SSO_REQUIRED: {
    text: "This organisation signs in through its single sign-on provider, not with a password.",
    next: "Use the sign-in button of your organisation.",
    server: true,
  },
  SSO_DOMAIN_NOT_ALLOWED: {
    text: "Your email address's domain may not sign in through this provider.",
    next: "Ask your operator which account to use.",
    server: true,
  },
  TWO_FACTOR_INVALID: {
    text: "That code is not right, or has already been used.",
    next: "Enter the current code from your authenticator app.",
    server: true,
  },
  TWO_FACTOR_REQUIRED: {
    text: "This needs two-factor authentication on your account and a sign-in with it.",
    next: "Set it up under Account → Two-factor authentication, then sign in again.",
    server: true,
  },
  TWO_FACTOR_LOCKED: {
    text: "Too many wrong codes.",
    next: "Wait 15 minutes and try again, or use a recovery code.",
    server: true,
  },
  SIGNATURE_INVALID: { text: "The webhook call's signature does not match its secret.", server: true },
  SIGNATURE_EXPIRED: { text: "The webhook call was signed too long ago.", server: true },
  FORBIDDEN: {
    text: "Your role does not allow this here.",
    next: "Ask an owner or admin of this workspace.",
    server: true,
  },
  CSRF_FAILED: { text: "This page is out of date.", next: "Reload the page and try again." },
  TOOL_NOT_GRANTABLE: {
    text: "The operator does not let workspace admins give agents this tool.",
    next: "Ask your operator.",
    server: true,
  },
  CONNECTORS_DISABLED: {
    text: "The operator has switched connectors off on this server.",
    next: "Ask your operator to turn them on again.",
  },
  NOT_FOUND: {
    text: "This no longer exists, or you cannot see it.",
    next: "Go back and reload the list.",
    server: true,
  },
  METHOD_NOT_ALLOWED: { text: "Reef does not offer that action here.", next: "Reload the page and try again." },
  CONFLICT: { text: "This clashes with something that already exists.", server: true },
  APPROVAL_DECIDED: { text: "Someone already decided this request; the first answer stands.", server: true },
  APPROVAL_EXPIRED: { text: "This request waited too long and was denied; nobody can decide it now.", server: true },
  LIMIT_REACHED: { text: "You have reached a limit the operator set.", next: "Ask your operator.", server: true },
  WEBHOOK_REPLAYED: { text: "This webhook call was already received.", server: true },
  SCHEDULE_PAUSED: { text: "This schedule is paused.", next: "Resume it first.", server: true },
  HOST_ACCESS_EXPOSES_KEYS: {
    text: "Shell or file tools could read other members' personal provider keys in this workspace.",
    next: "Use a workspace without personal providers for agents with these tools.",
    server: true,
  },
  SANDBOX_REQUIRED: {
    text: "Shell and file tools need a sandbox this server does not have.",
    next: "Ask your operator to install bubblewrap.",
    server: true,
  },
  PAYLOAD_TOO_LARGE: { text: "That is too large to send.", next: "Send something shorter." },
  UNSUPPORTED_MEDIA_TYPE: { text: "The page sent something Reef could not read.", next: "Reload the page." },
  RATE_LIMITED: { text: "Too many requests in a short time.", next: "Wait a minute and try again." },
  QUOTA_EXCEEDED: {
    text: "This workspace has used up its allowance.",
    next: "Ask an owner to raise it.",
    server: true,
  },
  RUNTIME_LIMIT_REACHED: {
    text: "You have as many workspaces running as you may.",
    next: "Wait a few minutes, or stop one you are not using.",
    server: true,
  },
  INTERNAL: {
    text: "Something went wrong on Reef's side. It has been logged.",
    next: "Try again; if it keeps happening, tell your operator.",
  },
  BAD_GATEWAY: { text: "A service Reef depends on answered badly.", next: "Try again in a moment." },
  UNAVAILABLE: { text: "Reef could not start this workspace just now.", next: "Try again in a moment." },
  CAPACITY_FULL: {
    text: "This server is running as many workspaces as it can.",
    next: "Try again in a few minutes.",
  },
};

// Codes of the chat stream's `error` event (CHAT_ERROR_CODES) that are not API codes too, and the client's own.
const OTHER_CODES: Record<Exclude<ChatErrorCode, ErrorCode> | "NETWORK", Entry> = {
  PROVIDER_UNREACHABLE: {
    text: "The language model's server is not answering: nothing is listening at its address.",
    next: "Retry in a moment. Admins: open the provider and run its connection test.",
  },
  PROVIDER_TIMEOUT: {
    text: "The language model took too long to answer.",
    next: "Retry. If it keeps happening, an admin can test the provider's connection.",
  },
  PROVIDER_AUTH: {
    text: "The language model's server refused the API key.",
    next: "An admin can enter a new key on the Providers page.",
  },
  PROVIDER_ERROR: { text: "The language model's server answered with an error.", next: "Retry in a moment." },
  INTERRUPTED: {
    text: "This answer was cut off because Reef restarted; the text so far is kept.",
    next: "Retry to get a full answer.",
  },
  NETWORK: { text: "Reef cannot be reached.", next: "Check your connection and try again." },
};

/** The plain sentence and next step for an error code; `serverMessage` is used where it is the better sentence. */
export function errorText(code: string, serverMessage?: string): ErrorText {
  const entry = (API_CODES as Record<string, Entry>)[code] ?? (OTHER_CODES as Record<string, Entry>)[code];
  if (!entry) return { text: serverMessage || "Something went wrong.", next: "Try again in a moment." };
  const text = entry.server && serverMessage ? serverMessage : entry.text;
  return entry.next ? { text, next: entry.next } : { text };
}

/** Both parts as one line to show: "Too many requests in a short time. Wait a minute and try again." */
export function errorSentence(t: ErrorText): string {
  const text = /[.!?]$/.test(t.text) ? t.text : `${t.text}.`;
  return t.next ? `${text} ${t.next}` : text;
}
