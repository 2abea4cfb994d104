import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "@tanstack/react-router";
import { useState } from "react";
import { messageOf } from "../api/client.ts";
import type { Agent } from "../api/types.ts";
import { AgentForm, agentsQuery, providersQuery } from "../components/agent-form.tsx";
import { AgentEditForm } from "../components/edit-forms.tsx";
import { ExecPolicySummary } from "../components/exec-policy.tsx";
import { Notice } from "../components/forms.tsx";
import { atLeast, useMe, useWorkspace } from "../components/session.ts";
import { DeleteButton } from "./providers-page.tsx";

export function AgentsPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  const me = useMe();
  const agents = useQuery(agentsQuery(wid));
  const providers = useQuery(providersQuery(wid));
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const canCreate = atLeast(membership?.role, "member");
  // Granting tools beyond messaging is for admins and owners (the server checks agents:manage).
  const canGrantTools = atLeast(membership?.role, "admin");
  const mayManage = (a: Agent) =>
    a.personal
      ? a.createdBy === me.data?.user.id
      : atLeast(membership?.role, "admin") || a.createdBy === me.data?.user.id;
  const providerName = (id: string) => providers.data?.items.find((p) => p.id === id)?.name ?? "a provider";
  return (
    <section aria-labelledby="agents-title">
      <div className="page-head">
        <h1 id="agents-title">Agents</h1>
        {canCreate && !adding ? (
          <button type="button" onClick={() => setAdding(true)}>
            New agent
          </button>
        ) : null}
      </div>
      {adding ? <AgentForm wid={wid} canGrantTools={canGrantTools} onCreated={() => setAdding(false)} /> : null}
      {agents.isError ? <Notice>{messageOf(agents.error)}</Notice> : null}
      {agents.data?.items.length === 0 ? (
        <p>
          No agents yet.{" "}
          {canCreate ? (
            <Link to="/w/$wid/setup" params={{ wid }}>
              Set one up
            </Link>
          ) : null}
        </p>
      ) : null}
      <ul className="cards">
        {agents.data?.items.map((a) => (
          <li key={a.id} className="card">
            <h2>
              {a.name} {a.personal ? <span className="badge">personal</span> : null}
            </h2>
            <p className="hint">
              {a.model} on {providerName(a.providerId)}
              {a.tools.length ? ` · tools: ${a.tools.join(", ")}` : ""}
            </p>
            {a.toolsBlocked.map((b) => (
              <Notice key={b.tool} kind="info">
                {`${b.tool[0]?.toUpperCase()}${b.tool.slice(1)}`} is granted but blocked: {b.reason}
              </Notice>
            ))}
            {a.tools.includes("shell") && editing !== a.id ? <ExecPolicySummary value={a} /> : null}
            {a.instructions ? <p className="instructions">{a.instructions}</p> : null}
            {editing === a.id ? (
              <AgentEditForm
                wid={wid}
                agent={a}
                provider={providers.data?.items.find((p) => p.id === a.providerId)}
                canGrantTools={canGrantTools}
                onDone={() => setEditing(null)}
              />
            ) : null}
            {mayManage(a) && editing !== a.id ? (
              <div className="actions">
                <button type="button" className="secondary" onClick={() => setEditing(a.id)}>
                  Edit
                </button>
                <DeleteButton
                  what={`agent ${a.name} and its chats`}
                  path={`/api/v1/workspaces/${wid}/agents/${a.id}`}
                  queryKey={["agents", wid]}
                />
              </div>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
