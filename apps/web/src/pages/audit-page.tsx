import { useQuery } from "@tanstack/react-query";
import { useParams } from "@tanstack/react-router";
import { api } from "../api/client.ts";
import type { Usage } from "../api/types.ts";
import { AuditTable } from "../components/audit-table.tsx";
import { Notice } from "../components/forms.tsx";
import { atLeast, useWorkspace } from "../components/session.ts";

export function AuditPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  if (!atLeast(membership?.role, "admin"))
    return <Notice kind="info">Only admins and owners read the audit trail.</Notice>;
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit trail</h1>
      <AuditTable path={`/api/v1/workspaces/${wid}/audit`} queryKey={["audit", wid]} />
    </section>
  );
}

export function UsagePage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const usage = useQuery({
    queryKey: ["usage", wid],
    queryFn: () => api<Usage>("GET", `/api/v1/workspaces/${wid}/usage`),
  });
  const u = usage.data;
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
    </section>
  );
}
