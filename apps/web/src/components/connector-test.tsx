import type { ConnectorTest } from "../api/types.ts";
import { testErrorText } from "./connector-text.ts";
import { Notice } from "./forms.tsx";

/** The tools a server offers, with their descriptions: what agents could call. */
export function ToolList(props: { tools: { name: string; description?: string | undefined }[]; label: string }) {
  if (props.tools.length === 0) return <p className="hint">The server lists no tools.</p>;
  return (
    <ul className="connector-tools" aria-label={props.label}>
      {props.tools.map((t) => (
        <li key={t.name}>
          <code>{t.name}</code>
          {t.description ? <span className="hint"> — {t.description}</span> : null}
        </li>
      ))}
    </ul>
  );
}

/**
 * The outcome of a connection test: the server and the tools it lists, or why it
 * failed in plain words with the server's own message underneath.
 */
export function TestOutcome(props: { result: ConnectorTest }) {
  const r = props.result;
  const secs = (r.durationMs / 1000).toFixed(1);
  if (r.ok) {
    return (
      <div className="connector-test">
        <Notice kind="ok">
          ✓ Connected{r.server ? ` to ${r.server.name} ${r.server.version}` : ""} in {secs} s:{" "}
          {r.tools.length === 1 ? "1 tool" : `${r.tools.length} tools`} found.
        </Notice>
        <ToolList tools={r.tools} label="Tools found" />
      </div>
    );
  }
  return (
    <Notice>
      <p className="notice-text">✗ {testErrorText(r.error?.code, r.error?.message)}</p>
      {r.error?.message ? <p className="notice-text hint">The server said: {r.error.message}</p> : null}
    </Notice>
  );
}
