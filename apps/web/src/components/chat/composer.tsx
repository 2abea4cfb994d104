import { type FormEvent, type KeyboardEvent, type Ref, useLayoutEffect, useRef } from "react";
import type { Agent } from "../../api/types.ts";

/**
 * The message box, pinned under the conversation: Enter sends, Shift+Enter adds a line. While an answer is arriving
 * here, Send gives way to Stop and the box says why; a new conversation also picks its agent here.
 */
export function Composer(props: {
  text: string;
  onText: (text: string) => void;
  onSend: () => void;
  onStop: () => void;
  /** An answer is arriving in this conversation. */
  streaming: boolean;
  /** Why sending is not possible now (null: it is). */
  blocked: string | null;
  textareaRef: Ref<HTMLTextAreaElement>;
  /** A new conversation: the agent to talk to is chosen here. */
  agentChoice?: { agents: Agent[]; agentId: string; onAgent: (id: string) => void } | undefined;
}) {
  const local = useRef<HTMLTextAreaElement | null>(null);
  // Grow with what is typed, up to a limit (then it scrolls), so long messages stay readable.
  // biome-ignore lint/correctness/useExhaustiveDependencies: re-measure whenever the text changes
  useLayoutEffect(() => {
    const el = local.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight + 2, 240)}px`;
  }, [props.text]);

  function submit(e: FormEvent) {
    e.preventDefault();
    if (!props.blocked && props.text.trim()) props.onSend();
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (!props.blocked && props.text.trim()) props.onSend();
    }
  }

  const why = props.blocked ? "composer-why" : undefined;
  return (
    <form className="composer" onSubmit={submit}>
      {props.agentChoice ? (
        <div className="composer-agent">
          <label htmlFor="composer-agent">Agent</label>
          <select
            id="composer-agent"
            value={props.agentChoice.agentId}
            onChange={(e) => props.agentChoice?.onAgent(e.target.value)}
          >
            {props.agentChoice.agents.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      <div className="composer-row">
        <label htmlFor="composer-text" className="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-text"
          ref={(el) => {
            local.current = el;
            const r = props.textareaRef;
            if (typeof r === "function") r(el);
            else if (r) (r as { current: HTMLTextAreaElement | null }).current = el;
          }}
          rows={1}
          placeholder="Message your agent (Enter to send, Shift+Enter for a new line)"
          value={props.text}
          onChange={(e) => props.onText(e.target.value)}
          onKeyDown={onKey}
          aria-describedby={why}
        />
        {props.streaming ? (
          <button type="button" className="danger" onClick={props.onStop}>
            Stop
          </button>
        ) : (
          <button type="submit" disabled={!!props.blocked || !props.text.trim()} aria-describedby={why}>
            Send
          </button>
        )}
      </div>
      {props.blocked ? (
        <p id="composer-why" className="composer-why">
          {props.blocked}
        </p>
      ) : null}
    </form>
  );
}
