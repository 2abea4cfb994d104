import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "@tanstack/react-router";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { CreatedSchedule, Page, Schedule, ScheduleRun } from "../api/types.ts";
import { useConfirm } from "../components/confirm-dialog.tsx";
import { focusAfterRemoval, focusLater, useFocusOnMount } from "../components/focus.ts";
import { Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { ScheduleForm } from "../components/schedule-form.tsx";
import { RunHistory, StatusChip } from "../components/schedule-runs.tsx";
import { SecretPanel } from "../components/schedule-secret.tsx";
import { inZone, isActive, KIND_LABEL, relative, whenOf } from "../components/schedule-text.ts";
import { atLeast, useWorkspace } from "../components/session.ts";

const NOT_YOURS = "Only the person who created this schedule, or an admin, can change it.";

/** `/w/$wid/schedules`: the workspace's schedules and webhook triggers, their runs and output. */
export function SchedulesPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  usePageTitle("Schedules", membership?.name);
  const queryClient = useQueryClient();
  const { confirm, dialog } = useConfirm();
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const [secret, setSecret] = useState<{ schedule: Schedule; secret: string } | null>(null);
  // Which schedules show their runs, and the run to open (the one "Run now" just queued).
  const [expanded, setExpanded] = useState<Record<string, string | true>>({});
  const [announce, setAnnounce] = useState("");
  const focusFirstField = useFocusOnMount<HTMLDivElement>("input, select, textarea");
  const canCreate = atLeast(membership?.role, "member");
  const schedules = useInfiniteQuery({
    queryKey: ["schedules", wid],
    initialPageParam: "",
    queryFn: ({ pageParam }) => {
      const q = new URLSearchParams({ limit: "50" });
      if (pageParam) q.set("cursor", pageParam);
      return api<Page<Schedule>>("GET", `/api/v1/workspaces/${wid}/schedules?${q}`);
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    // Next run and last status move on by themselves: look again often while a run is under way.
    refetchInterval: (q) =>
      q.state.data?.pages.some((p) => p.items.some((s) => s.lastRunStatus && isActive(s.lastRunStatus)))
        ? 3000
        : 30_000,
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["schedules", wid] });
  const path = (s: Schedule, rest = "") => `/api/v1/workspaces/${wid}/schedules/${s.id}${rest}`;
  const toggle = useMutation({
    mutationFn: (s: Schedule) => api<Schedule>("PATCH", path(s), { enabled: !s.enabled }),
    onSuccess: (s) => setAnnounce(s.enabled ? `${s.name} resumed.` : `${s.name} paused.`),
    onSettled: refresh,
  });
  const runNow = useMutation({
    mutationFn: (s: Schedule) => api<ScheduleRun>("POST", path(s, "/run")),
    onSuccess: async (run, s) => {
      setExpanded((e) => ({ ...e, [s.id]: run.id }));
      setAnnounce(`${s.name}: run queued.`);
      await queryClient.invalidateQueries({ queryKey: ["schedule-runs", wid, s.id] });
      await refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (s: Schedule) => api("DELETE", path(s)),
    onSuccess: (_, s) => setAnnounce(`${s.name} deleted.`),
    onSettled: refresh,
  });
  const rotate = useMutation({
    mutationFn: (s: Schedule) => api<{ secret: string }>("POST", path(s, "/rotate-secret")),
    onSuccess: (r, s) => setSecret({ schedule: s, secret: r.secret }),
  });
  const actionError = toggle.error ?? runNow.error ?? remove.error ?? rotate.error;

  async function deleteSchedule(s: Schedule, card: Element | null) {
    const ok = await confirm({
      title: `Delete the schedule ${s.name}?`,
      body: (
        <p>
          It stops running{s.kind === "webhook" ? " and its webhook URL is refused from now on" : ""}, and its run
          history goes with it. The conversation holding its answers stays. This cannot be undone.
        </p>
      ),
      confirmLabel: "Delete schedule",
    });
    if (!ok) return;
    const refocus = focusAfterRemoval(card, "h2", () => document.getElementById("new-schedule"));
    remove.mutate(s, { onSuccess: refocus });
  }

  async function rotateSecret(s: Schedule) {
    const ok = await confirm({
      title: `Make a new secret for ${s.name}?`,
      body: (
        <p>
          The current secret stops working at once: {s.kind === "webhook" ? "callers" : "receivers of notifications"}{" "}
          using it are refused until you give them the new one.
        </p>
      ),
      confirmLabel: "Rotate secret",
    });
    if (ok) rotate.mutate(s);
  }

  const rows = schedules.data?.pages.flatMap((p) => p.items) ?? [];
  const newButton = (
    <>
      <button
        type="button"
        id="new-schedule"
        disabled={!canCreate}
        aria-describedby={canCreate ? undefined : "new-schedule-why"}
        onClick={() => {
          setSecret(null);
          setAdding(true);
        }}
      >
        New schedule
      </button>
      {canCreate ? null : (
        <small id="new-schedule-why" className="disabled-why">
          Viewers cannot create schedules: a schedule chats with an agent as you.
        </small>
      )}
    </>
  );

  return (
    <section aria-labelledby="schedules-title">
      <div className="page-head">
        <h1 id="schedules-title">Schedules</h1>
        {adding || rows.length === 0 ? null : newButton}
      </div>
      <p className="visually-hidden" role="status">
        {announce}
      </p>
      {secret ? (
        <SecretPanel
          schedule={secret.schedule}
          secret={secret.secret}
          onClose={() => {
            setSecret(null);
            focusLater(() => document.getElementById(`schedule-${secret.schedule.id}`));
          }}
        />
      ) : null}
      {adding ? (
        <div ref={focusFirstField}>
          <ScheduleForm
            wid={wid}
            onCancel={() => {
              setAdding(false);
              focusLater(() => document.getElementById("new-schedule"));
            }}
            onDone={async (saved) => {
              setAdding(false);
              await refresh();
              const created = saved as CreatedSchedule;
              if (created.secret) setSecret({ schedule: created, secret: created.secret });
              else focusLater(() => document.getElementById(`schedule-${saved.id}`));
              setAnnounce(`${saved.name} created.`);
            }}
          />
        </div>
      ) : null}
      {schedules.isError ? <Notice>{messageOf(schedules.error)}</Notice> : null}
      {actionError ? <Notice>{messageOf(actionError)}</Notice> : null}
      {schedules.isPending ? <p className="loading">Loading…</p> : null}
      {schedules.isSuccess && rows.length === 0 && !adding ? (
        <div className="card empty-state">
          <h2>No schedules yet</h2>
          <p>
            A schedule sends an agent a prompt on its own: every weekday morning, once at a set time, or whenever
            another system (n8n, a CI job, a form) calls its webhook. The answers are kept here, with each run's status,
            so the work gets done while nobody is chatting.
          </p>
          {newButton}
        </div>
      ) : null}
      <ul className="cards schedule-list" aria-label="Schedules">
        {rows.map((s) => {
          const why = s.canManage ? undefined : `why-${s.id}`;
          const runsOpen = expanded[s.id];
          return (
            <li key={s.id} className="card schedule-card">
              <h2 id={`schedule-${s.id}`} className="schedule-title" tabIndex={-1}>
                {s.name} {s.enabled ? null : <span className="badge">Paused</span>}{" "}
                {s.failing || s.consecutiveFailures > 0 ? (
                  <span className="badge badge-danger">
                    {s.failing ? "Failing" : "Failed"}: {s.consecutiveFailures} in a row
                  </span>
                ) : null}
              </h2>
              <dl className="schedule-facts">
                <dt>Agent</dt>
                <dd>{s.agentName ?? "Deleted agent"}</dd>
                <dt>Kind</dt>
                <dd>{KIND_LABEL[s.kind]}</dd>
                <dt>When</dt>
                <dd>{whenOf(s)}</dd>
                <dt>Next run</dt>
                <dd>
                  {!s.enabled
                    ? "None while paused"
                    : s.nextRunAt
                      ? `${relative(s.nextRunAt)} · ${inZone(s.nextRunAt, s.timezone)} (${s.timezone})`
                      : s.kind === "webhook"
                        ? "When called"
                        : "None"}
                </dd>
                <dt>Last run</dt>
                <dd>
                  {s.lastRunStatus ? <StatusChip status={s.lastRunStatus} /> : "Never run"}
                  {s.lastRunAt ? ` ${relative(s.lastRunAt)}` : ""}
                </dd>
                <dt>Created by</dt>
                <dd>{s.createdBy.name ?? "someone"}</dd>
              </dl>
              {s.hookPath ? (
                <p className="hint">
                  Webhook URL: <code className="invite-link">{`${window.location.origin}${s.hookPath}`}</code>
                </p>
              ) : null}
              {s.sessionId ? (
                <p>
                  <Link to="/w/$wid/chat" params={{ wid }} search={{ session: s.sessionId }}>
                    Open the conversation with its answers
                  </Link>
                </p>
              ) : null}
              {editing === s.id ? (
                <div ref={focusFirstField}>
                  <ScheduleForm
                    wid={wid}
                    schedule={s}
                    onCancel={() => {
                      setEditing(null);
                      focusLater(() => document.getElementById(`edit-${s.id}`));
                    }}
                    onDone={async (saved) => {
                      setEditing(null);
                      setAnnounce(`${saved.name} saved.`);
                      await refresh();
                      // Adding a notification URL makes the schedule's first secret: shown this once.
                      const made = (saved as CreatedSchedule).secret;
                      if (made) setSecret({ schedule: saved, secret: made });
                      else focusLater(() => document.getElementById(`edit-${s.id}`));
                    }}
                  />
                </div>
              ) : (
                <div className="actions row-actions">
                  <button
                    type="button"
                    className="secondary"
                    aria-label={`${runsOpen ? "Hide" : "Show"} runs of ${s.name}`}
                    aria-expanded={!!runsOpen}
                    aria-controls={`runs-panel-${s.id}`}
                    onClick={() =>
                      setExpanded(({ [s.id]: _, ...rest }) => (runsOpen ? rest : { ...rest, [s.id]: true }))
                    }
                  >
                    {runsOpen ? "Hide runs" : "Show runs"}
                  </button>
                  <button
                    type="button"
                    disabled={!s.canManage || runNow.isPending}
                    aria-describedby={why}
                    aria-label={`Run now: ${s.name}`}
                    onClick={() => runNow.mutate(s)}
                  >
                    Run now
                  </button>
                  <button
                    type="button"
                    className="secondary"
                    disabled={!s.canManage || toggle.isPending}
                    aria-describedby={why}
                    aria-label={`${s.enabled ? "Pause" : "Resume"} ${s.name}`}
                    onClick={() => toggle.mutate(s)}
                  >
                    {s.enabled ? "Pause" : "Resume"}
                  </button>
                  <button
                    type="button"
                    id={`edit-${s.id}`}
                    className="secondary"
                    disabled={!s.canManage}
                    aria-describedby={why}
                    aria-label={`Edit ${s.name}`}
                    onClick={() => {
                      setSecret(null);
                      setEditing(s.id);
                    }}
                  >
                    Edit
                  </button>
                  {s.kind === "webhook" || s.notifyUrl ? (
                    <button
                      type="button"
                      className="secondary"
                      disabled={!s.canManage || rotate.isPending}
                      aria-describedby={why}
                      aria-label={`Rotate secret of ${s.name}`}
                      onClick={() => void rotateSecret(s)}
                    >
                      Rotate secret
                    </button>
                  ) : null}
                  <button
                    type="button"
                    className="danger"
                    disabled={!s.canManage}
                    aria-describedby={why}
                    aria-label={`Delete ${s.name}`}
                    onClick={(e) => void deleteSchedule(s, e.currentTarget.closest("li"))}
                  >
                    Delete
                  </button>
                  {why ? (
                    <small id={why} className="disabled-why">
                      {NOT_YOURS}
                    </small>
                  ) : null}
                </div>
              )}
              {runsOpen ? (
                <div id={`runs-panel-${s.id}`}>
                  <RunHistory wid={wid} schedule={s} openRunId={typeof runsOpen === "string" ? runsOpen : undefined} />
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
      {schedules.hasNextPage ? (
        <button
          type="button"
          className="secondary"
          onClick={() => void schedules.fetchNextPage()}
          disabled={schedules.isFetchingNextPage}
        >
          {schedules.isFetchingNextPage ? "Loading…" : "Load more"}
        </button>
      ) : null}
      {dialog}
    </section>
  );
}
