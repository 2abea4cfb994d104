import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { Agent, Provider, Runtime } from "../api/types.ts";
import { GalleryFields, startersOf, ToolGrants } from "./agent-form.tsx";
import { useConfirm } from "./confirm-dialog.tsx";
import { ExecPolicyFields, ExecPolicySummary, type ExecSettings } from "./exec-policy.tsx";
import { Field, Notice, Select, validateUrl } from "./forms.tsx";

/** Edits an agent's name, model, personality and temperature; the next message uses the change. */
export function AgentEditForm(props: {
  wid: string;
  agent: Agent;
  provider: Provider | undefined;
  canGrantTools: boolean;
  onDone: () => void;
}) {
  const queryClient = useQueryClient();
  const { agent } = props;
  const [tools, setTools] = useState(agent.tools);
  const [exec, setExec] = useState<ExecSettings>({
    execPolicy: agent.execPolicy,
    execAllowlist: agent.execAllowlist,
  });
  const [name, setName] = useState(agent.name);
  const [model, setModel] = useState(agent.model);
  const [instructions, setInstructions] = useState(agent.instructions);
  const [description, setDescription] = useState(agent.description);
  const [starters, setStarters] = useState(agent.starterPrompts.join("\n"));
  const { confirm, dialog } = useConfirm();
  const runtime = useQuery({
    queryKey: ["runtime", props.wid],
    queryFn: () => api<Runtime>("GET", `/api/v1/workspaces/${props.wid}/runtime`),
    retry: false,
  });
  const [temperature, setTemperature] = useState(agent.temperature === null ? "" : String(agent.temperature));
  const temp = temperature.trim() === "" ? null : Number(temperature);
  const tempError = temp !== null && (!Number.isFinite(temp) || temp < 0 || temp > 2) ? "Between 0 and 2." : undefined;
  const save = useMutation({
    mutationFn: () =>
      api<Agent>("PATCH", `/api/v1/workspaces/${props.wid}/agents/${agent.id}`, {
        name,
        instructions,
        description,
        starterPrompts: startersOf(starters),
        temperature: temp,
        ...(model !== agent.model ? { model } : {}),
        ...(props.canGrantTools ? { tools } : {}),
        ...(props.canGrantTools && tools.includes("shell") ? exec : {}),
      }),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ["agents", props.wid] });
      props.onDone();
    },
  });
  const errors = fieldErrors(save.error);
  const models = props.provider?.models ?? [];

  // Model, temperature, tools and exec policy go into the gateway's config: changing them restarts a running
  // workspace, and everyone chatting waits for it. Say so first.
  async function saveWithWarning() {
    const restarts =
      model !== agent.model ||
      temp !== agent.temperature ||
      (props.canGrantTools &&
        (tools.join() !== agent.tools.join() || (tools.includes("shell") && exec.execPolicy !== agent.execPolicy)));
    if (restarts && runtime.data?.state === "running") {
      const secs = runtime.data.expectedStartSeconds;
      const ok = await confirm({
        title: `Save and restart ${agent.name}'s workspace?`,
        body: (
          <p>
            Saving restarts the workspace: people chatting now wait
            {secs ? ` about ${secs} s` : " while it starts again"}, and answers being written are cut off.
          </p>
        ),
        confirmLabel: "Save and restart",
        danger: false,
      });
      if (!ok) return;
    }
    save.mutate();
  }
  return (
    <form
      className="card"
      aria-label={`Edit ${agent.name}`}
      onSubmit={(e) => {
        e.preventDefault();
        if (!tempError) void saveWithWarning();
      }}
    >
      <Field label="Agent name" value={name} onChange={(e) => setName(e.target.value)} error={errors.name} />
      {models.length ? (
        <Select label="Model" value={model} onChange={setModel} options={models.map((m) => ({ value: m, label: m }))} />
      ) : (
        <Field label="Model" value={model} onChange={(e) => setModel(e.target.value)} error={errors.model} />
      )}
      <div className="field">
        <label htmlFor={`instructions-${agent.id}`}>Personality and instructions</label>
        <textarea
          id={`instructions-${agent.id}`}
          rows={4}
          value={instructions}
          onChange={(e) => setInstructions(e.target.value)}
        />
      </div>
      <GalleryFields
        idPrefix={`edit-${agent.id}`}
        description={description}
        onDescription={setDescription}
        starters={starters}
        onStarters={setStarters}
        errors={errors}
      />
      <Field
        label="Temperature (0–2, empty for the model's default)"
        inputMode="decimal"
        value={temperature}
        onChange={(e) => setTemperature(e.target.value)}
        error={tempError ?? errors.temperature}
      />
      {props.canGrantTools ? (
        <ToolGrants wid={props.wid} value={tools} onChange={setTools} blocked={agent.toolsBlocked} />
      ) : null}
      {tools.includes("shell") ? (
        props.canGrantTools ? (
          <ExecPolicyFields value={exec} onChange={setExec} errors={errors} />
        ) : (
          <ExecPolicySummary
            value={exec}
            note="Only workspace admins and owners can change which commands it may run."
          />
        )
      ) : null}
      {save.isError ? <Notice>{messageOf(save.error)}</Notice> : null}
      <div className="actions">
        <button type="submit" disabled={save.isPending || !!tempError || !name.trim()}>
          Save
        </button>
        <button type="button" className="secondary" onClick={props.onDone}>
          Cancel
        </button>
      </div>
      {dialog}
    </form>
  );
}

/**
 * Renames a provider, moves it to another base URL or replaces its key (the
 * old key is never shown). A new base URL needs the key again: Reef sends a
 * stored key only to the URL it was entered for.
 */
export function ProviderEditForm(props: { wid: string; provider: Provider; onDone: () => void }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState(props.provider.name);
  const [baseUrl, setBaseUrl] = useState(props.provider.baseUrl);
  const [apiKey, setApiKey] = useState("");
  const urlChanged = baseUrl.replace(/\/+$/, "") !== props.provider.baseUrl;
  // Only a provider that has a key has one to protect; a keyless local server needs none.
  const keyRequired = urlChanged && props.provider.apiKey !== null;
  const save = useMutation({
    mutationFn: () =>
      api<Provider>("PATCH", `/api/v1/workspaces/${props.wid}/providers/${props.provider.id}`, {
        name,
        ...(urlChanged ? { baseUrl } : {}),
        ...(apiKey ? { apiKey } : {}),
      }),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ["providers", props.wid] });
      props.onDone();
    },
  });
  const errors = fieldErrors(save.error);
  const urlError = validateUrl(baseUrl) ?? errors.baseUrl;
  const keyError =
    apiKey && apiKey.trim().length < 8
      ? "That looks too short to be an API key."
      : keyRequired && !apiKey && errors.apiKey
        ? errors.apiKey
        : undefined;
  const blocked =
    !!validateUrl(baseUrl) || !baseUrl || !!(apiKey && apiKey.trim().length < 8) || (keyRequired && !apiKey);
  return (
    <form
      className="card"
      aria-label={`Edit ${props.provider.name}`}
      onSubmit={(e) => {
        e.preventDefault();
        if (!blocked) save.mutate();
      }}
    >
      <Field label="Name" value={name} onChange={(e) => setName(e.target.value)} error={errors.name} />
      <Field
        label="Base URL"
        type="url"
        value={baseUrl}
        onChange={(e) => setBaseUrl(e.target.value.trim())}
        error={urlError}
        hint="Reef calls only public addresses. For a server on this machine or your network (a local Ollama), ask your operator to allow its host and port first."
      />
      <Field
        label={keyRequired ? "API key (required to change the base URL)" : "New API key"}
        type="password"
        autoComplete="off"
        value={apiKey}
        onChange={(e) => setApiKey(e.target.value)}
        error={keyError}
        required={keyRequired}
        hint={
          keyRequired
            ? "Enter the key again for the new URL: Reef sends the stored key only to the URL it was entered for."
            : `Leave empty to keep the current key (${props.provider.apiKey ?? "none"}).`
        }
      />
      {save.isError && !errors.baseUrl && !errors.apiKey && !errors.name ? (
        <Notice>{messageOf(save.error)}</Notice>
      ) : null}
      <div className="actions">
        <button type="submit" disabled={save.isPending || blocked || !name.trim()}>
          Save
        </button>
        <button type="button" className="secondary" onClick={props.onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
