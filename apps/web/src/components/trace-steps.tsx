import { useState } from "react";
import type { TraceStep } from "../api/types.ts";

/**
 * What the person opened, by answer (and step): an answer streams in one
 * component and is shown again from history in another when it ends, and what
 * was open should stay open.
 */
const opened = new Set<string>();

/** A `<details>` open state that survives the answer moving from the live turn to history. */
function useOpen(key: string | null): [boolean, (open: boolean) => void] {
  const [open, setOpen] = useState(() => key !== null && opened.has(key));
  return [
    open,
    (next: boolean) => {
      setOpen(next);
      if (key === null) return;
      if (next) opened.add(key);
      else opened.delete(key);
    },
  ];
}

/** Replaces the step with the same id, or appends it: a step is sent when it starts and again when it ends. */
export function upsertStep(steps: TraceStep[], step: TraceStep): TraceStep[] {
  const i = steps.findIndex((s) => s.id === step.id);
  return i < 0 ? [...steps, step] : steps.map((s, j) => (j === i ? step : s));
}

function parsedArgs(args: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(args);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    // Truncated arguments are not valid JSON; the raw text still says something.
    return null;
  }
}

// The argument that best says what a call did, for the common tools (exec's command first).
const TELLING_ARGS = ["command", "cmd", "url", "query", "path", "file_path", "file", "pattern", "id"];

/** One line saying what the call did: the command for `exec`, else its most telling argument. */
export function argsSummary(step: Pick<TraceStep, "name" | "args">): string {
  const args = parsedArgs(step.args);
  if (!args) return step.args.replace(/\s+/g, " ").slice(0, 200);
  // OpenClaw's dispatcher (`tool_call`) nests the real call's arguments.
  const inner = args.args && typeof args.args === "object" ? (args.args as Record<string, unknown>) : args;
  for (const key of TELLING_ARGS) {
    const v = inner[key];
    if (typeof v === "string" && v.trim()) return v.replace(/\s+/g, " ").slice(0, 200);
  }
  const first = Object.values(inner).find((v) => typeof v === "string" && v.trim());
  return typeof first === "string" ? first.replace(/\s+/g, " ").slice(0, 200) : "";
}

/** The tool's name; for a call through OpenClaw's dispatcher (`tool_call`), the tool it dispatched to. */
export function toolName(step: Pick<TraceStep, "name" | "args">): string {
  if (step.name !== "tool_call") return step.name;
  const inner = parsedArgs(step.args)?.id;
  return typeof inner === "string" && inner ? inner : step.name;
}

/** "0.4 s", "12 s", "2 min 5 s". */
export function formatDuration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

const STATUS: Record<TraceStep["status"], { icon: string; text: string }> = {
  running: { icon: "", text: "running" },
  ok: { icon: "✓", text: "done" },
  error: { icon: "✗", text: "failed" },
  denied: { icon: "⊘", text: "denied" },
};

function prettyArgs(args: string): string {
  const v = parsedArgs(args);
  return v ? JSON.stringify(v, null, 2) : args;
}

function Step(props: { step: TraceStep; answerId: number | undefined }) {
  const { step } = props;
  const [open, setOpen] = useOpen(props.answerId === undefined ? null : `${props.answerId}:${step.id}`);
  const status = STATUS[step.status];
  const summary = argsSummary(step);
  const name = toolName(step);
  return (
    <li className={`trace-step trace-${step.status}`}>
      <details open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
        <summary>
          <span className="trace-status">
            {step.status === "running" ? <span className="spinner" aria-hidden="true" /> : null}
            <span aria-hidden="true">{status.icon}</span> {status.text}
          </span>{" "}
          <code className="trace-name">{name}</code> {summary ? <span className="trace-args">{summary}</span> : null}
          {step.durationMs !== undefined ? <span className="trace-time">{formatDuration(step.durationMs)}</span> : null}
        </summary>
        <div className="trace-body">
          <p className="trace-label">Arguments</p>
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable block must be reachable by keyboard */}
          <pre tabIndex={0}>{prettyArgs(step.args)}</pre>
          <p className="trace-label">Output</p>
          {step.output === undefined ? (
            <p className="hint">{step.status === "running" ? "Still running…" : "No output."}</p>
          ) : (
            // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable block must be reachable by keyboard
            <pre tabIndex={0}>{step.output || "(empty)"}</pre>
          )}
          {step.truncated ? (
            <p className="hint">Shortened: the full arguments or output were longer than Reef keeps.</p>
          ) : null}
        </div>
      </details>
    </li>
  );
}

/** The tools an answer used, as a collapsible list of steps; each step opens to show its arguments and output. */
export function TraceSteps(props: { steps: TraceStep[] | undefined; answerId?: number | undefined }) {
  const steps = props.steps ?? [];
  const [open, setOpen] = useOpen(props.answerId === undefined ? null : String(props.answerId));
  if (steps.length === 0) return null;
  const running = steps.filter((s) => s.status === "running").length;
  const n = steps.length;
  const label = running
    ? `Using ${n === 1 ? "a tool" : `${n} tools`}… (${running} running)`
    : `Used ${n === 1 ? "1 tool" : `${n} tools`}`;
  return (
    <details className="trace" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{label}</summary>
      <ol aria-label="Tools the agent used">
        {steps.map((s) => (
          <Step key={s.id} step={s} answerId={props.answerId} />
        ))}
      </ol>
    </details>
  );
}
