import type { WEBHOOK_HEADERS } from "@reef/contracts";
import type { Schedule } from "../api/types.ts";
import { CopyButton } from "./chat/copy-button.tsx";
import { useFocusOnMount } from "./focus.ts";

// The contract's header names, spelled here so the page does not bundle zod and every schema for three strings;
// `satisfies` makes a renamed header a type error.
const HEADERS = {
  timestamp: "x-reef-timestamp",
  delivery: "x-reef-delivery",
  signature: "x-reef-signature",
} as const satisfies typeof WEBHOOK_HEADERS;

const header = (h: string) => h.replace(/(^|-)x/g, "$1X").replace(/-(\w)/g, (_, c: string) => `-${c.toUpperCase()}`);

/** A copy-paste shell example that signs a call the way Reef checks it (HMAC-SHA256 of `ts.delivery.body`). */
export function curlExample(url: string, secret: string): string {
  return [
    `URL='${url}'`,
    `SECRET='${secret}'`,
    `BODY='{"title":"Hello from curl"}'`,
    "TS=$(date +%s)",
    "ID=$(openssl rand -hex 16)",
    `SIG=$(printf '%s.%s.%s' "$TS" "$ID" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')`,
    `curl -X POST "$URL" \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -H "${header(HEADERS.timestamp)}: $TS" \\`,
    `  -H "${header(HEADERS.delivery)}: $ID" \\`,
    `  -H "${header(HEADERS.signature)}: sha256=$SIG" \\`,
    `  -d "$BODY"`,
  ].join("\n");
}

/**
 * The secret of a webhook (or of a schedule's signed notifications), shown once after creating or rotating it:
 * nobody can read it again, so it says so and offers Copy, the full URL and a signed curl example.
 */
export function SecretPanel(props: { schedule: Schedule; secret: string; onClose: () => void }) {
  const { schedule, secret } = props;
  const focusHeading = useFocusOnMount<HTMLElement>("h2");
  const url = schedule.hookPath ? `${window.location.origin}${schedule.hookPath}` : null;
  const example = url ? curlExample(url, secret) : null;
  return (
    <section ref={focusHeading} className="card secret-panel" aria-labelledby={`secret-${schedule.id}`}>
      <h2 id={`secret-${schedule.id}`} className="secret-title" tabIndex={-1}>
        The secret of {schedule.name}
      </h2>
      <p>
        <strong>Copy it now: you will not see it again.</strong>{" "}
        {url
          ? "Whoever calls the webhook signs each call with it."
          : "Reef signs the notifications it sends with it, so the receiver can check they came from Reef."}{" "}
        If it is lost or leaks, rotate it and give the new one to the caller.
      </p>
      {url ? (
        <div className="field">
          <span className="label">Webhook URL</span>
          <div className="secret-row">
            <code className="invite-link">{url}</code>
            <CopyButton text={() => url} label="webhook URL" />
          </div>
        </div>
      ) : null}
      <div className="field">
        <span className="label">Secret</span>
        <div className="secret-row">
          <code className="invite-link" data-testid="schedule-secret">
            {secret}
          </code>
          <CopyButton text={() => secret} label="secret" />
        </div>
      </div>
      {example ? (
        <div className="field">
          <span className="label">Try it from a shell</span>
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable block must be reachable by keyboard */}
          <pre className="curl-example" tabIndex={0}>
            {example}
          </pre>
          <div>
            <CopyButton text={() => example} label="curl example" />
          </div>
          <p className="hint">
            The signature is <code>sha256=</code> and the hex HMAC-SHA256 of <code>timestamp.delivery.body</code>. Reef
            refuses calls signed more than five minutes ago and any delivery id it has already seen. Put{" "}
            <code>{"{{body.title}}"}</code> in the prompt to use the body's fields.
          </p>
        </div>
      ) : null}
      <button type="button" className="secondary" onClick={props.onClose}>
        I have stored it
      </button>
    </section>
  );
}
