import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { attachStream, type StreamEvent, sendMessage } from "../../api/chat-stream.ts";
import { ApiError, messageOf } from "../../api/client.ts";
import type { Approval, TraceStep } from "../../api/types.ts";
import { upsertApproval } from "../approval-card.tsx";
import { upsertStep } from "../trace-steps.tsx";
import type { TurnError } from "./chat-errors.tsx";
import type { Waking } from "./waking-indicator.tsx";

/** An answer arriving in one conversation, as this page follows it. */
export interface LiveTurn {
  /** The person's message as sent from this page; null when re-attached (it is in the stored history then). */
  user: string | null;
  /** Regenerate / edit: the stored history from this message id on is being replaced, so it is hidden. */
  replaceFrom: number | null;
  answer: string;
  waking: Waking | null;
  error: TurnError | null;
  /** The stored messages this turn shows itself (from `accepted`): the history hides them while it is live. */
  ids: number[];
  steps: TraceStep[];
  approvals: Approval[];
}

/** The last failure per answer id, kept after the turn ends: the stored message has the sentence but not the code. */
export type FailedAnswers = Record<number, TurnError>;

interface Stream {
  controller: AbortController;
  kind: "send" | "attach";
}

function emptyTurn(user: string | null, replaceFrom: number | null): LiveTurn {
  return { user, replaceFrom, answer: "", waking: null, error: null, ids: [], steps: [], approvals: [] };
}

/** Applies one stream event to the turn it belongs to. */
function reduce(t: LiveTurn, ev: StreamEvent, reattached: boolean): LiveTurn {
  switch (ev.event) {
    case "accepted":
      // Re-attached: the person's message is in the history already; only the answer is shown live.
      return {
        ...t,
        ids: reattached ? [ev.data.assistantMessageId] : [ev.data.userMessageId, ev.data.assistantMessageId],
      };
    case "runtime": {
      const data = ev.data as { state: string; position?: number; expectedSeconds?: number | null };
      if (data.state === "queued") {
        return { ...t, waking: { since: t.waking?.since ?? Date.now(), expected: null, queued: data.position ?? 1 } };
      }
      if (data.state === "starting") {
        return {
          ...t,
          waking: { since: t.waking?.since ?? Date.now(), expected: data.expectedSeconds ?? null, queued: null },
        };
      }
      return { ...t, waking: null };
    }
    case "delta": {
      const data = ev.data as { text: string; replace?: boolean };
      return { ...t, waking: null, answer: data.replace ? data.text : t.answer + data.text };
    }
    case "tool":
      return { ...t, waking: null, steps: upsertStep(t.steps, ev.data.step) };
    case "approval":
      return { ...t, waking: null, approvals: upsertApproval(t.approvals, ev.data.approval) };
    case "error": {
      const data = ev.data as { code: string; message: string; providerId?: string };
      return { ...t, waking: null, error: { code: data.code, message: data.message, providerId: data.providerId } };
    }
    default:
      return t;
  }
}

/**
 * The answers arriving in a workspace's conversations, held per conversation (session id): an answer is only ever
 * drawn into its own conversation. Only the open conversation's stream is read; leaving it closes the stream (the
 * server goes on answering) and opening it again re-attaches to what is still arriving.
 */
export function useChatTurns(opts: {
  wid: string;
  /** The open conversation (undefined: none, or a new one not created yet). */
  sid: string | undefined;
  enabled: boolean;
  /** A turn of this page's ended: approval cards it asked move under the stored answer. */
  onTurnEnd?: (answerId: number | undefined, approvals: Approval[]) => void;
}) {
  const { wid, sid, enabled } = opts;
  const queryClient = useQueryClient();
  const [turns, setTurns] = useState<Record<string, LiveTurn>>({});
  const [failed, setFailed] = useState<FailedAnswers>({});
  const [refused, setRefused] = useState<{ sid: string; message: string; text: string } | null>(null);
  const streams = useRef(new Map<string, Stream>());
  const onTurnEnd = useRef(opts.onTurnEnd);
  onTurnEnd.current = opts.onTurnEnd;

  const patch = useCallback((id: string, fn: (t: LiveTurn) => LiveTurn) => {
    setTurns((all) => {
      const t = all[id];
      return t ? { ...all, [id]: fn(t) } : all;
    });
  }, []);

  /** Reads one stream into the turn of session `id`, then lets the stored history take over. */
  const follow = useCallback(
    async (id: string, stream: Stream, run: (onEvent: (ev: StreamEvent) => void) => Promise<unknown>) => {
      let answerId: number | undefined;
      let approvals: Approval[] = [];
      let error: TurnError | null = null;
      const reattached = stream.kind === "attach";
      try {
        await run((ev) => {
          if (stream.controller.signal.aborted) return;
          if (ev.event === "accepted") answerId = ev.data.assistantMessageId;
          if (ev.event === "approval") {
            approvals = upsertApproval(approvals, ev.data.approval);
            void queryClient.invalidateQueries({ queryKey: ["approvals", wid] });
          }
          if (ev.event === "error") {
            const data = ev.data as { code: string; message: string; providerId?: string };
            error = { code: data.code, message: data.message, providerId: data.providerId };
          }
          patch(id, (t) => reduce(t, ev, reattached));
        });
      } finally {
        const mine = streams.current.get(id) === stream;
        if (mine) streams.current.delete(id);
        const failure = error as TurnError | null;
        if (answerId !== undefined && failure) setFailed((all) => ({ ...all, [answerId as number]: failure }));
        if (!stream.controller.signal.aborted) onTurnEnd.current?.(answerId, approvals);
        // The stored messages replace the live view: fetch them before it goes, so nothing blinks.
        await queryClient.invalidateQueries({ queryKey: ["messages", wid, id] });
        await queryClient.invalidateQueries({ queryKey: ["sessions", wid] });
        if (!streams.current.has(id)) {
          setTurns((all) => {
            const { [id]: _gone, ...rest } = all;
            return rest;
          });
        }
      }
    },
    [patch, queryClient, wid],
  );

  // Opening a conversation: re-attach to an answer still arriving there (after a reload, or coming back to it).
  useEffect(() => {
    if (!enabled || !sid) return;
    const id = sid;
    if (!streams.current.has(id)) {
      const stream: Stream = { controller: new AbortController(), kind: "attach" };
      streams.current.set(id, stream);
      setTurns((all) => (all[id] ? all : { ...all, [id]: emptyTurn(null, null) }));
      void follow(id, stream, (onEvent) =>
        attachStream(`/api/v1/workspaces/${wid}/sessions/${id}/stream`, onEvent, stream.controller.signal),
      ).catch(() => {});
    }
    return () => {
      // Leaving closes the stream only: the server goes on answering, and coming back re-attaches.
      const open = streams.current.get(id);
      open?.controller.abort();
      streams.current.delete(id);
      setTurns((all) => {
        const { [id]: _gone, ...rest } = all;
        return rest;
      });
    };
  }, [enabled, sid, wid, follow]);

  /** Sends `text` in session `id` (replacing the stored history from `replaceFrom` on, when given). */
  const send = useCallback(
    async (id: string, text: string, replaceFrom: number | null = null): Promise<boolean> => {
      const previous = streams.current.get(id);
      if (previous?.kind === "send") return false;
      // A re-attach that found nothing (or is still asking) gives way to the new turn.
      previous?.controller.abort();
      setRefused(null);
      const stream: Stream = { controller: new AbortController(), kind: "send" };
      streams.current.set(id, stream);
      setTurns((all) => ({ ...all, [id]: emptyTurn(text, replaceFrom) }));
      try {
        await follow(id, stream, (onEvent) =>
          sendMessage(
            `/api/v1/workspaces/${wid}/sessions/${id}/messages`,
            text,
            onEvent,
            stream.controller.signal,
            replaceFrom === null ? {} : { replaceFrom },
          ),
        );
      } catch (err) {
        if (!stream.controller.signal.aborted) {
          const message =
            err instanceof ApiError && err.code === "CONFLICT"
              ? "An answer is still arriving in this conversation. Wait for it, or stop it, then send again."
              : messageOf(err);
          setRefused({ sid: id, message, text });
          // Nothing was sent: the live view of it goes.
          setTurns((all) => {
            const { [id]: _gone, ...rest } = all;
            return rest;
          });
        }
        return false;
      }
      return true;
    },
    [follow, wid],
  );

  /** Live turn of the open conversation, if any: an empty re-attach (nothing arriving) does not count. */
  const rawTurn = sid ? turns[sid] : undefined;
  const attaching = !!sid && streams.current.get(sid)?.kind === "attach" && !rawTurn?.ids.length;
  const turn = rawTurn && (rawTurn.user !== null || rawTurn.ids.length > 0) ? rawTurn : undefined;

  return {
    turn,
    /** Still asking the server whether an answer is arriving in the open conversation. */
    attaching,
    failed,
    refused: refused && refused.sid === sid ? refused : null,
    clearRefused: () => setRefused(null),
    send,
    /** Patches the open turn (an approval decided on this page). */
    patch,
  };
}
