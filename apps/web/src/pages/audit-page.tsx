import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useParams } from "@tanstack/react-router";
import { api, messageOf } from "../api/client.ts";
import type { Member, Page, Usage } from "../api/types.ts";
import { AuditTable } from "../components/audit-table.tsx";
import { EgressRefusals } from "../components/egress-refusals.tsx";
import { Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { atLeast, useWorkspace } from "../components/session.ts";

export function AuditPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  usePageTitle("Audit trail", membership?.name);
  const isAdmin = atLeast(membership?.role, "admin");
  const members = useQuery({
    queryKey: ["members", wid],
    queryFn: () => api<Page<Member>>("GET", `/api/v1/workspaces/${wid}/members?limit=200`),
    enabled: isAdmin,
  });
  if (!isAdmin) return <Notice kind="info">Only admins and owners read the audit trail.</Notice>;
  const people = (members.data?.items ?? []).map((m) => ({ value: m.userId, label: `${m.name} (${m.email})` }));
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit trail</h1>
      <AuditTable path={`/api/v1/workspaces/${wid}/audit`} queryKey={["audit", wid]} people={people} />
    </section>
  );
}

interface Day {
  day: string;
  messages: number;
  calls: number;
  promptTokens: number;
  completionTokens: number;
}

/** Bars per day for one series, with the numbers in a table for screen readers. */
function DailyChart(props: { days: Day[]; label: string; value: (d: Day) => number }) {
  const max = Math.max(1, ...props.days.map(props.value));
  const w = 12;
  const h = 80;
  return (
    <figure className="chart">
      <figcaption>{props.label}</figcaption>
      <svg
        viewBox={`0 0 ${props.days.length * w} ${h}`}
        role="img"
        aria-label={`${props.label} per day`}
        preserveAspectRatio="none"
      >
        {props.days.map((d, i) => {
          const bar = (props.value(d) / max) * (h - 2);
          return (
            <rect key={d.day} x={i * w + 1} y={h - bar} width={w - 2} height={bar}>
              <title>{`${d.day}: ${props.value(d)}`}</title>
            </rect>
          );
        })}
      </svg>
      <small className="hint">
        {props.days[0]?.day} – {props.days.at(-1)?.day}, highest{" "}
        {max === 1 && props.days.every((d) => props.value(d) === 0) ? 0 : max}
      </small>
    </figure>
  );
}

interface LlmCall {
  id: number;
  providerName: string | null;
  model: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  firstByteMs: number | null;
  latencyMs: number;
  outcome: "ok" | "error" | "refused" | "budget" | "aborted";
  httpStatus: number | null;
  createdAt: string;
}

/** The workspace's LLM calls through Reef, newest first, background calls included. */
function RecentCalls(props: { wid: string }) {
  const calls = useInfiniteQuery({
    queryKey: ["usage-calls", props.wid],
    initialPageParam: "",
    queryFn: ({ pageParam }) => {
      const q = new URLSearchParams({ limit: "50" });
      if (pageParam) q.set("cursor", pageParam);
      return api<Page<LlmCall>>("GET", `/api/v1/workspaces/${props.wid}/usage/calls?${q}`);
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const rows = calls.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section aria-labelledby="calls-title">
      <h2 id="calls-title">Recent LLM calls</h2>
      {calls.isError ? <Notice>{messageOf(calls.error)}</Notice> : null}
      <table className="table">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Provider</th>
            <th scope="col">Model</th>
            <th scope="col">API</th>
            <th scope="col">Tokens</th>
            <th scope="col">First byte</th>
            <th scope="col">Total</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((c) => (
            <tr key={c.id}>
              <td>{new Date(c.createdAt).toLocaleString()}</td>
              <td>{c.providerName ?? <span className="hint">removed</span>}</td>
              <td>{c.model}</td>
              <td>{c.endpoint}</td>
              <td>
                {c.promptTokens} + {c.completionTokens}
              </td>
              <td>{c.firstByteMs === null ? "" : `${c.firstByteMs} ms`}</td>
              <td>{c.latencyMs} ms</td>
              <td className={c.outcome === "ok" ? "" : "field-error"}>
                {c.outcome === "budget" ? "over budget" : c.outcome}
                {c.httpStatus && c.outcome !== "ok" ? <span className="hint"> {c.httpStatus}</span> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && calls.isSuccess ? <p className="hint">No LLM calls yet.</p> : null}
      {calls.hasNextPage ? (
        <button type="button" onClick={() => calls.fetchNextPage()} disabled={calls.isFetchingNextPage}>
          Load more
        </button>
      ) : null}
    </section>
  );
}

export function UsagePage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  usePageTitle("Usage", useWorkspace(wid)?.name);
  const usage = useQuery({
    queryKey: ["usage", wid],
    queryFn: () => api<Usage>("GET", `/api/v1/workspaces/${wid}/usage`),
  });
  const u = usage.data;
  const daily = useQuery({
    queryKey: ["usage-daily", wid],
    queryFn: () => api<{ items: Day[] }>("GET", `/api/v1/workspaces/${wid}/usage/daily?days=30`),
  });
  const bar = (used: number, max: number | null) =>
    max ? (
      <progress max={max} value={Math.min(used, max)} aria-label={`${used} of ${max}`} />
    ) : (
      <span className="hint">no limit</span>
    );
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage this month</h1>
      {u ? (
        <dl className="card">
          <dt>Month</dt>
          <dd>{u.month.slice(0, 7)}</dd>
          <dt>Messages</dt>
          <dd>
            {u.messages} {bar(u.messages, u.limits.messages)}
          </dd>
          <dt>Tokens</dt>
          <dd>
            {u.promptTokens + u.completionTokens} ({u.promptTokens} prompt, {u.completionTokens} completion){" "}
            {bar(u.promptTokens + u.completionTokens, u.limits.tokens)}
          </dd>
        </dl>
      ) : null}
      {daily.data ? (
        <div className="charts">
          <DailyChart days={daily.data.items} label="Messages" value={(d) => d.messages} />
          <DailyChart days={daily.data.items} label="LLM calls" value={(d) => d.calls} />
          <DailyChart days={daily.data.items} label="Tokens" value={(d) => d.promptTokens + d.completionTokens} />
        </div>
      ) : null}
      <RecentCalls wid={wid} />
      <EgressRefusals wid={wid} />
    </section>
  );
}
