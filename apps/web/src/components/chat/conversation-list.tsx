import { Link } from "@tanstack/react-router";
import { forwardRef } from "react";
import type { ChatSession } from "../../api/types.ts";

const DAY = 86_400_000;

/** The date groups people know from other chat apps; pinned conversations come first. */
export function groupSessions(sessions: ChatSession[], now = new Date()): { label: string; items: ChatSession[] }[] {
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const groups: { label: string; items: ChatSession[] }[] = [
    { label: "Pinned", items: [] },
    { label: "Today", items: [] },
    { label: "Yesterday", items: [] },
    { label: "Previous 7 days", items: [] },
    { label: "Older", items: [] },
  ];
  for (const s of sessions) {
    const at = new Date(s.lastMessageAt ?? s.createdAt).getTime();
    const i = s.pinned ? 0 : at >= today ? 1 : at >= today - DAY ? 2 : at >= today - 7 * DAY ? 3 : 4;
    groups[i]?.items.push(s);
  }
  return groups.filter((g) => g.items.length > 0);
}

/** The person's conversations in this workspace: search, a New chat button, and the list grouped by date. */
export const ConversationList = forwardRef<
  HTMLElement,
  {
    id: string;
    wid: string;
    sessions: ChatSession[] | undefined;
    loading: boolean;
    /** More (older) conversations to load, when there are. */
    more?: { loading: boolean; load: () => void } | undefined;
    current: string | undefined;
    query: string;
    onQuery: (q: string) => void;
    titleOf: (s: ChatSession) => string;
    onNewChat: () => void;
    onClose: () => void;
    open: boolean;
  }
>(function ConversationList(props, ref) {
  const groups = groupSessions(props.sessions ?? []);
  return (
    <aside
      id={props.id}
      ref={ref}
      className="sessions"
      aria-label="Conversations"
      data-open={props.open ? "" : undefined}
      tabIndex={-1}
    >
      <div className="sessions-head">
        <button type="button" className="new-chat" onClick={props.onNewChat}>
          New chat
        </button>
        <button type="button" className="secondary drawer-close" onClick={props.onClose}>
          Close
        </button>
      </div>
      <label className="visually-hidden" htmlFor={`${props.id}-search`}>
        Search conversations
      </label>
      <input
        id={`${props.id}-search`}
        type="search"
        className="sessions-search"
        placeholder="Search conversations"
        value={props.query}
        onChange={(e) => props.onQuery(e.target.value)}
      />
      <nav className="sessions-list" aria-label="Your conversations">
        {groups.length === 0 && !props.loading ? (
          <p className="hint">
            {props.query.trim() ? "No conversation has that in its title." : "No conversations yet."}
          </p>
        ) : null}
        {groups.map((g) => (
          <section key={g.label} aria-label={g.label}>
            <h2 className="sessions-group">{g.label}</h2>
            <ul>
              {g.items.map((s) => (
                <li key={s.id}>
                  <Link
                    to="/w/$wid/chat"
                    params={{ wid: props.wid }}
                    search={{ session: s.id }}
                    aria-current={s.id === props.current ? "page" : undefined}
                  >
                    {props.titleOf(s)}
                  </Link>
                </li>
              ))}
            </ul>
          </section>
        ))}
        {props.more ? (
          <button
            type="button"
            className="secondary sessions-more"
            onClick={props.more.load}
            disabled={props.more.loading}
          >
            {props.more.loading ? "Loading…" : "Show more conversations"}
          </button>
        ) : null}
      </nav>
    </aside>
  );
});
