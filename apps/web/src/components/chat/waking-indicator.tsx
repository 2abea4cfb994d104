/** What is known about a workspace waking: since when (client clock), how long it usually takes, its place in line. */
export interface Waking {
  since: number;
  /** Seconds a start usually takes here (measured), or null when nothing was measured yet. */
  expected: number | null;
  /** Place in line while the server is at its cap of running workspaces. */
  queued: number | null;
}

/**
 * Honest progress while the workspace wakes: how long it has taken so far against how long it usually takes, never a
 * promise. A progress bar for the eye, with its value in words for screen readers.
 */
export function WakingIndicator(props: { waking: Waking; now: number }) {
  const { expected, queued } = props.waking;
  const elapsed = Math.max(0, Math.round((props.now - props.waking.since) / 1000));
  let text: string;
  if (queued !== null) text = `The server is busy: your workspace is number ${queued} in line to start…`;
  else if (expected === null) text = "Waking your workspace…";
  else if (elapsed <= expected) text = `Waking your workspace… usually about ${expected} s`;
  else text = `Waking your workspace… taking longer than the usual ${expected} s`;
  const max = expected ?? undefined;
  return (
    <div className="waking" role="status">
      <p>
        {text} <span className="waking-elapsed">{elapsed} s</span>
      </p>
      <div
        className="waking-bar"
        role="progressbar"
        aria-label="Waking your workspace"
        aria-valuemin={0}
        aria-valuemax={max}
        aria-valuenow={max === undefined ? undefined : Math.min(elapsed, max)}
        aria-valuetext={max === undefined ? `${elapsed} seconds so far` : `${elapsed} of about ${max} seconds`}
      >
        <span
          className={max === undefined || queued !== null ? "waking-fill waking-indeterminate" : "waking-fill"}
          style={
            max === undefined || queued !== null ? undefined : { width: `${Math.min(100, (elapsed / max) * 100)}%` }
          }
        />
      </div>
    </div>
  );
}
