import type { ChatErrorCode } from "@reef/contracts";
import { Link } from "@tanstack/react-router";

/** Why an answer failed, as the stream's `error` event said (a stored message keeps the same code). */
export interface TurnError {
  code: string;
  message: string;
  providerId?: string | undefined;
}

/** A stored failed answer's error, as the live stream gave it: after a reload it reads the same. */
export function storedTurnError(m: {
  error: string | null;
  errorCode: string | null;
  errorProviderId: string | null;
}): TurnError | null {
  if (!m.errorCode) return null;
  return { code: m.errorCode, message: m.error ?? "", providerId: m.errorProviderId ?? undefined };
}

interface Explained {
  /** What happened, in plain words. */
  sentence: string;
  /** Whether the provider (its address, key or service) is at fault: admins get a link to it. */
  provider: boolean;
  /** Whether sending again can help. */
  retry: boolean;
}

// One plain sentence per stream error code (CHAT_ERROR_CODES in @reef/contracts); the server's own text is the fallback.
const EXPLAINED: Record<string, Explained | undefined> = {
  PROVIDER_UNREACHABLE: {
    sentence: "The AI provider could not be reached: nothing answered at its address.",
    provider: true,
    retry: true,
  },
  PROVIDER_TIMEOUT: {
    sentence: "The AI provider took too long to answer.",
    provider: true,
    retry: true,
  },
  PROVIDER_AUTH: {
    sentence: "The AI provider refused this workspace's API key.",
    provider: true,
    retry: false,
  },
  PROVIDER_ERROR: {
    sentence: "The AI provider returned an error instead of an answer.",
    provider: true,
    retry: true,
  },
  UNAVAILABLE: {
    sentence: "Your workspace could not start, so the agent could not answer.",
    provider: false,
    retry: true,
  },
  QUOTA_EXCEEDED: {
    sentence: "This workspace has used its allowance for this month.",
    provider: false,
    retry: false,
  },
  RATE_LIMITED: {
    sentence: "Too many messages in a short time.",
    provider: false,
    retry: true,
  },
  INTERRUPTED: {
    sentence: "The answer was cut off: Reef stopped while it was arriving.",
    provider: false,
    retry: true,
  },
  INTERNAL: {
    sentence: "Something went wrong on Reef's side while answering.",
    provider: false,
    retry: true,
  },
} satisfies Record<ChatErrorCode, Explained>;

/** The next step people can take after an error, by role: everyone can retry; admins can fix a provider. */
function nextStep(e: Explained, canManage: boolean): string {
  if (e.provider && canManage)
    return e.retry ? "Try again, or check the provider's settings." : "Check the provider's settings.";
  if (e.provider)
    return e.retry ? "Try again in a moment; if it keeps failing, tell a workspace admin." : "Tell a workspace admin.";
  if (!e.retry) return "Ask a workspace admin about this workspace's limits.";
  return "Try again in a moment.";
}

/**
 * An answer that failed: a plain sentence, what to do next, a Retry that sends the message again, and for admins a
 * link to the providers page when a provider is at fault.
 */
export function ChatErrorNotice(props: {
  wid: string;
  /** The code when known (from the stream, or the stored message's: see storedTurnError). */
  error: TurnError | null;
  /** The stored message's error sentence (for answers stored before codes were kept). */
  stored?: string | null | undefined;
  canManage: boolean;
  onRetry?: (() => void) | undefined;
}) {
  const known = props.error ? EXPLAINED[props.error.code] : undefined;
  const sentence = known?.sentence ?? props.error?.message ?? props.stored ?? "The answer could not be finished.";
  const step = known ? nextStep(known, props.canManage) : "Try again in a moment.";
  const retry = known ? known.retry : true;
  return (
    <div className="chat-error" role="alert">
      <p>
        {sentence} {step}
      </p>
      <div className="actions">
        {retry && props.onRetry ? (
          <button type="button" className="secondary" onClick={props.onRetry}>
            Retry
          </button>
        ) : null}
        {known?.provider && props.canManage ? (
          <Link to="/w/$wid/providers" params={{ wid: props.wid }}>
            Check the provider
          </Link>
        ) : null}
      </div>
    </div>
  );
}
