import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams } from "@tanstack/react-router";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Agent, AgentImpact } from "../api/types.ts";
import { AgentForm, agentsQuery, providersQuery } from "../components/agent-form.tsx";
import { useConfirm } from "../components/confirm-dialog.tsx";
import { AgentEditForm } from "../components/edit-forms.tsx";
import { ExecPolicySummary } from "../components/exec-policy.tsx";
import { focusAfterRemoval, focusLater, useFocusOnMount } from "../components/focus.ts";
import { Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { atLeast, useMe, useWorkspace } from "../components/session.ts";

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `/w/$wid/agents`: the agent gallery (description, starter prompts, Chat), and managing agents. */
export function AgentsPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  usePageTitle("Agents", membership?.name);
  const me = useMe();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const { confirm, dialog } = useConfirm();
  const agents = useQuery(agentsQuery(wid));
  const providers = useQuery(providersQuery(wid));
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  // A form that opens takes focus; when it closes, focus goes back to the button that opened it.
  const focusFirstField = useFocusOnMount<HTMLDivElement>("input, select, textarea");
  const canCreate = atLeast(membership?.role, "member");
  const canChat = atLeast(membership?.role, "member");
  // Granting tools beyond messaging is for admins and owners (the server checks agents:manage).
  const canGrantTools = atLeast(membership?.role, "admin");
  const mayManage = (a: Agent) =>
    a.personal
      ? a.createdBy === me.data?.user.id
      : atLeast(membership?.role, "admin") || a.createdBy === me.data?.user.id;
  const providerName = (id: string) => providers.data?.items.find((p) => p.id === id)?.name ?? "a provider";
  const chat = useMutation({
    mutationFn: (agentId: string) => api<{ id: string }>("POST", `/api/v1/workspaces/${wid}/sessions`, { agentId }),
    onSuccess: async (s) => {
      await queryClient.invalidateQueries({ queryKey: ["sessions", wid] });
      await navigate({ to: "/w/$wid/chat", params: { wid }, search: { session: s.id } });
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => api("DELETE", `/api/v1/workspaces/${wid}/agents/${id}`),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["agents", wid] }),
  });

  async function deleteAgent(a: Agent, card: Element | null) {
    let impact: AgentImpact | undefined;
    try {
      impact = await api<AgentImpact>("GET", `/api/v1/workspaces/${wid}/agents/${a.id}/impact`);
    } catch {
      impact = undefined;
    }
    const what = impact
      ? impact.sessions === 0
        ? "It has no conversations."
        : `This deletes ${plural(impact.sessions, "conversation")} of ${plural(impact.people, "person", "people")} with it.`
      : "This deletes every conversation anyone had with it.";
    const ok = await confirm({
      title: `Delete the agent ${a.name}?`,
      body: (
        <p>
          {what} This cannot be undone.
          {a.personal ? "" : " The workspace restarts to drop it: people chatting now wait while it starts again."}
        </p>
      ),
      confirmLabel: "Delete agent",
    });
    if (!ok) return;
    // The card goes away with its Delete button: focus the next card's first control, else "New agent".
    const refocus = focusAfterRemoval(card, "button", () => document.getElementById("new-agent"));
    remove.mutate(a.id, { onSuccess: refocus });
  }

  return (
    <section aria-labelledby="agents-title">
      <div className="page-head">
        <h1 id="agents-title">Agents</h1>
        {canCreate && !adding ? (
          <button type="button" id="new-agent" onClick={() => setAdding(true)}>
            New agent
          </button>
        ) : null}
      </div>
      {adding ? (
        <div ref={focusFirstField}>
          <AgentForm
            wid={wid}
            canGrantTools={canGrantTools}
            onCreated={() => {
              setAdding(false);
              focusLater(() => document.getElementById("new-agent"));
            }}
          />
        </div>
      ) : null}
      {agents.isError ? <Notice>{messageOf(agents.error)}</Notice> : null}
      {chat.isError ? <Notice>{messageOf(chat.error)}</Notice> : null}
      {remove.isError ? <Notice>{messageOf(remove.error)}</Notice> : null}
      {!canChat && membership ? (
        <Notice kind="info">
          You are a viewer here: you can see the agents but not chat. Ask an admin to make you a member.
        </Notice>
      ) : null}
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
      <ul className="gallery" aria-label="Agents">
        {agents.data?.items.map((a) => (
          <li key={a.id} className="card agent-card">
            <h2>
              {a.name} {a.personal ? <span className="badge">personal</span> : null}
            </h2>
            {a.description ? <p className="agent-description">{a.description}</p> : null}
            {a.starterPrompts.length ? (
              <ul className="agent-starters" aria-label={`Starter prompts of ${a.name}`}>
                {a.starterPrompts.map((p) => (
                  <li key={p}>{p}</li>
                ))}
              </ul>
            ) : null}
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
            {editing === a.id ? (
              <div ref={focusFirstField}>
                <AgentEditForm
                  wid={wid}
                  agent={a}
                  provider={providers.data?.items.find((p) => p.id === a.providerId)}
                  canGrantTools={canGrantTools}
                  onDone={() => {
                    setEditing(null);
                    focusLater(() => document.getElementById(`edit-agent-${a.id}`));
                  }}
                />
              </div>
            ) : null}
            {editing !== a.id ? (
              <div className="actions">
                {canChat ? (
                  <button
                    type="button"
                    aria-label={`Chat with ${a.name}`}
                    onClick={() => chat.mutate(a.id)}
                    disabled={chat.isPending}
                  >
                    Chat
                  </button>
                ) : null}
                {mayManage(a) ? (
                  <>
                    <button
                      type="button"
                      id={`edit-agent-${a.id}`}
                      className="secondary"
                      onClick={() => setEditing(a.id)}
                    >
                      Edit
                    </button>
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Delete ${a.name}`}
                      onClick={(e) => void deleteAgent(a, e.currentTarget.closest("li"))}
                    >
                      Delete
                    </button>
                  </>
                ) : null}
              </div>
            ) : null}
          </li>
        ))}
      </ul>
      {dialog}
    </section>
  );
}
