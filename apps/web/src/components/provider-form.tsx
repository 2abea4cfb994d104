import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { Provider, ProviderTest } from "../api/types.ts";
import { CheckResult, Field, Notice, Select, validateUrl } from "./forms.tsx";

const KINDS = [
  { value: "openai", label: "OpenAI" },
  { value: "anthropic", label: "Anthropic" },
  { value: "openrouter", label: "OpenRouter" },
  { value: "ollama", label: "Ollama (local)" },
  { value: "openai-compatible", label: "Other OpenAI-compatible server" },
];

/** Adds a provider; validates as you type; the key is sent once and never shown again. */
export function ProviderForm(props: {
  wid: string;
  canShare: boolean;
  onCreated: (p: Provider) => void;
  onCancel?: () => void;
}) {
  const queryClient = useQueryClient();
  const [kind, setKind] = useState("openai");
  const [name, setName] = useState("");
  const [baseUrl, setBaseUrl] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [personal, setPersonal] = useState(!props.canShare);
  const needsUrl = kind === "openai-compatible";
  const keyOptional = kind === "ollama" || kind === "openai-compatible";
  const create = useMutation({
    mutationFn: () =>
      api<Provider>("POST", `/api/v1/workspaces/${props.wid}/providers`, {
        name: name || KINDS.find((k) => k.value === kind)?.label,
        kind,
        ...(baseUrl ? { baseUrl } : {}),
        ...(apiKey ? { apiKey } : {}),
        ...(personal ? { personal: true } : {}),
      }),
    onSuccess: async (p) => {
      await queryClient.invalidateQueries({ queryKey: ["providers", props.wid] });
      setApiKey("");
      props.onCreated(p);
    },
  });
  const errors = fieldErrors(create.error);
  const urlError = validateUrl(baseUrl) ?? errors.baseUrl;
  const keyError = apiKey && apiKey.trim().length < 8 ? "That looks too short to be an API key." : errors.apiKey;
  const incomplete = (needsUrl && !baseUrl) || (!keyOptional && !apiKey) || !!validateUrl(baseUrl);
  // A disabled button says why, next to it.
  const why =
    needsUrl && !baseUrl
      ? "Enter the base URL to add this provider."
      : validateUrl(baseUrl)
        ? "Correct the base URL to add this provider."
        : !keyOptional && !apiKey
          ? "Paste the API key to add this provider."
          : undefined;
  const whyId = useId();
  return (
    <form
      className="card"
      aria-label="Add a provider"
      onSubmit={(e) => {
        e.preventDefault();
        if (!incomplete) create.mutate();
      }}
      noValidate
    >
      <Select label="Provider" value={kind} onChange={setKind} options={KINDS} name="kind" />
      <Field
        label="Name"
        placeholder={KINDS.find((k) => k.value === kind)?.label}
        value={name}
        onChange={(e) => setName(e.target.value)}
        error={errors.name}
      />
      {needsUrl || kind === "ollama" ? (
        <Field
          label="Base URL"
          type="url"
          placeholder={kind === "ollama" ? "http://127.0.0.1:11434/v1" : "https://llm.example.com/v1"}
          value={baseUrl}
          onChange={(e) => setBaseUrl(e.target.value.trim())}
          error={urlError}
          required={needsUrl}
          hint="Reef calls only public addresses. For a server on this machine or your network (a local Ollama), ask your operator to allow its host and port (Admin → Settings → Provider hosts) first."
        />
      ) : null}
      <Field
        label={keyOptional ? "API key (if the server needs one)" : "API key"}
        type="password"
        autoComplete="off"
        value={apiKey}
        onChange={(e) => setApiKey(e.target.value)}
        error={keyError}
        hint="Stored encrypted. Reef never shows it again: only its last four characters."
      />
      {props.canShare ? (
        <label className="check">
          <input type="checkbox" checked={personal} onChange={(e) => setPersonal(e.target.checked)} /> Only for me (a
          personal provider nobody else in the workspace can see or use)
        </label>
      ) : (
        <p className="hint">This will be your personal provider: only you can see and use it.</p>
      )}
      {create.isError && !errors.baseUrl && !errors.apiKey && !errors.name ? (
        <Notice>{messageOf(create.error)}</Notice>
      ) : null}
      <div className="actions">
        <button type="submit" disabled={create.isPending || incomplete} aria-describedby={why ? whyId : undefined}>
          {create.isPending ? "Adding and fetching models…" : "Add provider"}
        </button>
        {props.onCancel ? (
          <button type="button" className="secondary" onClick={props.onCancel}>
            Cancel
          </button>
        ) : null}
        {why ? (
          <small id={whyId} className="disabled-why">
            {why}
          </small>
        ) : null}
      </div>
    </form>
  );
}

/** Runs the provider's connection test and says what it found, in plain words. */
export function ProviderTestButton(props: { wid: string; provider: Provider; onDone?: (r: ProviderTest) => void }) {
  const queryClient = useQueryClient();
  const test = useMutation({
    mutationFn: () => api<ProviderTest>("POST", `/api/v1/workspaces/${props.wid}/providers/${props.provider.id}/test`),
    onSuccess: async (r) => {
      await queryClient.invalidateQueries({ queryKey: ["providers", props.wid] });
      props.onDone?.(r);
    },
  });
  return (
    <div className="test">
      <button type="button" className="secondary" onClick={() => test.mutate()} disabled={test.isPending}>
        {test.isPending ? "Testing…" : "Test connection"}
      </button>
      <CheckResult result={test.data} error={test.error} />
    </div>
  );
}
