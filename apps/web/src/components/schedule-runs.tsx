import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Page, Schedule, ScheduleRun } from "../api/types.ts";
import { Notice } from "./forms.tsx";
import {
  duration,
  inZone,
  isActive,
  RUN_ERROR_TEXT,
  RUN_POLL_MS,
  relative,
  STATUS_LABEL,
  TRIGGER_LABEL,
} from "./schedule-text.ts";

// The output renders Markdown like the chat: its code loads when someone first opens an output.
const RunOutput = lazy(() => import("./schedule-run-output.tsx"));

/** A run's status as a chip; colour is never the only cue (the word is always there). */
export function StatusChip(props: { status: ScheduleRun["status"] }) {
  return (
    <span className={`status-chip status-${props.status}`}>
      {isActive(props.status) ? <span className="spinner" aria-hidden="true" /> : null}
      {STATUS_LABEL[props.status]}
    </span>
  );
}

const runsKey = (wid: string, sid: string) => ["schedule-runs", wid, sid];

/** The runs of one schedule, newest first, "load more" pages; refreshes itself while one is queued or running. */
export function RunHistory(props: { wid: string; schedule: Schedule; openRunId?: string | undefined }) {
  const { wid, schedule } = props;
  const runs = useInfiniteQuery({
    queryKey: runsKey(wid, schedule.id),
    initialPageParam: "",
    queryFn: ({ pageParam }) => {
      const q = new URLSearchParams({ limit: "20" });
      if (pageParam) q.set("cursor", pageParam);
      return api<Page<ScheduleRun>>("GET", `/api/v1/workspaces/${wid}/schedules/${schedule.id}/runs?${q}`);
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    refetchInterval: (q) =>
      q.state.data?.pages.some((p) => p.items.some((r) => isActive(r.status))) ? RUN_POLL_MS : false,
  });
  const rows = runs.data?.pages.flatMap((p) => p.items) ?? [];
  // When the last active run ends, the schedule's own row (last run, failures, next run) is out of date too.
  const queryClient = useQueryClient();
  const anyActive = rows.some((r) => isActive(r.status));
  const wasActive = useRef(false);
  useEffect(() => {
    if (wasActive.current && !anyActive) void queryClient.invalidateQueries({ queryKey: ["schedules", wid] });
    wasActive.current = anyActive;
  }, [anyActive, queryClient, wid]);
  return (
    <section aria-labelledby={`runs-${schedule.id}`} className="run-history">
      <h2 id={`runs-${schedule.id}`} className="run-history-title">
        Run history
      </h2>
      {runs.isError ? <Notice>{messageOf(runs.error)}</Notice> : null}
      {runs.isSuccess && rows.length === 0 ? (
        <p className="hint">No runs yet. Press “Run now” to try it, or wait for its next time.</p>
      ) : null}
      <ul className="run-list" aria-label={`Runs of ${schedule.name}`}>
        {rows.map((r) => (
          <RunItem key={r.id} wid={wid} schedule={schedule} run={r} startOpen={r.id === props.openRunId} />
        ))}
      </ul>
      {runs.hasNextPage ? (
        <button
          type="button"
          className="secondary"
          onClick={() => void runs.fetchNextPage()}
          disabled={runs.isFetchingNextPage}
        >
          {runs.isFetchingNextPage ? "Loading…" : "Load more runs"}
        </button>
      ) : null}
    </section>
  );
}

function RunItem(props: { wid: string; schedule: Schedule; run: ScheduleRun; startOpen: boolean }) {
  const { run, schedule } = props;
  const [open, setOpen] = useState(props.startOpen);
  const outputId = `run-output-${run.id}`;
  const tokens =
    run.promptTokens !== null || run.completionTokens !== null
      ? `${(run.promptTokens ?? 0) + (run.completionTokens ?? 0)} (${run.promptTokens ?? 0} in, ${run.completionTokens ?? 0} out)`
      : "—";
  const errorText = run.error ?? (run.errorCode ? RUN_ERROR_TEXT[run.errorCode] : null);
  return (
    <li className="card run-item" data-run-id={run.id}>
      <div className="run-head">
        <StatusChip status={run.status} />
        <span>{TRIGGER_LABEL[run.trigger]}</span>
        <span className="hint">
          {inZone(run.scheduledFor, schedule.timezone)} ({relative(run.scheduledFor)})
        </span>
      </div>
      <dl className="run-facts">
        <dt>Duration</dt>
        <dd>{duration(run.durationMs)}</dd>
        <dt>Tokens</dt>
        <dd>{tokens}</dd>
        {run.attempts > 1 ? (
          <>
            <dt>Attempts</dt>
            <dd>{run.attempts}</dd>
          </>
        ) : null}
        {run.notifyStatus ? (
          <>
            <dt>Notification</dt>
            <dd>
              {run.notifyStatus === "delivered" ? "Delivered" : run.notifyStatus === "failed" ? "Failed" : "Sending"}
            </dd>
          </>
        ) : null}
      </dl>
      {errorText && run.status !== "succeeded" ? <p className="run-error">{errorText}</p> : null}
      <button
        type="button"
        className="secondary"
        aria-expanded={open}
        aria-controls={outputId}
        onClick={() => setOpen(!open)}
      >
        {open ? "Hide output" : "Show output"}
      </button>
      {open ? (
        <div id={outputId} className="run-output">
          <Suspense fallback={<p className="loading">Loading…</p>}>
            <RunOutput wid={props.wid} schedule={schedule} runId={run.id} />
          </Suspense>
        </div>
      ) : null}
    </li>
  );
}
