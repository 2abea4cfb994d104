import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams, useSearch } from "@tanstack/react-router";
import { useCallback, useEffect, useId, useLayoutEffect, useRef, useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Agent, Approval, ChatSession, Message, Page, Runtime } from "../api/types.ts";
import { agentsQuery } from "../components/agent-form.tsx";
import { upsertApproval, useNow } from "../components/approval-card.tsx";
import { Composer } from "../components/chat/composer.tsx";
import { ConversationHeader } from "../components/chat/conversation-header.tsx";
import { ConversationList } from "../components/chat/conversation-list.tsx";
import { AgentIntro, MessageList } from "../components/chat/message-list.tsx";
import { useChatTurns } from "../components/chat/use-chat-turns.ts";
import { type Waking, WakingIndicator } from "../components/chat/waking-indicator.tsx";
import { useConfirm } from "../components/confirm-dialog.tsx";
import { Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { atLeast, useWorkspace } from "../components/session.ts";

/** `?session=new` (or none): a conversation not created yet, started by its first message. */
const NEW = "new";
const ARRIVING = "An answer is arriving in this conversation. Stop it, or wait for it to end, to send another message.";

/** Starts waking the workspace as the chat opens, and follows it until it runs: the first answer waits less. */
function usePageWaking(wid: string, enabled: boolean): Waking | null {
  const [runtime, setRuntime] = useState<Runtime | null>(null);
  const since = useRef(Date.now());
  useEffect(() => {
    if (!enabled) return;
    let cancelled = false;
    since.current = Date.now();
    api<Runtime>("POST", `/api/v1/workspaces/${wid}/runtime/wake`)
      .then((r) => !cancelled && setRuntime(r))
      .catch(() => {});
    return () => {
      cancelled = true;
    };
  }, [wid, enabled]);
  const waking = runtime?.state === "starting" || runtime?.state === "queued";
  useEffect(() => {
    if (!waking) return;
    const t = setInterval(() => {
      api<Runtime>("GET", `/api/v1/workspaces/${wid}/runtime`)
        .then(setRuntime)
        .catch(() => setRuntime(null));
    }, 2000);
    return () => clearInterval(t);
  }, [wid, waking]);
  if (!runtime || !waking) return null;
  return {
    since: since.current,
    expected: runtime.expectedStartSeconds,
    queued: runtime.state === "queued" ? 1 : null,
  };
}

/** Follows the end of the conversation as it grows, unless the person scrolled up to read. */
function useStickToBottom(shown: string) {
  const pane = useRef<HTMLDivElement>(null);
  const stuck = useRef(true);
  const onScroll = useCallback(() => {
    const el = pane.current;
    if (el) stuck.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  }, []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll whenever what is shown grows
  useLayoutEffect(() => {
    const el = pane.current;
    if (el && stuck.current) el.scrollTop = el.scrollHeight;
  }, [shown]);
  return { pane, onScroll, stick: () => (stuck.current = true) };
}

export function ChatPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const search = useSearch({ strict: false }) as { session?: string };
  const membership = useWorkspace(wid);
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const canChat = atLeast(membership?.role, "member");
  const canManage = atLeast(membership?.role, "admin");
  const agents = useQuery(agentsQuery(wid));
  const workspace = useQuery({
    queryKey: ["workspace", wid],
    queryFn: () => api<{ id: string; name: string; defaultAgentId: string | null }>("GET", `/api/v1/workspaces/${wid}`),
  });
  const [query, setQuery] = useState("");
  const [q, setQ] = useState("");
  useEffect(() => {
    const t = setTimeout(() => setQ(query.trim()), 250);
    return () => clearTimeout(t);
  }, [query]);
  const sessions = useInfiniteQuery({
    queryKey: ["sessions", wid, q],
    queryFn: ({ pageParam }) =>
      api<Page<ChatSession>>(
        "GET",
        `/api/v1/workspaces/${wid}/sessions?limit=50${q ? `&q=${encodeURIComponent(q)}` : ""}${pageParam ? `&cursor=${encodeURIComponent(pageParam)}` : ""}`,
      ),
    initialPageParam: "",
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    enabled: canChat,
    placeholderData: (previous) => previous,
  });
  const sessionItems = sessions.data?.pages.flatMap((p) => p.items);
  const sid = search.session && search.session !== NEW ? search.session : undefined;
  // Newest page first, so a long conversation opens at its end; "Load earlier messages" pages back.
  const history = useInfiniteQuery({
    queryKey: ["messages", wid, sid],
    queryFn: ({ pageParam }) =>
      api<Page<Message>>(
        "GET",
        `/api/v1/workspaces/${wid}/sessions/${sid}/messages?order=desc&limit=100${pageParam ? `&cursor=${encodeURIComponent(pageParam)}` : ""}`,
      ),
    initialPageParam: "",
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    enabled: !!sid && canChat,
  });
  const current = useQuery({
    queryKey: ["session", wid, sid],
    queryFn: () => api<ChatSession>("GET", `/api/v1/workspaces/${wid}/sessions/${sid}`),
    enabled: !!sid && canChat,
  });
  // Approval cards of this page's finished turns, by answer id: they stay under the answer once the turn ends.
  const [asked, setAsked] = useState<Record<number, Approval[]>>({});
  // The card that had keyboard focus when its turn ended: it gets it back under the stored answer.
  const [refocus, setRefocus] = useState<string | null>(null);
  const chat = useChatTurns({
    wid,
    sid,
    enabled: canChat,
    onTurnEnd: (answerId, cards) => {
      if (answerId !== undefined && cards.length) setAsked((all) => ({ ...all, [answerId]: cards }));
      setRefocus(document.activeElement?.closest<HTMLElement>("[data-approval-id]")?.dataset.approvalId ?? null);
    },
  });
  const turn = chat.turn;
  // Drafts are kept per conversation, like the answers.
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  const draftKey = sid ?? NEW;
  const text = drafts[draftKey] ?? "";
  const setText = (t: string) => setDrafts((all) => ({ ...all, [draftKey]: t }));
  const [chosenAgent, setChosenAgent] = useState<string | null>(null);
  const [drawerOpen, setDrawerOpen] = useState(false);
  const drawerId = useId();
  const drawerButton = useRef<HTMLButtonElement>(null);
  const drawer = useRef<HTMLElement>(null);
  const composer = useRef<HTMLTextAreaElement>(null);
  const { confirm, dialog } = useConfirm();
  const pageWaking = usePageWaking(wid, canChat);
  const now = useNow(1000, !!pageWaking || !!turn?.waking);

  const agentList = agents.data?.items ?? [];
  const agentById = (id: string | undefined) => agentList.find((a) => a.id === id);
  const preferred = chosenAgent ?? workspace.data?.defaultAgentId ?? null;
  const newAgent: Agent | undefined = agentById(preferred ?? undefined) ?? agentList[0];
  const session = current.data ?? sessionItems?.find((s) => s.id === sid);
  const sessionAgent = agentById(session?.agentId);
  const titleOf = (s: ChatSession) => s.title || `New chat with ${agentById(s.agentId)?.name ?? "an agent"}`;
  const title = sid ? (session ? titleOf(session) : "Chat") : "New chat";
  usePageTitle(sid ? (session ? titleOf(session) : "Chat") : "Chat", membership?.name);

  const historyItems = (history.data?.pages.flatMap((p) => p.items) ?? []).reverse();
  const { pane, onScroll, stick } = useStickToBottom(
    [sid, historyItems.length, turn?.answer.length, turn?.steps.length, turn?.approvals.length, !!turn?.waking].join(),
  );

  // Picking a conversation closes the phone drawer.
  // biome-ignore lint/correctness/useExhaustiveDependencies: closing is the point of a conversation change
  useEffect(() => setDrawerOpen(false), [sid]);
  useEffect(() => {
    if (!drawerOpen) return;
    drawer.current?.querySelector<HTMLElement>("a[aria-current], .new-chat")?.focus();
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (e.key !== "Escape") return;
      setDrawerOpen(false);
      drawerButton.current?.focus();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [drawerOpen]);

  const focusComposer = () => requestAnimationFrame(() => composer.current?.focus());

  const update = useMutation({
    mutationFn: (body: { title?: string; pinned?: boolean }) =>
      api<ChatSession>("PATCH", `/api/v1/workspaces/${wid}/sessions/${sid}`, body),
    onSuccess: async (s) => {
      queryClient.setQueryData(["session", wid, s.id], s);
      await queryClient.invalidateQueries({ queryKey: ["sessions", wid] });
    },
  });

  async function remove() {
    if (!sid || !session) return;
    const count = historyItems.length;
    const ok = await confirm({
      title: `Delete “${titleOf(session)}”?`,
      // Only the loaded pages are counted: with earlier ones left to load there are more.
      body: `Deletes this conversation and its ${history.hasNextPage ? "more than " : ""}${count} ${count === 1 ? "message" : "messages"}; the agent forgets it too. This cannot be undone.`,
      confirmLabel: "Delete conversation",
    });
    if (!ok) return;
    await api("DELETE", `/api/v1/workspaces/${wid}/sessions/${sid}`);
    queryClient.removeQueries({ queryKey: ["messages", wid, sid] });
    await queryClient.invalidateQueries({ queryKey: ["sessions", wid] });
    await navigate({ to: "/w/$wid/chat", params: { wid }, search: { session: NEW } });
    focusComposer();
  }

  async function startNew() {
    setDrawerOpen(false);
    await navigate({ to: "/w/$wid/chat", params: { wid }, search: { session: NEW } });
    focusComposer();
  }

  async function send(said: string, replaceFrom: number | null = null) {
    if (!said.trim() || turn) return;
    stick();
    if (sid) {
      const key = sid;
      if (replaceFrom === null) setText("");
      const sent = await chat.send(sid, said, replaceFrom);
      // Refused before it started (quota, a turn still arriving): the words come back to the box.
      if (!sent && replaceFrom === null) setDrafts((all) => ({ ...all, [key]: all[key] || said }));
      return;
    }
    if (!newAgent) return;
    // A new conversation: create it, then send its first message in it.
    const created = await api<ChatSession>("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId: newAgent.id });
    setDrafts((all) => ({ ...all, [NEW]: "" }));
    const sending = chat.send(created.id, said);
    await queryClient.invalidateQueries({ queryKey: ["sessions", wid] });
    await navigate({ to: "/w/$wid/chat", params: { wid }, search: { session: created.id } });
    focusComposer();
    await sending;
  }

  /** Regenerate (also Retry): the last message of the person's again, replacing it and what came after. */
  function regenerate() {
    const lastUser = historyItems.findLast((m) => m.role === "user");
    if (lastUser) void send(lastUser.content, lastUser.id);
  }

  async function stop() {
    if (!sid) return;
    await api("POST", `/api/v1/workspaces/${wid}/sessions/${sid}/abort`).catch(() => {});
    focusComposer();
  }

  if (!canChat) {
    return (
      <section className="chat-readonly">
        <h1>Chat</h1>
        <Notice kind="info">
          Your role in this workspace (viewer) cannot chat. You can see its agents and providers; ask an owner or admin
          of the workspace to make you a member if you need to chat.
        </Notice>
        <p>
          <Link to="/w/$wid/agents" params={{ wid }}>
            See the workspace's agents
          </Link>
        </p>
      </section>
    );
  }
  if (agents.data && agentList.length === 0) {
    return (
      <section className="chat-readonly">
        <h1>Chat</h1>
        <p>There is no agent to talk to yet.</p>
        {canManage ? (
          <Link to="/w/$wid/setup" params={{ wid }} className="button">
            Set up your workspace
          </Link>
        ) : (
          <p className="hint">Ask an owner or admin of this workspace to add one.</p>
        )}
      </section>
    );
  }

  const streaming = !!turn && (turn.user !== null || turn.ids.length > 0);
  const blocked = streaming ? ARRIVING : null;
  const empty = sid ? history.isSuccess && historyItems.length === 0 && !turn : true;

  return (
    <div className="chat" data-drawer-open={drawerOpen ? "" : undefined}>
      <ConversationList
        ref={drawer}
        id={drawerId}
        wid={wid}
        sessions={sessionItems}
        loading={sessions.isPending}
        more={
          sessions.hasNextPage
            ? { loading: sessions.isFetchingNextPage, load: () => void sessions.fetchNextPage() }
            : undefined
        }
        current={sid}
        query={query}
        onQuery={setQuery}
        titleOf={titleOf}
        onNewChat={() => void startNew()}
        open={drawerOpen}
        onClose={() => {
          setDrawerOpen(false);
          drawerButton.current?.focus();
        }}
      />
      <section className="conversation" aria-label="Conversation">
        <ConversationHeader
          title={title}
          session={session}
          drawerId={drawerId}
          drawerOpen={drawerOpen}
          drawerButton={drawerButton}
          onDrawer={() => setDrawerOpen((o) => !o)}
          onRename={(t) => update.mutateAsync({ title: t })}
          onPin={(pinned) => update.mutate({ pinned })}
          onDelete={() => void remove()}
        />
        {update.isError ? <Notice>{messageOf(update.error)}</Notice> : null}
        <div className="messages" ref={pane} onScroll={onScroll} role="log" aria-label="Chat history">
          {empty ? (
            <AgentIntro agent={sid ? sessionAgent : newAgent} onStarter={(p) => void send(p)} />
          ) : (
            <>
              {history.hasNextPage ? (
                <button
                  type="button"
                  className="secondary load-earlier"
                  onClick={() => void history.fetchNextPage()}
                  disabled={history.isFetchingNextPage}
                >
                  {history.isFetchingNextPage ? "Loading earlier messages…" : "Load earlier messages"}
                </button>
              ) : null}
              <MessageList
                wid={wid}
                role={membership?.role}
                canManage={canManage}
                history={historyItems}
                turn={turn}
                failed={chat.failed}
                asked={asked}
                onAsked={(id, next) => setAsked((all) => ({ ...all, [id]: upsertApproval(all[id] ?? [], next) }))}
                refocus={refocus}
                onTurnApproval={(next) => {
                  if (sid) chat.patch(sid, (t) => ({ ...t, approvals: upsertApproval(t.approvals, next) }));
                }}
                busy={blocked}
                onRegenerate={regenerate}
                onEdit={(id, t) => void send(t, id)}
                now={now}
              />
            </>
          )}
        </div>
        {pageWaking && !turn?.waking ? <WakingIndicator waking={pageWaking} now={now} /> : null}
        {chat.refused ? <Notice>{chat.refused.message}</Notice> : null}
        <Composer
          text={text}
          onText={setText}
          onSend={() => void send(text.trim())}
          onStop={() => void stop()}
          streaming={streaming}
          blocked={blocked}
          textareaRef={composer}
          agentChoice={
            sid || !newAgent
              ? undefined
              : { agents: agentList, agentId: newAgent.id, onAgent: (id) => setChosenAgent(id) }
          }
        />
      </section>
      {dialog}
    </div>
  );
}
