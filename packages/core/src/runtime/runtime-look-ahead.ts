import type { RequestContext } from "../shared/context.ts";
import type { RuntimeRow } from "./runtime-rows.ts";
import { type RuntimeConnection, type RuntimeView, toRuntimeView } from "./runtime-view.ts";

/** A look-ahead wake found the gateway not running: it leaves starting one to the caller. */
export class NotRunning extends Error {}

/**
 * A workspace's runtime as a look-ahead found it under its row lock, and, when
 * it was running (or paused), the connection being readied.
 */
export interface RuntimeAhead {
  view: RuntimeView;
  /** `undefined` until the connection is ready; a failed one is left to the caller's own wake. */
  connection: () => RuntimeConnection | undefined;
}

/** A wake under way for a workspace; `probe`: a look-ahead's, which may end in {@link NotRunning}. */
export interface InflightWake {
  promise: Promise<RuntimeConnection>;
  waiters: Set<(position: number) => void>;
  probe?: true;
}

/**
 * The runtime manager's look-ahead, given its wake: `wake` with a probe readies
 * only a running (or paused) gateway and throws {@link NotRunning} otherwise.
 */
export function createLookAhead(deps: {
  inflight: Map<string, InflightWake>;
  wake: (
    ctx: RequestContext,
    workspaceId: string,
    waiters: Set<(position: number) => void>,
    probe: (row: RuntimeRow) => void,
  ) => Promise<RuntimeConnection>;
  view: (workspaceId: string) => Promise<RuntimeView>;
  medianStartMs: () => Promise<number | null>;
}) {
  const { inflight } = deps;
  /**
   * Readies a running (or paused) gateway as `ensureRunning` would (one wake transaction, resuming or
   * restarting it as needed) but never starts a stopped one, which is left to an accepted message with
   * its progress. Resolves once the row is read, with the connection to follow; undefined if the row
   * could not be read.
   */
  return function readyIfRunning(ctx: RequestContext, workspaceId: string): Promise<RuntimeAhead | undefined> {
    const under = inflight.get(workspaceId);
    if (under) {
      // A wake already under way (another message, an opened chat): join it.
      let joined: RuntimeConnection | undefined;
      under.promise.then((c) => (joined = c)).catch(() => {});
      return deps.view(workspaceId).then(
        (view) => ({ view, connection: () => joined }),
        () => undefined,
      );
    }
    return new Promise((resolve) => {
      let ready: RuntimeConnection | undefined;
      // Settles once the row is read (a workspace never started also waits for the platform's median start).
      let viewed: Promise<void> | undefined;
      const waiters = new Set<(position: number) => void>();
      const promise = deps
        .wake(ctx, workspaceId, waiters, (row) => {
          const view = (median: number | null) =>
            resolve({ view: toRuntimeView(row, median), connection: () => ready });
          viewed ??=
            row.lastStartMs != null ? Promise.resolve(view(null)) : deps.medianStartMs().then(view, () => view(null));
        })
        .finally(() => inflight.delete(workspaceId));
      inflight.set(workspaceId, { promise, waiters, probe: true });
      promise.then(
        (c) => {
          ready = c;
        },
        // Not running, or failed: the turn's own wake starts it (or reports why), with its progress.
        () => void (viewed ?? Promise.resolve()).then(() => resolve(undefined)),
      );
    });
  };
}
