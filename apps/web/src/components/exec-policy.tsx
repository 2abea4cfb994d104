import { type ClipboardEvent, type KeyboardEvent, useId, useState } from "react";
import type { ExecPolicy } from "../api/types.ts";

/** The policy choices in plain words; the order goes from most to least careful after the default. */
export const EXEC_POLICY_OPTIONS: { value: ExecPolicy; label: string; description: string }[] = [
  {
    value: "ask",
    label: "Ask every time (unless allowlisted)",
    description:
      "Each command waits until the person chatting (or an admin) approves it; commands on the allowlist run at once.",
  },
  {
    value: "allowlist",
    label: "Only allowlisted commands",
    description: "Commands on the allowlist run; any other is refused without asking anyone.",
  },
  {
    value: "allow",
    label: "Run any command",
    description: "Every command runs without asking. Only for agents you trust completely.",
  },
  {
    value: "deny",
    label: "No commands",
    description: "Every command is refused, even with the shell tool granted.",
  },
];

export const execPolicyLabel = (p: ExecPolicy) => EXEC_POLICY_OPTIONS.find((o) => o.value === p)?.label ?? p;

const MAX_PATTERNS = 200;
const MAX_PATTERN_LENGTH = 500;

/** Why `pattern` cannot be added to `list`, in words; undefined when it can. */
export function patternError(pattern: string, list: string[]): string | undefined {
  const p = pattern.trim();
  if (!p) return "Type a command or a pattern first, e.g. git or npm run *.";
  if (p.length > MAX_PATTERN_LENGTH) return `A pattern is at most ${MAX_PATTERN_LENGTH} characters.`;
  if (list.includes(p)) return `“${p}” is already on the allowlist.`;
  if (list.length >= MAX_PATTERNS) return `An agent can have at most ${MAX_PATTERNS} patterns.`;
  return undefined;
}

/** The allowlist as chips with remove buttons, and a field to add one (or paste several lines at once). */
function AllowlistEditor(props: { value: string[]; onChange: (list: string[]) => void; error?: string | undefined }) {
  const id = useId();
  const [draft, setDraft] = useState("");
  const [error, setError] = useState<string | undefined>();
  const add = (patterns: string[]) => {
    let list = props.value;
    for (const raw of patterns) {
      const why = patternError(raw, list);
      if (why) {
        setError(why);
        return;
      }
      list = [...list, raw.trim()];
    }
    setError(undefined);
    setDraft("");
    props.onChange(list);
  };
  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    // Enter adds the pattern instead of submitting the agent's form.
    if (e.key === "Enter") {
      e.preventDefault();
      add([draft]);
    }
  };
  const onPaste = (e: ClipboardEvent<HTMLInputElement>) => {
    const lines = e.clipboardData
      .getData("text")
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter(Boolean);
    if (lines.length > 1) {
      e.preventDefault();
      add(lines);
    }
  };
  const shown = error ?? props.error;
  return (
    <div className="field">
      <span className="label" id={`${id}-label`}>
        Allowlist
      </span>
      {props.value.length ? (
        <ul className="chips" aria-labelledby={`${id}-label`}>
          {props.value.map((p) => (
            <li key={p}>
              <code>{p}</code>
              <button
                type="button"
                className="link-button"
                aria-label={`Remove ${p}`}
                onClick={() => props.onChange(props.value.filter((x) => x !== p))}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p className="hint">The allowlist is empty.</p>
      )}
      <label htmlFor={`${id}-add`}>Add a command pattern</label>
      <div className="add-pattern">
        <input
          id={`${id}-add`}
          value={draft}
          placeholder="git"
          spellCheck={false}
          autoCapitalize="off"
          aria-invalid={shown ? true : undefined}
          aria-describedby={shown ? `${id}-error` : `${id}-hint`}
          onChange={(e) => {
            setDraft(e.target.value);
            setError(undefined);
          }}
          onKeyDown={onKey}
          onPaste={onPaste}
        />
        <button type="button" className="secondary" onClick={() => add([draft])}>
          Add
        </button>
      </div>
      {shown ? (
        <small id={`${id}-error`} className="field-error">
          {shown}
        </small>
      ) : (
        <small id={`${id}-hint`} className="hint">
          One word (git, /usr/bin/*) allows that program with any arguments; several words (git status, npm run *) allow
          that whole command, * matching anything. Commands with pipes, chains or redirections never match a pattern.
          Paste several lines to add them all.
        </small>
      )}
    </div>
  );
}

export interface ExecSettings {
  execPolicy: ExecPolicy;
  execAllowlist: string[];
}

/**
 * Which shell commands an agent may run: the policy as a radio group with what
 * each means, and the allowlist it uses. For admins (agents:manage).
 */
export function ExecPolicyFields(props: {
  value: ExecSettings;
  onChange: (v: ExecSettings) => void;
  errors?: { execPolicy?: string | undefined; execAllowlist?: string | undefined };
}) {
  const id = useId();
  const { execPolicy, execAllowlist } = props.value;
  const usesList = execPolicy === "ask" || execPolicy === "allowlist";
  return (
    <fieldset className="field exec-policy">
      <legend>Shell commands this agent may run</legend>
      {EXEC_POLICY_OPTIONS.map((o) => (
        <div key={o.value} className="radio-option">
          <input
            type="radio"
            id={`${id}-${o.value}`}
            name={`${id}-exec-policy`}
            value={o.value}
            checked={execPolicy === o.value}
            aria-describedby={`${id}-${o.value}-desc`}
            onChange={() => props.onChange({ ...props.value, execPolicy: o.value })}
          />
          <label htmlFor={`${id}-${o.value}`}>{o.label}</label>
          <small id={`${id}-${o.value}-desc`} className="hint">
            {o.description}
          </small>
        </div>
      ))}
      {props.errors?.execPolicy ? <small className="field-error">{props.errors.execPolicy}</small> : null}
      {usesList ? (
        <AllowlistEditor
          value={execAllowlist}
          onChange={(list) => props.onChange({ ...props.value, execAllowlist: list })}
          error={props.errors?.execAllowlist}
        />
      ) : null}
      {execPolicy === "allowlist" && execAllowlist.length === 0 ? (
        <small className="hint">With an empty allowlist, every command is refused.</small>
      ) : null}
    </fieldset>
  );
}

/** The policy and allowlist as text, for those who may not change them (and on the agent's card). */
export function ExecPolicySummary(props: { value: ExecSettings; note?: string }) {
  const { execPolicy, execAllowlist } = props.value;
  const usesList = execPolicy === "ask" || execPolicy === "allowlist";
  return (
    <div className="exec-summary">
      <p>
        Shell commands: <strong>{execPolicyLabel(execPolicy)}</strong>
        {usesList ? (
          execAllowlist.length ? (
            <>
              {" "}
              · allowlist:{" "}
              {execAllowlist.map((p, i) => (
                <span key={p}>
                  {i ? ", " : ""}
                  <code>{p}</code>
                </span>
              ))}
            </>
          ) : (
            " · the allowlist is empty"
          )
        ) : null}
      </p>
      {props.note ? <p className="hint">{props.note}</p> : null}
    </div>
  );
}
