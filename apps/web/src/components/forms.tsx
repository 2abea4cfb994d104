import { type InputHTMLAttributes, type ReactNode, useId } from "react";
import { messageOf } from "../api/client.ts";

/** A labelled input with its own error line, announced to screen readers. */
export function Field(
  props: { label: string; error?: string | undefined; hint?: ReactNode } & InputHTMLAttributes<HTMLInputElement>,
) {
  const { label, error, hint, ...input } = props;
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : hint ? `${id}-hint` : undefined}
        {...input}
      />
      {hint && !error ? (
        <small id={`${id}-hint`} className="hint">
          {hint}
        </small>
      ) : null}
      {error ? (
        <small id={`${id}-error`} className="field-error">
          {error}
        </small>
      ) : null}
    </div>
  );
}

/** A labelled select. */
export function Select(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  options: { value: string; label: string }[];
  name?: string;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select id={id} name={props.name} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}

/** An error (or success) message for a whole form or page. */
export function Notice(props: { kind?: "error" | "ok" | "info"; children: ReactNode }) {
  const kind = props.kind ?? "error";
  return (
    <div className={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {props.children}
    </div>
  );
}

/** Why `v` is not an http(s) URL, or undefined when it is (or is empty). */
export function validateUrl(v: string, example = "https://llm.example.com/v1"): string | undefined {
  if (!v) return undefined;
  try {
    const u = new URL(v);
    return u.protocol === "http:" || u.protocol === "https:" ? undefined : "Use an http:// or https:// address.";
  } catch {
    return `This is not a URL, e.g. ${example}`;
  }
}

/** The outcome of a check the person ran (a connection or email test), in plain words. */
export function CheckResult(props: { result: { ok: boolean; message: string } | undefined; error: unknown }) {
  return (
    <>
      {props.result ? (
        <Notice kind={props.result.ok ? "ok" : "error"}>
          {props.result.ok ? "✓ " : "✗ "}
          {props.result.message}
        </Notice>
      ) : null}
      {props.error ? <Notice>{messageOf(props.error)}</Notice> : null}
    </>
  );
}
