import { traceStepSchema } from "@reef/contracts";
import type { GatewayToolStep } from "@reef/runtime";
import { z } from "zod";

/** One tool call of an answer, as streamed and stored (see `traceStepSchema`). */
export type TraceStep = z.infer<typeof traceStepSchema>;

/**
 * How much of a call's arguments, and of what it returned, an answer keeps:
 * enough to see what ran and how it went, not a copy of every file it read.
 */
export const TRACE_FIELD_MAX = 4000;
/** Steps kept per answer; an agent looping over a tool stops being recorded after this many. */
export const TRACE_MAX_STEPS = 200;

const STOPPED = "The answer stopped before this step finished.";

function cut(text: string): { text: string; cut: boolean } {
  if (text.length <= TRACE_FIELD_MAX) return { text, cut: false };
  return { text: `${text.slice(0, TRACE_FIELD_MAX)}…`, cut: true };
}

function argsText(args: unknown): string {
  if (args === undefined) return "";
  if (typeof args === "string") return args;
  try {
    return JSON.stringify(args) ?? "";
  } catch {
    return String(args);
  }
}

/**
 * The execution trace of one answer being written: tool calls in the order
 * they started, each updated in place when it ends.
 */
export function createTraceRecorder() {
  const steps = new Map<string, TraceStep>();
  return {
    /**
     * Records a step's start or end. @returns the step as it is stored and
     * streamed, or null when the trace is full.
     */
    record(s: GatewayToolStep): TraceStep | null {
      if (!steps.has(s.id) && steps.size >= TRACE_MAX_STEPS) return null;
      const args = cut(argsText(s.args));
      const output = s.output === undefined ? undefined : cut(s.output);
      const step: TraceStep = {
        id: s.id,
        name: s.name,
        args: args.text,
        status: s.status,
        ...(output ? { output: output.text } : {}),
        ...(args.cut || output?.cut ? { truncated: true } : {}),
        startedAt: new Date(s.startedAtMs).toISOString(),
        ...(s.endedAtMs !== undefined ? { durationMs: Math.max(0, Math.round(s.endedAtMs - s.startedAtMs)) } : {}),
      };
      steps.set(s.id, step);
      return step;
    },

    get isEmpty() {
      return steps.size === 0;
    },

    /** Steps still running when the answer ended did not finish: they are stored as such. */
    settle() {
      for (const [id, step] of steps) {
        if (step.status === "running") steps.set(id, { ...step, status: "error", output: STOPPED });
      }
    },

    /** The trace as stored (JSON), or null when no tool ran. */
    json(): string | null {
      return steps.size ? JSON.stringify([...steps.values()]) : null;
    },
  };
}

const storedTrace = z.array(traceStepSchema);

/** A stored trace (opened) as steps; an unreadable one shows as none rather than failing the history. */
export function parseTrace(json: string | null): TraceStep[] {
  if (!json) return [];
  try {
    const parsed = storedTrace.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}
