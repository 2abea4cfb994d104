import type { JsonObject, RuntimeDriver, RuntimeHandle, RuntimeSpec, RuntimeStatus } from "@reef/runtime";

/** A one-shot pause: the next call of the paused method waits at it until `release()`. */
export interface Pause {
  /** Resolves once a call has reached the pause. */
  reached: Promise<void>;
  release(): void;
}

function pause(): Pause & { wait(): Promise<void> } {
  let arrive!: () => void;
  let go!: () => void;
  const reached = new Promise<void>((r) => {
    arrive = r;
  });
  const released = new Promise<void>((r) => {
    go = r;
  });
  return {
    reached,
    release: go,
    async wait() {
      arrive();
      await released;
    },
  };
}

/**
 * An in-memory RuntimeDriver for testing the manager's decisions (claims,
 * idle stop, crash handling) without waiting 10 s per gateway. The real drivers
 * are tested against the same contract in packages/runtime.
 */
export class FakeDriver implements RuntimeDriver {
  readonly kind = "fake";
  starts: RuntimeSpec[] = [];
  stops = 0;
  readonly live = new Map<string, { alive: boolean; code: number | null; paused?: boolean }>();
  pauses = 0;
  resumes = 0;
  startDelayMs: number;
  failStarts = 0;

  constructor(opts: { startDelayMs?: number } = {}) {
    this.startDelayMs = opts.startDelayMs ?? 50;
  }

  private pausedPoll: ReturnType<typeof pause> | undefined;
  private pausedStart: ReturnType<typeof pause> | undefined;

  /** The next poll stops before answering until released (it then reports what it sees at release). */
  pauseNextPoll(): Pause {
    this.pausedPoll = pause();
    return this.pausedPoll;
  }

  /** The next start stops after it is counted, before the gateway exists, until released. */
  pauseNextStart(): Pause {
    this.pausedStart = pause();
    return this.pausedStart;
  }

  async start(spec: RuntimeSpec, signal: AbortSignal): Promise<{ endpoint: URL; state: JsonObject }> {
    this.starts.push(spec);
    const n = this.starts.length;
    const paused = this.pausedStart;
    this.pausedStart = undefined;
    await paused?.wait();
    await new Promise((r) => setTimeout(r, this.startDelayMs));
    signal.throwIfAborted();
    if (this.failStarts > 0) {
      this.failStarts--;
      throw new Error("gateway exited with code 78 before it was ready");
    }
    const id = `rt-${n}`;
    this.live.set(id, { alive: true, code: null });
    return { endpoint: new URL(`http://127.0.0.1:${20_000 + n}`), state: { id } };
  }

  async poll(handle: RuntimeHandle): Promise<RuntimeStatus> {
    const paused = this.pausedPoll;
    this.pausedPoll = undefined;
    await paused?.wait();
    const rt = this.live.get(String(handle.state.id));
    if (rt?.alive) return { status: rt.paused ? "paused" : "running" };
    return { status: "exited", code: rt?.code ?? null };
  }

  async pause(handle: RuntimeHandle): Promise<void> {
    const rt = this.live.get(String(handle.state.id));
    if (!rt?.alive) throw new Error("the gateway is gone");
    if (!rt.paused) this.pauses++;
    rt.paused = true;
  }

  async resume(handle: RuntimeHandle): Promise<void> {
    const rt = this.live.get(String(handle.state.id));
    if (!rt?.alive) throw new Error("the gateway exited while paused");
    if (rt.paused) this.resumes++;
    rt.paused = false;
  }

  /** What `reclaim` reports; undefined: the host has no swap. */
  swap: { before: number; after: number } | undefined = { before: 1_000_000_000, after: 250_000_000 };

  async reclaim(handle: RuntimeHandle): Promise<{ before: number; after: number } | undefined> {
    if (!this.live.get(String(handle.state.id))?.paused) return undefined;
    return this.swap;
  }

  /** Whether the runtime is paused now. */
  isPaused(handle: { state: JsonObject }): boolean {
    return this.live.get(String(handle.state.id))?.paused === true;
  }

  async stop(handle: RuntimeHandle): Promise<void> {
    const rt = this.live.get(String(handle.state.id));
    if (rt?.alive) {
      rt.alive = false;
      rt.paused = false;
      this.stops++;
    }
  }

  async destroy(handle: RuntimeHandle): Promise<void> {
    await this.stop(handle);
    this.live.delete(String(handle.state.id));
  }

  /** Resident memory each runtime reports, by handle id. */
  readonly rss = new Map<string, number>();

  async stats(handle: RuntimeHandle): Promise<{ rssBytes: number } | undefined> {
    const rss = this.rss.get(String(handle.state.id));
    return rss === undefined ? undefined : { rssBytes: rss };
  }

  /** Simulates the gateway dying on its own. */
  crash(handle: { state: JsonObject }, code = 137): void {
    const rt = this.live.get(String(handle.state.id));
    if (rt) Object.assign(rt, { alive: false, code });
  }
}
