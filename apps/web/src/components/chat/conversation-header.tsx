import { type Ref, useEffect, useRef, useState } from "react";
import { messageOf } from "../../api/client.ts";
import type { ChatSession } from "../../api/types.ts";

/**
 * The open conversation's title with what its owner can do to it: rename (in place), pin, delete. Also the phone's
 * "Conversations" button, which opens the list as a drawer.
 */
export function ConversationHeader(props: {
  title: string;
  session: ChatSession | undefined;
  drawerId: string;
  drawerOpen: boolean;
  drawerButton: Ref<HTMLButtonElement>;
  onDrawer: () => void;
  onRename: (title: string) => Promise<unknown>;
  onPin: (pinned: boolean) => void;
  onDelete: () => void;
}) {
  const [renaming, setRenaming] = useState(false);
  const renameButton = useRef<HTMLButtonElement>(null);
  const s = props.session;
  return (
    <div className="chat-head">
      <button
        type="button"
        ref={props.drawerButton}
        className="secondary drawer-toggle"
        aria-expanded={props.drawerOpen}
        aria-controls={props.drawerId}
        onClick={props.onDrawer}
      >
        Conversations
      </button>
      {renaming && s ? (
        <RenameForm
          title={s.title}
          onCancel={() => {
            setRenaming(false);
            requestAnimationFrame(() => renameButton.current?.focus());
          }}
          onSave={async (title) => {
            await props.onRename(title);
            setRenaming(false);
            requestAnimationFrame(() => renameButton.current?.focus());
          }}
        />
      ) : (
        <h1 className="chat-title">{props.title}</h1>
      )}
      {s && !renaming ? (
        <div className="chat-head-actions">
          <button type="button" ref={renameButton} className="chip-button" onClick={() => setRenaming(true)}>
            Rename
          </button>
          <button type="button" className="chip-button" aria-pressed={s.pinned} onClick={() => props.onPin(!s.pinned)}>
            {s.pinned ? "Unpin" : "Pin"}
          </button>
          <button type="button" className="chip-button chip-danger" onClick={props.onDelete}>
            Delete
          </button>
        </div>
      ) : null}
    </div>
  );
}

function RenameForm(props: { title: string; onCancel: () => void; onSave: (title: string) => Promise<void> }) {
  const [title, setTitle] = useState(props.title);
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    input.current?.select();
  }, []);
  const empty = !title.trim();
  return (
    <form
      className="rename"
      onSubmit={async (e) => {
        e.preventDefault();
        if (empty) return;
        setSaving(true);
        try {
          await props.onSave(title.trim());
        } catch (err) {
          setError(messageOf(err));
          setSaving(false);
        }
      }}
    >
      <label htmlFor="rename-conversation" className="visually-hidden">
        Conversation name
      </label>
      <input
        id="rename-conversation"
        ref={input}
        value={title}
        maxLength={200}
        onChange={(e) => setTitle(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") props.onCancel();
        }}
        aria-invalid={empty || !!error}
        aria-describedby="rename-why"
      />
      <button type="submit" disabled={empty || saving}>
        Save
      </button>
      <button type="button" className="secondary" onClick={props.onCancel}>
        Cancel
      </button>
      <p id="rename-why" className={error || empty ? "field-error" : "visually-hidden"}>
        {error ?? (empty ? "Give the conversation a name." : "Enter saves, Escape cancels.")}
      </p>
    </form>
  );
}
