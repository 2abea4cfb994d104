import type { ApprovalView } from "../approvals/approval-relay.ts";
import type { TraceStep } from "./turn-trace.ts";

/** What a client receives while an answer streams. */
export type ChatEvent =
  /** The workspace wakes; `expectedSeconds`: how long a start usually takes here (null: not measured yet). */
  | { type: "runtime"; state: "starting"; expectedSeconds?: number | null }
  | { type: "runtime"; state: "running" }
  /** The server is at its cap of running workspaces: this one waits in line (1: next). */
  | { type: "runtime"; state: "queued"; position: number }
  /** More of the answer; `replace`: the answer so far is this text instead (the agent's runtime rewrote it). */
  | { type: "delta"; text: string; replace?: true }
  /** A tool call of the agent's: sent when it starts and again when it ends (same `step.id`). */
  | { type: "tool"; step: TraceStep }
  /** A command waiting for a person's approval: sent when requested and again when decided or expired. */
  | { type: "approval"; approval: ApprovalView }
  | { type: "usage"; promptTokens: number; completionTokens: number }
  | { type: "done"; messageId: number; status: "complete" | "aborted" }
  /** `code`: one of CHAT_ERROR_CODES; `providerId` when a provider is at fault. */
  | { type: "error"; messageId: number; code: string; message: string; providerId?: string };

/** Why a running turn was stopped: a person pressed Stop, or this Reef is shutting down. */
export type StopReason = "stop" | "interrupt";

/** The answer a subscriber follows: its ids, and its events (state so far first when attaching late). */
export interface TurnSubscription {
  userMessageId: number;
  assistantMessageId: number;
  events: AsyncIterable<ChatEvent>;
  /** Stops following (the client went away); the turn itself goes on. */
  close(): void;
}

interface LiveTurn {
  userMessageId: number;
  assistantMessageId: number;
  controller: AbortController;
  text: string;
  steps: Map<string, TraceStep>;
  approvals: Map<string, ApprovalView>;
  runtime: ChatEvent | null;
  subscribers: Set<Queue>;
  ended: Promise<void>;
}

/** An unbounded event queue for one subscriber (events are small; a slow reader only delays itself). */
class Queue {
  private items: ChatEvent[] = [];
  private wake: (() => void) | undefined;
  closed = false;
  push(ev: ChatEvent) {
    if (this.closed) return;
    this.items.push(ev);
    this.wake?.();
  }
  close() {
    this.closed = true;
    this.wake?.();
  }
  async *drain(): AsyncGenerator<ChatEvent> {
    for (;;) {
      const next = this.items.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}

function subscription(turn: LiveTurn, queue: Queue): TurnSubscription {
  turn.subscribers.add(queue);
  return {
    userMessageId: turn.userMessageId,
    assistantMessageId: turn.assistantMessageId,
    events: queue.drain(),
    close: () => {
      turn.subscribers.delete(queue);
      queue.close();
    },
  };
}

/**
 * The turns running in this process, by session. A turn runs detached from any
 * HTTP connection: its events update a buffered state (text so far, tool steps,
 * approvals, a runtime still waking) and fan out to whoever follows it, so a
 * client that went away can re-attach and a closed tab never stops an answer.
 * Only {@link stop} (Stop, or shutdown) ends one early.
 */
export function createTurnRegistry(log?: { warn(obj: object, msg: string): void }) {
  const turns = new Map<string, LiveTurn>();

  function apply(turn: LiveTurn, ev: ChatEvent) {
    if (ev.type === "delta") turn.text = ev.replace ? ev.text : turn.text + ev.text;
    else if (ev.type === "tool") turn.steps.set(ev.step.id, ev.step);
    else if (ev.type === "approval") turn.approvals.set(ev.approval.id, ev.approval);
    if (ev.type === "runtime") turn.runtime = ev.state === "running" ? null : ev;
    else if (ev.type === "delta" || ev.type === "tool") turn.runtime = null;
  }

  return {
    has(sessionId: string): boolean {
      return turns.has(sessionId);
    },

    /**
     * Runs a turn detached from the caller, subscribing the caller first so it
     * misses nothing. `run` gets the turn's own abort signal (see {@link stop}).
     */
    start(
      sessionId: string,
      ids: { userMessageId: number; assistantMessageId: number },
      run: (signal: AbortSignal) => AsyncIterable<ChatEvent>,
    ): TurnSubscription {
      const controller = new AbortController();
      let ended!: () => void;
      const turn: LiveTurn = {
        ...ids,
        controller,
        text: "",
        steps: new Map(),
        approvals: new Map(),
        runtime: null,
        subscribers: new Set(),
        ended: new Promise<void>((resolve) => {
          ended = resolve;
        }),
      };
      turns.set(sessionId, turn);
      const first = subscription(turn, new Queue());
      void (async () => {
        try {
          for await (const ev of run(controller.signal)) {
            apply(turn, ev);
            for (const q of turn.subscribers) q.push(ev);
          }
        } catch (err) {
          log?.warn({ err, sessionId }, "a chat turn failed outside its own error handling");
        } finally {
          if (turns.get(sessionId) === turn) turns.delete(sessionId);
          for (const q of turn.subscribers) q.close();
          turn.subscribers.clear();
          ended();
        }
      })();
      return first;
    },

    /**
     * Follows the turn running in `sessionId`: its state so far (the whole text
     * as one replacing delta, each tool step and approval, a runtime still
     * waking), then live events until it ends. Undefined when none runs here.
     */
    attach(sessionId: string): TurnSubscription | undefined {
      const turn = turns.get(sessionId);
      if (!turn) return undefined;
      const queue = new Queue();
      if (turn.runtime) queue.push(turn.runtime);
      if (turn.text) queue.push({ type: "delta", text: turn.text, replace: true });
      for (const step of turn.steps.values()) queue.push({ type: "tool", step });
      for (const approval of turn.approvals.values()) queue.push({ type: "approval", approval });
      return subscription(turn, queue);
    },

    /** Stops the session's turn. @returns whether one was running here. */
    stop(sessionId: string, reason: StopReason): boolean {
      const turn = turns.get(sessionId);
      if (!turn) return false;
      turn.controller.abort(reason);
      return true;
    },

    /** How many turns run in this process. */
    running(): number {
      return turns.size;
    },

    /** Shutdown: every running turn ends `interrupted` (keeping its text); resolves once all are stored. */
    async interruptAll(): Promise<void> {
      const all = [...turns.values()];
      for (const t of all) t.controller.abort("interrupt" satisfies StopReason);
      await Promise.all(all.map((t) => t.ended));
    },
  };
}

export type TurnRegistry = ReturnType<typeof createTurnRegistry>;
