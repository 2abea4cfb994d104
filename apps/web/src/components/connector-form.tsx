import { useMutation } from "@tanstack/react-query";
import { useId, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { CatalogEntry, Connector, ConnectorKind, ConnectorTest } from "../api/types.ts";
import { SetupHelp } from "./connector-help.tsx";
import { KEEP, SecretField, type SecretState, secretPatch } from "./connector-secret.tsx";
import { TestOutcome } from "./connector-test.tsx";
import { hostOf, KIND_LABEL } from "./connector-text.ts";
import { Field, Notice, validateUrl } from "./forms.tsx";

interface HeaderRow {
  key: number;
  name: string;
  value: string;
}

const HEADER_NAME = /^[A-Za-z0-9-]+$/;

/** "a, b c" → ["a", "b", "c"]; empty → null (every tool the server lists). */
function parseAllowlist(text: string): string[] | null {
  const names = text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter(Boolean);
  return names.length ? [...new Set(names)] : null;
}

/**
 * Adds or edits a connector for one preset: n8n asks for the instance URL and the MCP access token
 * (optionally the REST API key), Activepieces for its MCP server URL and token (optionally the instance
 * and an API key), a generic MCP server for URL, transport, token or headers and an optional tool
 * allow-list, a catalogue entry for a name only. Secrets are write-only: on edit the form says one is
 * stored and offers Replace / Remove. A new connector can be tested before it is saved.
 */
export function ConnectorForm(props: {
  wid: string;
  kind: ConnectorKind;
  connector?: Connector;
  catalogEntry?: CatalogEntry;
  onSaved: (c: Connector, test: ConnectorTest | null) => void;
  onCancel: () => void;
}) {
  const c = props.connector;
  const kind = c?.kind ?? props.kind;
  const editing = !!c;
  const base = `/api/v1/workspaces/${props.wid}/connectors`;
  const [name, setName] = useState(c?.name ?? "");
  const [url, setUrl] = useState(kind === "n8n" ? "" : (c?.url ?? ""));
  const [instanceUrl, setInstanceUrl] = useState(c?.instanceUrl ?? "");
  const [transport, setTransport] = useState<"streamable-http" | "sse">(
    c?.transport === "sse" ? "sse" : "streamable-http",
  );
  const [token, setToken] = useState<SecretState>(KEEP);
  const [apiKey, setApiKey] = useState<SecretState>(KEEP);
  const [headersMode, setHeadersMode] = useState<"keep" | "set" | "remove">(
    c && c.headerNames.length > 0 ? "keep" : "set",
  );
  const [headers, setHeaders] = useState<HeaderRow[]>([]);
  const [allowlist, setAllowlist] = useState(c?.toolAllowlist?.join(", ") ?? "");
  const [nextKey, setNextKey] = useState(1);
  const whyId = useId();

  const headerRecord = () =>
    Object.fromEntries(headers.filter((h) => h.name.trim()).map((h) => [h.name.trim(), h.value]));
  const fallbackName =
    props.catalogEntry?.name ?? (kind === "mcp" ? hostOf(url) || "MCP server" : KIND_LABEL[kind]) ?? "Connector";

  /** The body of a create or draft test: only what this preset asks for. */
  function createBody() {
    const token_ = secretPatch(token);
    const key = secretPatch(apiKey);
    const hdrs = headerRecord();
    return {
      name: name.trim() || fallbackName,
      kind,
      ...(kind === "mcp" ? { transport } : {}),
      ...(kind !== "n8n" && kind !== "catalog" && url ? { url } : {}),
      ...(kind !== "mcp" && kind !== "catalog" && instanceUrl ? { instanceUrl } : {}),
      ...(kind === "catalog" && props.catalogEntry ? { catalogEntryId: props.catalogEntry.id } : {}),
      ...(kind === "mcp" ? { toolAllowlist: parseAllowlist(allowlist) } : {}),
      ...(token_ ? { bearerToken: token_ } : {}),
      ...(key ? { apiKey: key } : {}),
      ...(kind === "mcp" && Object.keys(hdrs).length ? { headers: hdrs } : {}),
    };
  }

  /** The body of an update: changed fields only, secrets only when replaced or removed. */
  function updateBody(conn: Connector) {
    const out: Record<string, unknown> = {};
    if (name.trim() && name.trim() !== conn.name) out.name = name.trim();
    if (kind === "mcp" && transport !== conn.transport) out.transport = transport;
    if (kind !== "n8n" && kind !== "catalog" && url && url !== conn.url) out.url = url;
    if (kind !== "mcp" && kind !== "catalog" && instanceUrl && instanceUrl !== conn.instanceUrl)
      out.instanceUrl = instanceUrl;
    const list = parseAllowlist(allowlist);
    if (JSON.stringify(list) !== JSON.stringify(conn.toolAllowlist)) out.toolAllowlist = list;
    const t = secretPatch(token);
    if (t !== undefined) out.bearerToken = t;
    const k = secretPatch(apiKey);
    if (k !== undefined) out.apiKey = k;
    if (headersMode === "remove") out.headers = null;
    else if (headersMode === "set" && Object.keys(headerRecord()).length) out.headers = headerRecord();
    return out;
  }

  const draftTest = useMutation({
    mutationFn: () => api<ConnectorTest>("POST", `${base}/test`, createBody()),
  });
  const save = useMutation({
    mutationFn: async (): Promise<{ saved: Connector; test: ConnectorTest | null }> => {
      const saved = c
        ? await api<Connector>("PATCH", `${base}/${c.id}`, updateBody(c))
        : await api<Connector>("POST", base, createBody());
      // Test right after saving: the tools found are what agents can be given, tool by tool.
      const test = await api<ConnectorTest>("POST", `${base}/${saved.id}/test`).catch(() => null);
      return { saved, test };
    },
    onSuccess: ({ saved, test }) => props.onSaved(saved, test),
  });
  const server = fieldErrors(save.error ?? draftTest.error);

  const errors = {
    url: validateUrl(url, "https://mcp.example.com/mcp") ?? server.url,
    instanceUrl:
      validateUrl(instanceUrl, kind === "n8n" ? "https://n8n.example.com" : "https://cloud.activepieces.com") ??
      server.instanceUrl,
    headers: headers.find((h) => h.name.trim() && !HEADER_NAME.test(h.name.trim()))
      ? "Header names are letters, digits and dashes."
      : server.headers,
    name: server.name,
    bearerToken: server.bearerToken,
    apiKey: server.apiKey,
    toolAllowlist: server.toolAllowlist,
  };
  const needsUrl = (kind === "mcp" || kind === "activepieces") && !url;
  const needsInstance = kind === "n8n" && !instanceUrl;
  const needsToken = kind === "n8n" && !editing && !token.value.trim();
  const why = needsInstance
    ? "Enter the n8n instance URL."
    : needsUrl
      ? "Enter the MCP server URL."
      : needsToken
        ? "Paste the MCP access token."
        : errors.url || errors.instanceUrl || errors.headers
          ? "Correct the fields marked above."
          : undefined;
  const busy = save.isPending || draftTest.isPending;
  const shownError = save.error ?? draftTest.error;
  const fieldShown = Object.values(fieldErrors(shownError)).length > 0;

  return (
    <form
      className="card connector-form"
      aria-label={editing ? `Edit ${c?.name}` : `Add ${props.catalogEntry?.name ?? KIND_LABEL[kind]} connector`}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!why && !busy) save.mutate();
      }}
    >
      <h2>{editing ? `Edit ${c?.name}` : `Add ${props.catalogEntry?.name ?? KIND_LABEL[kind]}`}</h2>
      {props.catalogEntry ? <p>{props.catalogEntry.description}</p> : null}
      <SetupHelp kind={kind} />
      <Field
        label="Name"
        value={name}
        placeholder={fallbackName}
        onChange={(e) => setName(e.target.value)}
        error={errors.name}
        hint="How people and agents see it. Its tools are named after it inside the gateway."
      />
      {kind === "n8n" ? (
        <Field
          label="n8n instance URL"
          type="url"
          value={instanceUrl}
          placeholder="https://n8n.example.com"
          onChange={(e) => setInstanceUrl(e.target.value.trim())}
          error={errors.instanceUrl}
          hint="The address you open n8n at. Reef connects to its /mcp-server/http endpoint."
        />
      ) : null}
      {kind === "mcp" || kind === "activepieces" ? (
        <Field
          label="MCP server URL"
          type="url"
          value={url}
          placeholder={
            kind === "activepieces"
              ? "https://cloud.activepieces.com/api/v1/projects/…/mcp-server/http"
              : "https://mcp.example.com/mcp"
          }
          onChange={(e) => setUrl(e.target.value.trim())}
          error={errors.url}
          hint={kind === "activepieces" ? "Copied from Settings → MCP Server in your Activepieces project." : undefined}
        />
      ) : null}
      {kind === "mcp" ? (
        <fieldset className="field">
          <legend>Transport</legend>
          <label className="check">
            <input
              type="radio"
              name="transport"
              checked={transport === "streamable-http"}
              onChange={() => setTransport("streamable-http")}
            />{" "}
            Streamable HTTP (most servers)
          </label>
          <label className="check">
            <input type="radio" name="transport" checked={transport === "sse"} onChange={() => setTransport("sse")} />{" "}
            SSE (older servers; the URL usually ends in /sse)
          </label>
        </fieldset>
      ) : null}
      {kind !== "catalog" ? (
        <SecretField
          label={kind === "n8n" ? "MCP access token" : kind === "activepieces" ? "MCP token" : "Bearer token"}
          stored={!!c?.hasBearerToken}
          storedHint={c?.secretHint}
          state={token}
          onChange={setToken}
          error={errors.bearerToken}
          hint={
            kind === "mcp"
              ? "Sent as Authorization: Bearer …, if the server needs one. Stored encrypted; never shown again."
              : "Stored encrypted; Reef never shows it again, and agents never see it."
          }
        />
      ) : null}
      {kind === "mcp" ? (
        <HeadersEditor
          stored={c?.headerNames ?? []}
          mode={headersMode}
          setMode={setHeadersMode}
          rows={headers}
          setRows={setHeaders}
          addRow={() => {
            setHeaders((h) => [...h, { key: nextKey, name: "", value: "" }]);
            setNextKey((k) => k + 1);
          }}
          error={errors.headers}
        />
      ) : null}
      {kind === "activepieces" ? (
        <Field
          label="Activepieces instance URL (optional)"
          type="url"
          value={instanceUrl}
          placeholder="https://cloud.activepieces.com"
          onChange={(e) => setInstanceUrl(e.target.value.trim())}
          error={errors.instanceUrl}
          hint="With an API key, Reef lists the project's flows on the connector's page."
        />
      ) : null}
      {kind === "n8n" || kind === "activepieces" ? (
        <SecretField
          label="REST API key (optional)"
          stored={!!c?.hasApiKey}
          state={apiKey}
          onChange={setApiKey}
          error={errors.apiKey}
          hint={
            kind === "n8n"
              ? "From Settings → n8n API. Only used to list your workflows on this page."
              : "Only used to list your flows on this page. Stored encrypted."
          }
        />
      ) : null}
      {kind === "mcp" || c?.toolAllowlist ? (
        <Field
          label="Only offer these tools (optional)"
          value={allowlist}
          placeholder="search, create_issue"
          onChange={(e) => setAllowlist(e.target.value)}
          error={errors.toolAllowlist}
          hint="Tool names, comma-separated. Empty: every tool the server lists. A tool the server adds later reaches agents only if it is listed here or you test again."
        />
      ) : null}
      {shownError && !fieldShown ? <Notice>{messageOf(shownError)}</Notice> : null}
      {draftTest.data ? <TestOutcome result={draftTest.data} /> : null}
      <div className="actions">
        <button type="submit" disabled={!!why || busy} aria-describedby={why ? whyId : undefined}>
          {save.isPending ? "Saving and testing…" : editing ? "Save and test" : "Add connector"}
        </button>
        {editing ? null : (
          <button
            type="button"
            className="secondary"
            disabled={!!why || busy}
            aria-describedby={why ? whyId : undefined}
            onClick={() => {
              save.reset();
              draftTest.mutate();
            }}
          >
            {draftTest.isPending ? "Testing…" : "Test connection"}
          </button>
        )}
        <button type="button" className="secondary" onClick={props.onCancel}>
          Cancel
        </button>
        {why ? (
          <small id={whyId} className="disabled-why">
            {why}
          </small>
        ) : null}
      </div>
      <p className="visually-hidden" role="status">
        {draftTest.isPending ? "Testing the connection…" : draftTest.data?.ok ? "Connection works." : ""}
      </p>
    </form>
  );
}

/** Extra request headers for a generic server; stored values are never shown, only their names. */
function HeadersEditor(props: {
  stored: string[];
  mode: "keep" | "set" | "remove";
  setMode: (m: "keep" | "set" | "remove") => void;
  rows: HeaderRow[];
  setRows: (f: (rows: HeaderRow[]) => HeaderRow[]) => void;
  addRow: () => void;
  error: string | undefined;
}) {
  const { stored, mode, rows } = props;
  if (stored.length > 0 && mode !== "set") {
    return (
      <fieldset className="field">
        <legend className="label">Custom headers</legend>
        <div className="secret-row">
          {mode === "remove" ? (
            <span>Removed when you save.</span>
          ) : (
            <span>
              Stored: {stored.join(", ")} <span className="hint">— values never shown</span>
            </span>
          )}
          {mode === "remove" ? (
            <button type="button" className="secondary" onClick={() => props.setMode("keep")}>
              Undo
            </button>
          ) : (
            <>
              <button
                type="button"
                className="secondary"
                aria-label="Replace custom headers"
                onClick={() => {
                  props.setMode("set");
                  if (rows.length === 0) props.addRow();
                }}
              >
                Replace
              </button>
              <button
                type="button"
                className="danger"
                aria-label="Remove custom headers"
                onClick={() => props.setMode("remove")}
              >
                Remove
              </button>
            </>
          )}
        </div>
      </fieldset>
    );
  }
  const update = (key: number, patch: Partial<HeaderRow>) =>
    props.setRows((rs) => rs.map((r) => (r.key === key ? { ...r, ...patch } : r)));
  return (
    <fieldset className="field connector-headers">
      <legend>Custom headers (optional)</legend>
      {stored.length > 0 ? (
        <p className="hint">These replace every stored header ({stored.join(", ")}) when you save.</p>
      ) : null}
      {rows.map((r, i) => (
        <div key={r.key} className="header-row">
          <Field
            label={`Header ${i + 1} name`}
            value={r.name}
            placeholder="X-Api-Key"
            autoComplete="off"
            onChange={(e) => update(r.key, { name: e.target.value })}
          />
          <Field
            label={`Header ${i + 1} value`}
            type="password"
            autoComplete="off"
            value={r.value}
            onChange={(e) => update(r.key, { value: e.target.value })}
          />
          <button
            type="button"
            className="secondary"
            aria-label={`Remove header ${i + 1}`}
            onClick={() => props.setRows((rs) => rs.filter((x) => x.key !== r.key))}
          >
            Remove
          </button>
        </div>
      ))}
      {props.error ? <small className="field-error">{props.error}</small> : null}
      <div className="actions">
        <button type="button" className="secondary" onClick={props.addRow}>
          Add a header
        </button>
        {stored.length > 0 ? (
          <button type="button" className="link-button" onClick={() => props.setMode("keep")}>
            Keep the stored headers
          </button>
        ) : null}
      </div>
      <small className="hint">Values are stored encrypted like the token and never shown again.</small>
    </fieldset>
  );
}
