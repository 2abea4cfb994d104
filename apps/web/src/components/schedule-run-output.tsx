import { useQuery } from "@tanstack/react-query";
import { api, messageOf } from "../api/client.ts";
import type { Schedule, ScheduleRunDetail, TraceStep } from "../api/types.ts";
import { CopyButton } from "./chat/copy-button.tsx";
import { MarkdownText } from "./chat/markdown.tsx";
import { Notice } from "./forms.tsx";
import { isActive, RUN_POLL_MS } from "./schedule-text.ts";
import { TraceSteps } from "./trace-steps.tsx";

/** One run's prompt, answer (as the chat renders it) and tool steps; polls until the run ends. */
export default function RunOutput(props: { wid: string; schedule: Schedule; runId: string }) {
  const { wid, schedule, runId } = props;
  const detail = useQuery({
    queryKey: ["schedule-run", wid, schedule.id, runId],
    queryFn: () => api<ScheduleRunDetail>("GET", `/api/v1/workspaces/${wid}/schedules/${schedule.id}/runs/${runId}`),
    refetchInterval: (q) => (q.state.data && isActive(q.state.data.status) ? RUN_POLL_MS : false),
  });
  if (detail.isError) return <Notice>{messageOf(detail.error)}</Notice>;
  const d = detail.data;
  if (!d) return <p className="loading">Loading…</p>;
  if (d.outputHidden) {
    return (
      <p className="hint">
        Only {schedule.createdBy.name ?? "the person who created this schedule"} can read this output.
      </p>
    );
  }
  const active = isActive(d.status);
  const out = d.output;
  const steps = Array.isArray(out?.trace) ? (out.trace as TraceStep[]) : undefined;
  return (
    <div aria-live="polite" aria-busy={active}>
      {out?.prompt ? (
        <details className="run-prompt">
          <summary>Prompt sent</summary>
          <p className="msg-text">{out.prompt}</p>
        </details>
      ) : null}
      {out?.content ? (
        <article className="msg msg-assistant" aria-label="Agent said">
          <div className="msg-markdown">
            <MarkdownText text={out.content} />
          </div>
          <TraceSteps steps={steps} />
          <div className="msg-actions">
            <CopyButton text={() => out.content} label="answer" />
          </div>
        </article>
      ) : active ? (
        <p className="msg-typing">
          <span className="spinner" aria-hidden="true" />{" "}
          {d.status === "queued" ? "Waiting to start…" : "The agent is working on it…"}
        </p>
      ) : (
        <p className="hint">There is no output for this run.</p>
      )}
    </div>
  );
}
