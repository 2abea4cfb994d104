import type { agentToolsSchema } from "@reef/contracts";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import type { z } from "zod";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { Agent, Page, Provider } from "../api/types.ts";
import { ExecPolicyFields, type ExecSettings } from "./exec-policy.tsx";
import { Field, Notice, Select } from "./forms.tsx";

export const providersQuery = (wid: string) => ({
  queryKey: ["providers", wid],
  queryFn: () => api<Page<Provider>>("GET", `/api/v1/workspaces/${wid}/providers?limit=200`),
});
export const agentsQuery = (wid: string) => ({
  queryKey: ["agents", wid],
  queryFn: () => api<Page<Agent>>("GET", `/api/v1/workspaces/${wid}/agents?limit=200`),
});

type Tool = Agent["tools"][number];
const TOOLS: { value: Tool; label: string }[] = [
  { value: "web", label: "Web: search and read web pages" },
  { value: "files", label: "Files: read and write files in the agent's own folder" },
  { value: "shell", label: "Shell: run commands in the workspace's runtime (only for agents you trust)" },
];

/** The tools admins may grant in a workspace now, and why not the others (the operator's list, the sandbox). */
export const agentToolsQuery = (wid: string) => ({
  queryKey: ["agent-tools", wid],
  queryFn: () => api<z.infer<typeof agentToolsSchema>>("GET", `/api/v1/workspaces/${wid}/agent-tools`),
});

/**
 * What an agent may do beyond talking: admins and owners grant it, deliberately.
 * Every agent starts with none. A tool the operator does not allow cannot be
 * ticked; one granted before the operator disallowed it stays ticked, with why
 * the agent cannot use it, and can be unticked.
 */
export function ToolGrants(props: {
  wid: string;
  value: Tool[];
  onChange: (tools: Tool[]) => void;
  /** The agent's granted tools it cannot use now (editing an agent). */
  blocked?: Agent["toolsBlocked"];
}) {
  const available = useQuery(agentToolsQuery(props.wid));
  const toggle = (t: Tool, on: boolean) =>
    props.onChange(on ? [...props.value, t] : props.value.filter((x) => x !== t));
  return (
    <fieldset className="field">
      <legend>Tools (beyond answering messages)</legend>
      {TOOLS.map((t) => {
        const checked = props.value.includes(t.value);
        const unavailable = available.data?.unavailable.find((u) => u.tool === t.value);
        const blocked = props.blocked?.find((b) => b.tool === t.value);
        return (
          <div key={t.value}>
            <label className="check">
              <input
                type="checkbox"
                name="tools"
                value={t.value}
                checked={checked}
                disabled={!checked && unavailable !== undefined}
                onChange={(e) => toggle(t.value, e.target.checked)}
              />{" "}
              {t.label}
            </label>
            {checked && blocked ? (
              <Notice kind="info">Granted, but this agent cannot use it now: {blocked.reason}</Notice>
            ) : !checked && unavailable ? (
              <small className="hint">{unavailable.reason}</small>
            ) : null}
          </div>
        );
      })}
      <small className="hint">Changing tools restarts the workspace's runtime before the next message.</small>
    </fieldset>
  );
}

/** The agent gallery's fields: what the agent is for, and suggested first messages (one a line). */
export function GalleryFields(props: {
  idPrefix: string;
  description: string;
  onDescription: (v: string) => void;
  starters: string;
  onStarters: (v: string) => void;
  errors: Record<string, string>;
}) {
  return (
    <>
      <div className="field">
        <label htmlFor={`${props.idPrefix}-description`}>Description (shown in the agent gallery)</label>
        <textarea
          id={`${props.idPrefix}-description`}
          rows={2}
          maxLength={500}
          placeholder="Answers questions about our handbook."
          value={props.description}
          onChange={(e) => props.onDescription(e.target.value)}
        />
        {props.errors.description ? <small className="field-error">{props.errors.description}</small> : null}
      </div>
      <div className="field">
        <label htmlFor={`${props.idPrefix}-starters`}>Starter prompts (one a line, up to 6)</label>
        <textarea
          id={`${props.idPrefix}-starters`}
          rows={3}
          placeholder={"Summarise this text\nDraft a polite reply"}
          value={props.starters}
          onChange={(e) => props.onStarters(e.target.value)}
        />
        {props.errors.starterPrompts ? <small className="field-error">{props.errors.starterPrompts}</small> : null}
      </div>
    </>
  );
}

/** Starter prompts as typed (one a line) to the list the API takes. */
export const startersOf = (text: string) =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

/** Creates an agent on one of the workspace's providers, choosing among the provider's models. */
export function AgentForm(props: { wid: string; canGrantTools?: boolean; onCreated: (a: Agent) => void }) {
  const queryClient = useQueryClient();
  const providers = useQuery(providersQuery(props.wid));
  const list = providers.data?.items ?? [];
  const [providerId, setProviderId] = useState("");
  const [model, setModel] = useState("");
  const [name, setName] = useState("");
  const [instructions, setInstructions] = useState("");
  const [description, setDescription] = useState("");
  const [starters, setStarters] = useState("");
  const [tools, setTools] = useState<Tool[]>([]);
  const [exec, setExec] = useState<ExecSettings>({ execPolicy: "ask", execAllowlist: [] });
  const provider = list.find((p) => p.id === providerId) ?? list[0];
  const models = provider?.models ?? [];
  const chosenModel = model || models[0] || "";
  const create = useMutation({
    mutationFn: () =>
      api<Agent>("POST", `/api/v1/workspaces/${props.wid}/agents`, {
        name: name.trim() || "Assistant",
        providerId: provider?.id,
        model: chosenModel,
        ...(instructions.trim() ? { instructions } : {}),
        ...(description.trim() ? { description } : {}),
        ...(startersOf(starters).length ? { starterPrompts: startersOf(starters) } : {}),
        ...(tools.length ? { tools } : {}),
        ...(tools.includes("shell") ? exec : {}),
      }),
    onSuccess: async (a) => {
      await queryClient.invalidateQueries({ queryKey: ["agents", props.wid] });
      props.onCreated(a);
    },
  });
  const errors = fieldErrors(create.error);
  if (providers.isPending) return <p>Loading providers…</p>;
  if (list.length === 0)
    return <Notice kind="info">Add a provider first: an agent needs a model to think with.</Notice>;
  return (
    <form
      className="card"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate();
      }}
      noValidate
    >
      <Field
        label="Agent name"
        placeholder="Assistant"
        value={name}
        onChange={(e) => setName(e.target.value)}
        error={errors.name}
      />
      <Select
        label="Provider"
        value={provider?.id ?? ""}
        onChange={(v) => {
          setProviderId(v);
          setModel("");
        }}
        options={list.map((p) => ({ value: p.id, label: `${p.name}${p.personal ? " (personal)" : ""}` }))}
      />
      {models.length ? (
        <Select
          label="Model"
          value={chosenModel}
          onChange={setModel}
          options={models.map((m) => ({ value: m, label: m }))}
        />
      ) : (
        <Field
          label="Model"
          value={model}
          onChange={(e) => setModel(e.target.value)}
          hint="This provider did not list its models; type the model id."
          error={errors.model}
        />
      )}
      <div className="field">
        <label htmlFor="agent-instructions">Personality and instructions (optional)</label>
        <textarea
          id="agent-instructions"
          rows={4}
          placeholder="You are a friendly assistant who answers briefly."
          value={instructions}
          onChange={(e) => setInstructions(e.target.value)}
        />
      </div>
      <GalleryFields
        idPrefix="new-agent"
        description={description}
        onDescription={setDescription}
        starters={starters}
        onStarters={setStarters}
        errors={errors}
      />
      {props.canGrantTools ? <ToolGrants wid={props.wid} value={tools} onChange={setTools} /> : null}
      {props.canGrantTools && tools.includes("shell") ? (
        <ExecPolicyFields value={exec} onChange={setExec} errors={errors} />
      ) : null}
      {create.isError ? <Notice>{messageOf(create.error)}</Notice> : null}
      <button type="submit" disabled={create.isPending || !chosenModel}>
        {create.isPending ? "Creating…" : "Create agent"}
      </button>
    </form>
  );
}
