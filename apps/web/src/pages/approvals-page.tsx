import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate, useParams, useSearch } from "@tanstack/react-router";
import { type KeyboardEvent, useEffect, useRef, useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Approval, Page } from "../api/types.ts";
import { APPROVALS_POLL_MS, ApprovalCard, usePendingApprovalCount } from "../components/approval-card.tsx";
import { Notice } from "../components/forms.tsx";
import { useWorkspace } from "../components/session.ts";

const TABS = [
  { id: "pending", label: "Pending", status: "pending" },
  { id: "history", label: "History", status: "all" },
] as const;
type Tab = (typeof TABS)[number]["id"];

/** One tab's requests, newest first, a page at a time. */
function ApprovalList(props: { wid: string; tab: Tab }) {
  const membership = useWorkspace(props.wid);
  const status = TABS.find((t) => t.id === props.tab)?.status ?? "pending";
  const list = useInfiniteQuery({
    queryKey: ["approvals", props.wid, "list", status],
    initialPageParam: "",
    queryFn: ({ pageParam }) => {
      const q = new URLSearchParams({ status, limit: "20" });
      if (pageParam) q.set("cursor", pageParam);
      return api<Page<Approval>>("GET", `/api/v1/workspaces/${props.wid}/approvals?${q}`);
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    refetchInterval: APPROVALS_POLL_MS,
  });
  const queryClient = useQueryClient();
  // What the list just learnt (a request decided or timed out) shows in the navigation's count at once.
  useEffect(() => {
    if (list.dataUpdatedAt) void queryClient.invalidateQueries({ queryKey: ["approvals", props.wid, "pending-count"] });
  }, [list.dataUpdatedAt, props.wid, queryClient]);
  // Requests decided on this page stay in view with their outcome (and keyboard focus) until the person leaves.
  const [decided, setDecided] = useState<Approval[]>([]);
  const fetched = list.data?.pages.flatMap((p) => p.items) ?? [];
  const rows = [
    ...fetched.map((a) => decided.find((d) => d.id === a.id && a.status === "pending") ?? a),
    ...decided.filter((d) => !fetched.some((a) => a.id === d.id)),
  ].sort((x, y) => y.createdAt.localeCompare(x.createdAt));
  return (
    <>
      {list.isError ? <Notice>{messageOf(list.error)}</Notice> : null}
      {list.isPending ? <p className="hint">Loading…</p> : null}
      {rows.length === 0 && list.isSuccess ? (
        props.tab === "pending" ? (
          <div className="empty">
            <p>Nothing is waiting for a decision.</p>
            <p className="hint">
              When an agent wants to run a command its policy says to ask about, the request shows up here and in the
              chat that asked for it.
            </p>
          </div>
        ) : (
          <p className="empty">No agent has asked for approval yet.</p>
        )
      ) : null}
      <ul className="approval-list">
        {rows.map((a) => (
          <li key={a.id}>
            <ApprovalCard
              wid={props.wid}
              approval={a}
              role={membership?.role}
              place="inbox"
              onChange={(next) => {
                setDecided((all) => [...all.filter((d) => d.id !== next.id), next]);
                void list.refetch();
              }}
            />
          </li>
        ))}
      </ul>
      {list.hasNextPage ? (
        <button
          type="button"
          className="secondary"
          onClick={() => void list.fetchNextPage()}
          disabled={list.isFetchingNextPage}
        >
          {list.isFetchingNextPage ? "Loading…" : "Load more"}
        </button>
      ) : null}
    </>
  );
}

/** The workspace's approvals: what waits for a decision now, and what was decided. */
export function ApprovalsPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const search = useSearch({ strict: false }) as { tab?: string };
  const navigate = useNavigate();
  const tab: Tab = search.tab === "history" ? "history" : "pending";
  const count = usePendingApprovalCount(wid);
  const tabRefs = useRef<Record<Tab, HTMLButtonElement | null>>({ pending: null, history: null });

  const choose = (t: Tab, focus = false) => {
    void navigate({
      to: "/w/$wid/approvals",
      params: { wid },
      search: t === "pending" ? {} : { tab: t },
      replace: true,
    });
    if (focus) tabRefs.current[t]?.focus();
  };
  // Arrow keys move between tabs, as in any tab list.
  const onKey = (e: KeyboardEvent<HTMLDivElement>) => {
    const i = TABS.findIndex((t) => t.id === tab);
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    const to = e.key === "Home" ? 0 : e.key === "End" ? TABS.length - 1 : (i + step + TABS.length) % TABS.length;
    if (!step && e.key !== "Home" && e.key !== "End") return;
    e.preventDefault();
    const next = TABS[to];
    if (next) choose(next.id, true);
  };

  return (
    <section aria-labelledby="approvals-title">
      <h1 id="approvals-title">Approvals</h1>
      <p className="hint">
        Agents whose policy says to ask wait here before running a command. The person chatting decides for their own
        conversation; workspace admins and owners decide for any run.
      </p>
      <div className="tabs" role="tablist" aria-label="Approvals" onKeyDown={onKey}>
        {TABS.map((t) => (
          <button
            key={t.id}
            ref={(el) => {
              tabRefs.current[t.id] = el;
            }}
            type="button"
            role="tab"
            id={`approvals-tab-${t.id}`}
            aria-selected={tab === t.id}
            aria-controls={tab === t.id ? "approvals-panel" : undefined}
            tabIndex={tab === t.id ? 0 : -1}
            className="tab"
            onClick={() => choose(t.id)}
          >
            {t.label}
            {t.id === "pending" && count ? (
              <span className="count">
                {" "}
                {count}
                <span className="visually-hidden"> waiting</span>
              </span>
            ) : null}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="approvals-panel" aria-labelledby={`approvals-tab-${tab}`}>
        <ApprovalList key={tab} wid={wid} tab={tab} />
      </div>
    </section>
  );
}
