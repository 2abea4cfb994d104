import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState } from "react";
import { ApiError, api, messageOf } from "../api/client.ts";
import type { Approval, Page, Role } from "../api/types.ts";
import { Notice } from "./forms.tsx";
import { atLeast, useMe } from "./session.ts";

type Decision = "allow-once" | "allow-always" | "deny";

/** How often the inbox and the navigation's count look for new requests (react-query pauses it while the tab is hidden). */
export const APPROVALS_POLL_MS = 10_000;

/** "3", or "100+" when more wait than one page holds: what is waiting for a decision, for the navigation. */
export function usePendingApprovalCount(wid: string | undefined): string | null {
  const pending = useQuery({
    queryKey: ["approvals", wid, "pending-count"],
    queryFn: () => api<Page<Approval>>("GET", `/api/v1/workspaces/${wid}/approvals?status=pending&limit=100`),
    refetchInterval: APPROVALS_POLL_MS,
    enabled: !!wid,
  });
  const n = pending.data?.items.length ?? 0;
  if (!n) return null;
  return pending.data?.nextCursor ? `${n}+` : String(n);
}

/** The current time, ticking every `ms` while `on`. */
export function useNow(ms = 1000, on = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!on) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms, on]);
  return now;
}

/** "4 min 05 s", "12 s": how long until `iso`. */
export function timeUntil(iso: string, now: number): string | null {
  const s = Math.ceil((Date.parse(iso) - now) / 1000);
  if (!(s > 0)) return null;
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

/** Replaces the approval with the same id (a later event about it), or appends it. */
export function upsertApproval(list: Approval[], a: Approval): Approval[] {
  const i = list.findIndex((x) => x.id === a.id);
  return i < 0 ? [...list, a] : list.map((x, j) => (j === i ? a : x));
}

/** Who the run was for, in words. */
export function requesterOf(a: Approval, myId: string | undefined): string {
  const r = a.requestedBy;
  if (r.kind === "user") return r.id && r.id === myId ? "you" : (r.name ?? "a member");
  if (r.kind === "api_key") return r.name ? `the API key “${r.name}”` : "an API key";
  return "a scheduled or background run";
}

/** What became of a decided approval, in words ("Approved by Ada", "Timed out — denied"). */
export function outcomeOf(a: Approval, myId: string | undefined): string {
  if (a.status === "expired" || a.decidedVia === "timeout") return "Timed out — denied";
  const by = a.decidedBy?.id && a.decidedBy.id === myId ? "you" : a.decidedBy?.name;
  const verb = a.status === "approved" ? "Approved" : "Denied";
  const who = by ? ` by ${by}` : a.decidedVia === "gateway" ? " on the gateway" : "";
  const always = a.decision === "allow-always" ? ", and always allowed for this agent from now on" : "";
  return `${verb}${who}${always}`;
}

/** Asks the server for the approval's current state (after a decision answered with the approval, or a 409). */
async function current(wid: string, id: string): Promise<Approval | null> {
  return api<Approval>("GET", `/api/v1/workspaces/${wid}/approvals/${id}`).catch(() => null);
}

/**
 * A command an agent wants to run, with Approve / Deny for those who may
 * decide, and what became of it once anyone decided (or the timeout denied it).
 * Used in the chat stream and in the approvals inbox.
 */
export function ApprovalCard(props: {
  wid: string;
  approval: Approval;
  role: Role | undefined;
  /** The newer state after this card's decision (or after finding out someone else decided first). */
  onChange?: (a: Approval) => void;
  /** The inbox names the agent in the heading and dates each request; the chat is about one agent, today. */
  place?: "chat" | "inbox";
  /** Put keyboard focus on what happened when shown (the chat re-shows a turn's cards under the stored answer). */
  focusOutcome?: boolean;
}) {
  const me = useMe().data?.user.id;
  const queryClient = useQueryClient();
  const headingId = useId();
  // What this card learnt itself, until the parent passes a newer state (from the stream or a refetch).
  const [learnt, setLearnt] = useState<Approval | null>(null);
  const a = props.approval.status === "pending" && learnt?.id === props.approval.id ? learnt : props.approval;
  const pending = a.status === "pending";
  const now = useNow(1000, pending);
  const left = timeUntil(a.expiresAt, now);
  const focusInside = useRef(false);
  const outcomeRef = useRef<HTMLParagraphElement>(null);

  const decide = useMutation({
    mutationFn: (decision: Decision) =>
      api<Approval | undefined>("POST", `/api/v1/workspaces/${props.wid}/approvals/${a.id}/decision`, { decision }),
    onSuccess: async (res) => {
      const next = res?.id ? res : await current(props.wid, a.id);
      if (next) {
        setLearnt(next);
        props.onChange?.(next);
      }
      await queryClient.invalidateQueries({ queryKey: ["approvals", props.wid] });
    },
    onError: async (err) => {
      // Someone else decided first, or it timed out: show what happened instead of stale buttons.
      if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
        const next = await current(props.wid, a.id);
        if (next) {
          setLearnt(next);
          props.onChange?.(next);
        }
        await queryClient.invalidateQueries({ queryKey: ["approvals", props.wid] });
      }
    },
  });

  // biome-ignore lint/correctness/useExhaustiveDependencies: only when first shown
  useEffect(() => {
    if (props.focusOutcome) outcomeRef.current?.focus();
  }, []);
  // The buttons go away once it is decided: keep keyboard focus in the card, on what happened.
  useEffect(() => {
    if (pending || !focusInside.current) return;
    const active = document.activeElement;
    if (!active || active === document.body || outcomeRef.current?.parentElement?.contains(active)) {
      outcomeRef.current?.focus();
    }
  }, [pending]);

  const canAlways = a.kind === "exec" && atLeast(props.role, "admin");
  const inbox = props.place === "inbox";
  const asked = new Date(a.createdAt);
  return (
    <article
      className={`approval approval-${a.status}`}
      data-approval-id={a.id}
      aria-labelledby={headingId}
      onFocus={() => {
        focusInside.current = true;
      }}
      onBlur={(e) => {
        if (e.relatedTarget && !e.currentTarget.contains(e.relatedTarget as Node)) focusInside.current = false;
      }}
    >
      <h2 id={headingId} className="approval-title">
        {inbox ? (a.agentName ?? "An agent") : "The agent"}{" "}
        {a.kind === "exec" ? "wants to run a command" : "wants to use a plugin action"}
      </h2>
      <pre className="approval-subject">
        <code>{a.subject}</code>
      </pre>
      <dl>
        {a.cwd ? (
          <>
            <dt>In folder</dt>
            <dd>
              <code>{a.cwd}</code>
            </dd>
          </>
        ) : null}
        <dt>Agent</dt>
        <dd>{a.agentName ?? "a deleted agent"}</dd>
        <dt>Asked for</dt>
        <dd>{requesterOf(a, me)}</dd>
        <dt>Asked at</dt>
        <dd>
          <time dateTime={a.createdAt}>{inbox ? asked.toLocaleString() : asked.toLocaleTimeString()}</time>
        </dd>
        {pending ? (
          <>
            <dt>Time left</dt>
            {/* Ticks every second: not announced, or a screen reader would read it out each time. */}
            <dd aria-live="off">
              {left ? `${left}, then it is denied automatically` : "Out of time: it is being denied…"}
            </dd>
          </>
        ) : null}
      </dl>
      {pending ? (
        a.canDecide ? (
          <div className="actions">
            <button type="button" disabled={decide.isPending} onClick={() => decide.mutate("allow-once")}>
              Approve once
            </button>
            {canAlways ? (
              <button
                type="button"
                className="secondary"
                disabled={decide.isPending}
                onClick={() => decide.mutate("allow-always")}
              >
                Always allow this command
              </button>
            ) : null}
            <button type="button" className="danger" disabled={decide.isPending} onClick={() => decide.mutate("deny")}>
              Deny
            </button>
          </div>
        ) : (
          <p className="hint">Only the person chatting or a workspace admin can decide.</p>
        )
      ) : (
        <p ref={outcomeRef} tabIndex={-1} className={`approval-outcome approval-outcome-${a.status}`}>
          <span aria-hidden="true">{a.status === "approved" ? "✓ " : "⊘ "}</span>
          {outcomeOf(a, me)}
          {a.decidedAt ? (
            <span className="hint">
              {" "}
              at {inbox ? new Date(a.decidedAt).toLocaleString() : new Date(a.decidedAt).toLocaleTimeString()}
            </span>
          ) : null}
        </p>
      )}
      {decide.isError ? <Notice>{messageOf(decide.error)}</Notice> : null}
    </article>
  );
}
