import { useFocusOnMount } from "./focus.ts";
import { Field } from "./forms.tsx";

/** A write-only secret in a form: keep what is stored, replace it with a new value, or remove it. */
export interface SecretState {
  mode: "keep" | "set" | "remove";
  value: string;
}

export const KEEP: SecretState = { mode: "keep", value: "" };

/** The field in an update body: absent keeps the stored value, null removes it. */
export function secretPatch(s: SecretState): string | null | undefined {
  if (s.mode === "remove") return null;
  // "Replace" opened and left empty keeps what is stored; nothing stored and nothing typed sends nothing.
  return s.mode === "set" && s.value.trim() ? s.value.trim() : undefined;
}

/**
 * A secret the server never gives back: when one is stored, the form says so ("stored (…abcd)") and offers
 * Replace and Remove, never its value; otherwise a password input.
 */
export function SecretField(props: {
  label: string;
  /** Whether a value is stored now. */
  stored: boolean;
  /** `…abcd`, to recognise the stored value. */
  storedHint?: string | null | undefined;
  state: SecretState;
  onChange: (s: SecretState) => void;
  hint?: string;
  error?: string | undefined;
}) {
  const { stored, state } = props;
  // Replace swaps the buttons for an input: focus follows, so the keyboard user types straight away.
  const focusInput = useFocusOnMount<HTMLDivElement>("input");
  if (!stored || state.mode === "set") {
    return (
      <div className="secret-field" ref={stored ? focusInput : undefined}>
        <Field
          label={props.label}
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={state.value}
          onChange={(e) => props.onChange({ mode: "set", value: e.target.value })}
          error={props.error}
          hint={
            stored
              ? "Type the new value; leave it empty to keep the stored one."
              : (props.hint ?? "Stored encrypted; Reef never shows it again.")
          }
        />
        {stored ? (
          <button type="button" className="link-button" onClick={() => props.onChange({ mode: "keep", value: "" })}>
            Keep the stored value
          </button>
        ) : null}
      </div>
    );
  }
  return (
    <fieldset className="field">
      <legend className="label">{props.label}</legend>
      {state.mode === "remove" ? (
        <div className="secret-row">
          <span>Removed when you save.</span>
          <button type="button" className="secondary" onClick={() => props.onChange({ mode: "keep", value: "" })}>
            Undo
          </button>
        </div>
      ) : (
        <div className="secret-row">
          <span>
            Stored{props.storedHint ? ` (${props.storedHint})` : ""}
            <span className="hint"> — never shown</span>
          </span>
          <button
            type="button"
            className="secondary"
            aria-label={`Replace ${props.label.toLowerCase()}`}
            onClick={() => props.onChange({ mode: "set", value: "" })}
          >
            Replace
          </button>
          <button
            type="button"
            className="danger"
            aria-label={`Remove ${props.label.toLowerCase()}`}
            onClick={() => props.onChange({ mode: "remove", value: "" })}
          >
            Remove
          </button>
        </div>
      )}
    </fieldset>
  );
}
