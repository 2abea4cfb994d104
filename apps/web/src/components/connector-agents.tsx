import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Connector } from "../api/types.ts";
import { agentsQuery } from "./agent-form.tsx";
import { knownTools } from "./connector-text.ts";
import { Notice } from "./forms.tsx";

/** Per agent: not opted in (absent), every tool (null), or only these tools. */
type Access = Record<string, string[] | null>;

const accessOf = (c: Connector): Access => Object.fromEntries(c.agents.map((a) => [a.agentId, a.tools]));

/**
 * Which agents may use a connector, and which of its tools. Agents are opted in one by one (a new
 * connector reaches nobody); a tool choice needs the tool list from a test or the allow-list.
 * Members and viewers see the same facts, read-only.
 */
export function ConnectorAgents(props: { wid: string; connector: Connector; canManage: boolean }) {
  const c = props.connector;
  const queryClient = useQueryClient();
  const agents = useQuery(agentsQuery(props.wid));
  const [access, setAccess] = useState<Access>(() => accessOf(c));
  const [announce, setAnnounce] = useState("");
  const tools = knownTools(c);
  const save = useMutation({
    mutationFn: () =>
      api<Connector>("PUT", `/api/v1/workspaces/${props.wid}/connectors/${c.id}/agents`, {
        agents: Object.entries(access).map(([agentId, t]) => ({ agentId, tools: t })),
      }),
    onSuccess: async () => {
      const n = Object.keys(access).length;
      setAnnounce(`Saved: ${n === 0 ? "no agent" : n === 1 ? "1 agent" : `${n} agents`} may use ${c.name}.`);
      await queryClient.invalidateQueries({ queryKey: ["connectors", props.wid] });
    },
  });
  const list = agents.data?.items ?? [];
  const changed = JSON.stringify(sorted(access)) !== JSON.stringify(sorted(accessOf(c)));
  const choosingWithoutTools = Object.values(access).some((t) => t !== null && t.length === 0);

  if (agents.isError) return <Notice>{messageOf(agents.error)}</Notice>;
  if (agents.isPending) return <p className="loading">Loading agents…</p>;
  if (list.length === 0) return <p className="hint">This workspace has no agents yet.</p>;

  if (!props.canManage) {
    const using = list.filter((a) => a.id in access);
    return using.length === 0 ? (
      <p>No agent uses it yet. Owners and admins choose which agents may.</p>
    ) : (
      <ul className="connector-agent-list" aria-label={`Agents using ${c.name}`}>
        {using.map((a) => (
          <li key={a.id}>
            <strong>{a.name}</strong>: {access[a.id] ? access[a.id]?.join(", ") || "no tools" : "all tools"}
          </li>
        ))}
      </ul>
    );
  }

  return (
    <form
      className="connector-agents"
      aria-label={`Agents that may use ${c.name}`}
      onSubmit={(e) => {
        e.preventDefault();
        if (!choosingWithoutTools) save.mutate();
      }}
    >
      <p className="hint">
        Tick each agent that may use its tools; the others never see them.{" "}
        {tools.length === 0
          ? "Test the connection to choose tools one by one; until then an agent gets all of them."
          : "An agent can be limited to some of the tools."}
      </p>
      {list.map((a) => {
        const on = a.id in access;
        const chosen = access[a.id];
        return (
          <div key={a.id} className="agent-access">
            <label className="check">
              <input
                type="checkbox"
                checked={on}
                onChange={(e) =>
                  setAccess(({ [a.id]: _, ...rest }) => (e.target.checked ? { ...rest, [a.id]: null } : rest))
                }
              />{" "}
              {a.name}
            </label>
            {on && tools.length > 0 ? (
              <fieldset className="agent-tools">
                <legend className="visually-hidden">Tools {a.name} may use</legend>
                <label className="check">
                  <input
                    type="radio"
                    name={`tools-${a.id}`}
                    checked={chosen === null}
                    onChange={() => setAccess((x) => ({ ...x, [a.id]: null }))}
                  />{" "}
                  All tools
                </label>
                <label className="check">
                  <input
                    type="radio"
                    name={`tools-${a.id}`}
                    checked={chosen !== null}
                    onChange={() => setAccess((x) => ({ ...x, [a.id]: [...tools] }))}
                  />{" "}
                  Only some tools
                </label>
                {chosen ? (
                  <ul className="tool-choices">
                    {tools.map((t) => (
                      <li key={t}>
                        <label className="check">
                          <input
                            type="checkbox"
                            checked={chosen.includes(t)}
                            onChange={(e) =>
                              setAccess((x) => ({
                                ...x,
                                [a.id]: e.target.checked ? [...chosen, t] : chosen.filter((n) => n !== t),
                              }))
                            }
                          />{" "}
                          <code>{t}</code>
                        </label>
                      </li>
                    ))}
                  </ul>
                ) : null}
              </fieldset>
            ) : null}
          </div>
        );
      })}
      {save.isError ? <Notice>{messageOf(save.error)}</Notice> : null}
      <div className="actions">
        <button type="submit" disabled={!changed || save.isPending || choosingWithoutTools}>
          {save.isPending ? "Saving…" : "Save agent access"}
        </button>
        {choosingWithoutTools ? (
          <small className="disabled-why">Tick at least one tool, or choose All tools.</small>
        ) : !changed ? (
          <small className="disabled-why">Nothing changed yet.</small>
        ) : null}
      </div>
      <p className="hint">
        Changes reach each agent at its next message (the workspace's gateway restarts to load them).
      </p>
      <p className="visually-hidden" role="status">
        {announce}
      </p>
    </form>
  );
}

function sorted(a: Access) {
  return Object.entries(a)
    .map(([k, v]) => [k, v ? [...v].sort() : null] as const)
    .sort(([x], [y]) => x.localeCompare(y));
}
