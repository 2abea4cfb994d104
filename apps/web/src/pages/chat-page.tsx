import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams, useSearch } from "@tanstack/react-router";
import { type FormEvent, Fragment, type KeyboardEvent, useEffect, useRef, useState } from "react";
import Markdown from "react-markdown";
import { sendMessage } from "../api/chat-stream.ts";
import { ApiError, api, messageOf } from "../api/client.ts";
import type { Approval, ChatSession, Message, Page, TraceStep } from "../api/types.ts";
import { agentsQuery } from "../components/agent-form.tsx";
import { ApprovalCard, upsertApproval } from "../components/approval-card.tsx";
import { Notice } from "../components/forms.tsx";
import { atLeast, useWorkspace } from "../components/session.ts";
import { TraceSteps, upsertStep } from "../components/trace-steps.tsx";

interface Pending {
  user: string;
  answer: string;
  /** Seconds since the workspace started waking, while it wakes. */
  waking: number | null;
  /** Place in line while the server is at its cap of running workspaces. */
  queued: number | null;
  error: { message: string; code: string } | null;
  stopped: boolean;
  /** The stored messages this turn is (from `accepted`): history hides them while the turn is shown here. */
  ids: number[];
  /** The tools the agent is using for this answer, updated by id as each step ends. */
  steps: TraceStep[];
  /** Commands waiting for (or given) a person's approval during this turn. */
  approvals: Approval[];
}

function ChatMessage(props: {
  from: "user" | "assistant";
  content: string;
  status?: string;
  error?: string | null;
  trace?: TraceStep[] | undefined;
  /** The stored answer's id, once known: what the person opened in its trace stays open when it moves to history. */
  id?: number | undefined;
}) {
  return (
    <article className={`msg msg-${props.from}`} aria-label={props.from === "user" ? "You said" : "Agent said"}>
      {props.from === "assistant" ? <Markdown>{props.content || "…"}</Markdown> : <p>{props.content}</p>}
      <TraceSteps steps={props.trace} answerId={props.id} />
      {props.status === "aborted" ? <p className="hint">Stopped.</p> : null}
      {props.status === "error" && props.error ? <p className="field-error">{props.error}</p> : null}
    </article>
  );
}

export function ChatPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const search = useSearch({ strict: false }) as { session?: string };
  const membership = useWorkspace(wid);
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const agents = useQuery(agentsQuery(wid));
  const canChat = atLeast(membership?.role, "member");
  const sessions = useQuery({
    queryKey: ["sessions", wid],
    queryFn: () => api<Page<ChatSession>>("GET", `/api/v1/workspaces/${wid}/sessions?limit=100`),
    enabled: canChat,
  });
  const sid = search.session ?? sessions.data?.items[0]?.id;
  const history = useQuery({
    queryKey: ["messages", wid, sid],
    queryFn: () => api<Page<Message>>("GET", `/api/v1/workspaces/${wid}/sessions/${sid}/messages?limit=200`),
    enabled: !!sid,
  });
  const [text, setText] = useState("");
  const [pending, setPending] = useState<Pending | null>(null);
  const [refused, setRefused] = useState<string | null>(null);
  // Approval cards of this page's finished turns, by answer id: they stay under the answer once the turn ends.
  const [asked, setAsked] = useState<Record<number, Approval[]>>({});
  // The card that had keyboard focus when its turn ended: it gets it back under the stored answer.
  const [refocus, setRefocus] = useState<string | null>(null);
  // The running turn's approvals as last heard (from the stream, or from a decision made on this page).
  const turnCards = useRef<Approval[]>([]);
  const abortRef = useRef<AbortController | null>(null);
  const endRef = useRef<HTMLDivElement>(null);

  const newSession = useMutation({
    mutationFn: (agentId: string) => api<ChatSession>("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId }),
    onSuccess: async (s) => {
      await queryClient.invalidateQueries({ queryKey: ["sessions", wid] });
      await navigate({ to: "/w/$wid/chat", params: { wid }, search: { session: s.id } });
    },
  });

  const answerLength = pending?.answer.length ?? 0;
  const historyLength = history.data?.items.length ?? 0;
  // A new tool step or approval card shows up at the end too.
  const turnItems = (pending?.steps.length ?? 0) + (pending?.approvals.length ?? 0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll whenever the answer grows or history changes
  useEffect(() => {
    endRef.current?.scrollIntoView?.({ block: "end" });
  }, [answerLength, historyLength, turnItems]);

  const waking = pending !== null && pending.waking !== null;
  useEffect(() => {
    if (!waking) return;
    const timer = setInterval(
      () => setPending((p) => (p && p.waking !== null ? { ...p, waking: p.waking + 1 } : p)),
      1000,
    );
    return () => clearInterval(timer);
  }, [waking]);

  async function send(e?: FormEvent) {
    e?.preventDefault();
    const said = text.trim();
    if (!said || !sid || pending) return;
    setRefused(null);
    setText("");
    const controller = new AbortController();
    abortRef.current = controller;
    setPending({
      user: said,
      answer: "",
      waking: null,
      queued: null,
      error: null,
      stopped: false,
      ids: [],
      steps: [],
      approvals: [],
    });
    // This turn's answer id, kept outside React state to move its approval cards under the answer when it ends.
    let answerId: number | undefined;
    turnCards.current = [];
    try {
      await sendMessage(
        `/api/v1/workspaces/${wid}/sessions/${sid}/messages`,
        said,
        (ev) => {
          if (ev.event === "accepted") answerId = ev.data.assistantMessageId;
          if (ev.event === "approval") {
            turnCards.current = upsertApproval(turnCards.current, ev.data.approval);
            // The navigation's count of what waits for a decision changes with it.
            void queryClient.invalidateQueries({ queryKey: ["approvals", wid] });
          }
          setPending((p) => {
            if (!p) return p;
            switch (ev.event) {
              case "accepted":
                return { ...p, ids: [ev.data.userMessageId, ev.data.assistantMessageId] };
              case "runtime":
                if (ev.data.state === "queued") return { ...p, waking: p.waking ?? 0, queued: ev.data.position };
                return { ...p, waking: ev.data.state === "starting" ? (p.waking ?? 0) : null, queued: null };
              case "delta":
                return { ...p, waking: null, answer: p.answer + ev.data.text };
              case "tool":
                return { ...p, waking: null, steps: upsertStep(p.steps, ev.data.step) };
              case "approval":
                return { ...p, waking: null, approvals: upsertApproval(p.approvals, ev.data.approval) };
              case "error":
                return { ...p, waking: null, error: { message: ev.data.message, code: ev.data.code } };
              case "done":
                return { ...p, waking: null, stopped: ev.data.status === "aborted" };
              default:
                return p;
            }
          });
        },
        controller.signal,
      );
    } catch (err) {
      if (!controller.signal.aborted) {
        setText(said);
        setRefused(err instanceof ApiError && err.code === "QUOTA_EXCEEDED" ? `${err.message}` : messageOf(err));
      }
    } finally {
      abortRef.current = null;
      const id = answerId;
      const cards = turnCards.current;
      if (id !== undefined && cards.length) setAsked((all) => ({ ...all, [id]: cards }));
      const focused = document.activeElement?.closest<HTMLElement>("[data-approval-id]")?.dataset.approvalId;
      setRefocus(focused ?? null);
      if (cards.length) await queryClient.invalidateQueries({ queryKey: ["approvals", wid] });
      await queryClient.invalidateQueries({ queryKey: ["messages", wid, sid] });
      await queryClient.invalidateQueries({ queryKey: ["sessions", wid] });
      setPending(null);
    }
  }

  async function stop() {
    if (!sid) return;
    // Ask the server to stop upstream; closing the stream would stop it too.
    await api("POST", `/api/v1/workspaces/${wid}/sessions/${sid}/abort`).catch(() => abortRef.current?.abort());
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      void send();
    }
  }

  if (!canChat) {
    return (
      <section>
        <h1>Chat</h1>
        <Notice kind="info">Your role in this workspace (viewer) cannot chat.</Notice>
      </section>
    );
  }
  if (agents.data && agents.data.items.length === 0) {
    return (
      <section>
        <h1>Chat</h1>
        <p>There is no agent to talk to yet.</p>
        <Link to="/w/$wid/setup" params={{ wid }} className="button">
          Set up your workspace
        </Link>
      </section>
    );
  }
  const agentName = (id: string) => agents.data?.items.find((a) => a.id === id)?.name ?? "Agent";
  const current = sessions.data?.items.find((s) => s.id === sid);
  // The refetched history may hold this turn before the pending view is cleared: never show it twice.
  const shown = (history.data?.items ?? []).filter(
    (m) => !(pending && (m.status === "streaming" || pending.ids.includes(m.id))),
  );

  return (
    <div className="chat">
      <aside className="sessions" aria-label="Conversations">
        <div className="new-chat">
          {agents.data?.items.map((a) => (
            <button key={a.id} type="button" className="secondary" onClick={() => newSession.mutate(a.id)}>
              New chat with {a.name}
            </button>
          ))}
        </div>
        <ul>
          {sessions.data?.items.map((s) => (
            <li key={s.id}>
              <Link
                to="/w/$wid/chat"
                params={{ wid }}
                search={{ session: s.id }}
                aria-current={s.id === sid ? "page" : undefined}
              >
                {s.title || `New chat with ${agentName(s.agentId)}`}
              </Link>
            </li>
          ))}
        </ul>
      </aside>
      <section className="conversation" aria-label="Conversation">
        {!sid ? (
          <p>Start a chat with one of your agents.</p>
        ) : (
          <>
            <h1 className="chat-title">{current?.title || (current ? agentName(current.agentId) : "Chat")}</h1>
            <div className="messages" aria-live="polite">
              {shown.map((m) => (
                <Fragment key={m.id}>
                  <ChatMessage
                    from={m.role}
                    content={m.content}
                    status={m.status}
                    error={m.error}
                    trace={m.trace}
                    id={m.id}
                  />
                  {asked[m.id]?.map((a) => (
                    <ApprovalCard
                      key={a.id}
                      wid={wid}
                      approval={a}
                      role={membership?.role}
                      focusOutcome={refocus === a.id}
                      onChange={(next) =>
                        setAsked((all) => ({ ...all, [m.id]: upsertApproval(all[m.id] ?? [], next) }))
                      }
                    />
                  ))}
                </Fragment>
              ))}
              {pending ? (
                <>
                  <ChatMessage from="user" content={pending.user} />
                  {pending.waking !== null ? (
                    <p className="waking" role="status">
                      {pending.queued !== null
                        ? `The server is busy: your workspace is number ${pending.queued} in line to start… ${pending.waking} s`
                        : `Starting your workspace… ${pending.waking} s`}
                    </p>
                  ) : null}
                  {pending.answer || pending.waking === null ? (
                    <ChatMessage from="assistant" content={pending.answer} trace={pending.steps} id={pending.ids[1]} />
                  ) : null}
                  {pending.approvals.map((a) => (
                    <ApprovalCard
                      key={a.id}
                      wid={wid}
                      approval={a}
                      role={membership?.role}
                      onChange={(next) => {
                        turnCards.current = upsertApproval(turnCards.current, next);
                        setPending((p) => (p ? { ...p, approvals: upsertApproval(p.approvals, next) } : p));
                      }}
                    />
                  ))}
                  {pending.error ? (
                    <Notice>
                      {pending.error.message}
                      {pending.error.code === "UNAVAILABLE" ? " Send your message again to retry." : ""}
                    </Notice>
                  ) : null}
                </>
              ) : null}
              <div ref={endRef} />
            </div>
            {refused ? <Notice>{refused}</Notice> : null}
            <form className="composer" onSubmit={send}>
              <label htmlFor="composer-text" className="visually-hidden">
                Message
              </label>
              <textarea
                id="composer-text"
                rows={2}
                placeholder="Message your agent (Enter to send, Shift+Enter for a new line)"
                value={text}
                onChange={(e) => setText(e.target.value)}
                onKeyDown={onKey}
              />
              {pending ? (
                <button type="button" className="danger" onClick={() => void stop()}>
                  Stop
                </button>
              ) : (
                <button type="submit" disabled={!text.trim()}>
                  Send
                </button>
              )}
            </form>
          </>
        )}
      </section>
    </div>
  );
}
