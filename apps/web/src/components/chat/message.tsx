import { type ReactNode, useEffect, useRef, useState } from "react";
import type { TraceStep } from "../../api/types.ts";
import { TraceSteps } from "../trace-steps.tsx";
import { CopyButton } from "./copy-button.tsx";
import { MarkdownText } from "./markdown.tsx";

/** What a message can do, when it can: absent actions are not offered. */
export interface MessageActions {
  /** Ask for this answer again (the last answer only). */
  onRegenerate?: (() => void) | undefined;
  /** Send an edited version of this message of the person's, replacing it and everything after it. */
  onEdit?: ((text: string) => void) | undefined;
  /** Why actions that send are unavailable now (an answer is arriving). */
  busy?: string | null | undefined;
}

/** One message of the conversation: the person's (line breaks kept) or the agent's (Markdown), with its actions. */
export function ChatMessage(props: {
  from: "user" | "assistant";
  content: string;
  status?: string | undefined;
  trace?: TraceStep[] | undefined;
  /** The stored answer's id, once known: what the person opened in its trace stays open when it moves to history. */
  id?: number | undefined;
  /** Still arriving: no actions yet. */
  live?: boolean | undefined;
  actions?: MessageActions | undefined;
  /** Shown under the message (an error and its next step). */
  children?: ReactNode;
}) {
  const [editing, setEditing] = useState(false);
  const isUser = props.from === "user";
  const actions = props.actions;
  return (
    <article
      className={`msg msg-${props.from}`}
      aria-label={isUser ? "You said" : "Agent said"}
      data-message-id={props.id}
    >
      {editing && actions?.onEdit ? (
        <EditMessage
          text={props.content}
          busy={actions.busy ?? null}
          onCancel={() => setEditing(false)}
          onSend={(text) => {
            setEditing(false);
            actions.onEdit?.(text);
          }}
        />
      ) : isUser ? (
        <div className="msg-text">{props.content}</div>
      ) : props.content ? (
        <div className="msg-markdown">
          <MarkdownText text={props.content} />
        </div>
      ) : props.live ? (
        <p className="msg-typing">
          <span className="spinner" aria-hidden="true" /> <span>Thinking…</span>
        </p>
      ) : null}
      <TraceSteps steps={props.trace} answerId={props.id} />
      {props.status === "aborted" ? <p className="msg-status">Stopped.</p> : null}
      {props.status === "interrupted" ? (
        <p className="msg-status">Interrupted: the answer was cut off before it ended.</p>
      ) : null}
      {props.children}
      {!props.live && !editing && props.content ? (
        <div className="msg-actions">
          <CopyButton text={() => props.content} label={isUser ? "your message" : "answer"} />
          {actions?.onRegenerate ? (
            <button
              type="button"
              className="chip-button"
              onClick={actions.onRegenerate}
              disabled={!!actions.busy}
              title={actions.busy ?? undefined}
            >
              Regenerate
            </button>
          ) : null}
          {actions?.onEdit ? (
            <button type="button" className="chip-button" onClick={() => setEditing(true)}>
              Edit
            </button>
          ) : null}
        </div>
      ) : null}
    </article>
  );
}

function EditMessage(props: {
  text: string;
  busy: string | null;
  onCancel: () => void;
  onSend: (text: string) => void;
}) {
  const [text, setText] = useState(props.text);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  const empty = !text.trim();
  return (
    <form
      className="msg-edit"
      onSubmit={(e) => {
        e.preventDefault();
        if (!empty && !props.busy) props.onSend(text.trim());
      }}
    >
      <label className="visually-hidden" htmlFor="edit-message">
        Edit your message
      </label>
      <textarea
        id="edit-message"
        ref={ref}
        rows={Math.min(10, text.split("\n").length + 1)}
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") props.onCancel();
        }}
      />
      <p className="hint">Sending replaces this message and every message after it.</p>
      {props.busy ? <p className="hint">{props.busy}</p> : null}
      <div className="actions">
        <button type="submit" disabled={empty || !!props.busy}>
          Send edited message
        </button>
        <button type="button" className="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
