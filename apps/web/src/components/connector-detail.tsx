import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams } from "@tanstack/react-router";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Connector, ConnectorTest } from "../api/types.ts";
import { useConfirm } from "./confirm-dialog.tsx";
import { ConnectorAgents } from "./connector-agents.tsx";
import { ConnectorForm } from "./connector-form.tsx";
import { DisabledBanner, isDisabled, useConnectorsOff } from "./connector-help.tsx";
import { connectorQuery, connectorsPath } from "./connector-queries.ts";
import { TestOutcome, ToolList } from "./connector-test.tsx";
import { ago, KIND_LABEL, lastTestText } from "./connector-text.ts";
import { ConnectorWorkflows } from "./connector-workflows.tsx";
import { focusLater, useFocusOnMount } from "./focus.ts";
import { Notice } from "./forms.tsx";
import { usePageTitle } from "./page-title.ts";
import { atLeast, useWorkspace } from "./session.ts";

/** The URL without its query string: some servers take a token there (`?token=`), which must not show. */
function safeUrl(url: string | null): string {
  if (!url) return "";
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "";
  }
}

function credentialsOf(c: Connector): string {
  const parts: string[] = [];
  if (c.hasBearerToken) parts.push(`token stored${c.secretHint ? ` (${c.secretHint})` : ""}`);
  if (c.headerNames.length) parts.push(`headers ${c.headerNames.join(", ")}`);
  if (c.hasApiKey) parts.push("REST API key stored");
  return parts.length ? parts.join(" · ") : "None";
}

/** `/w/$wid/connectors/$cid`: one connector: its facts, test, tools, which agents use it, its workflows. */
export function ConnectorDetailPage() {
  const { wid, cid } = useParams({ strict: false }) as { wid: string; cid: string };
  const membership = useWorkspace(wid);
  const canManage = atLeast(membership?.role, "admin");
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const { confirm, dialog } = useConfirm();
  const [editing, setEditing] = useState(false);
  const [announce, setAnnounce] = useState("");
  const focusForm = useFocusOnMount<HTMLDivElement>("input");
  const connector = useQuery(connectorQuery(wid, cid));
  const c = connector.data;
  usePageTitle(c?.name ?? "Connector", "Connectors", membership?.name);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["connectors", wid] });
  const test = useMutation({
    mutationFn: () => api<ConnectorTest>("POST", `${connectorsPath(wid)}/${cid}/test`),
    onSuccess: async (r) => {
      setAnnounce(r.ok ? `Connection works: ${r.tools.length} tools.` : "The connection test failed.");
      await refresh();
    },
  });
  const toggle = useMutation({
    mutationFn: (enabled: boolean) => api<Connector>("PATCH", `${connectorsPath(wid)}/${cid}`, { enabled }),
    onSuccess: async (saved) => {
      setAnnounce(saved.enabled ? `${saved.name} is on.` : `${saved.name} is off: no agent can use it.`);
      await refresh();
    },
  });
  const remove = useMutation({ mutationFn: () => api("DELETE", `${connectorsPath(wid)}/${cid}`) });
  const actionError = test.error ?? toggle.error ?? remove.error;
  const off = useConnectorsOff(actionError);

  async function onDelete(conn: Connector) {
    const ok = await confirm({
      title: `Delete the connector ${conn.name}?`,
      body: (
        <p>
          {conn.agents.length
            ? `${conn.agents.length === 1 ? "1 agent loses" : `${conn.agents.length} agents lose`} its tools at their next message. `
            : ""}
          Its stored token, headers and API key are deleted. Nothing changes on the server it connects to. This cannot
          be undone.
        </p>
      ),
      confirmLabel: "Delete connector",
    });
    if (!ok) return;
    remove.mutate(undefined, {
      onSuccess: async () => {
        // Leave first: refreshing while this page still watches the connector would ask for it again (a 404).
        await navigate({ to: "/w/$wid/connectors", params: { wid } });
        queryClient.removeQueries({ queryKey: connectorQuery(wid, cid).queryKey });
        await refresh();
        focusLater(() => document.getElementById("connectors-title"));
      },
    });
  }

  const back = (
    <p>
      <Link to="/w/$wid/connectors" params={{ wid }}>
        ← All connectors
      </Link>
    </p>
  );
  if (connector.isPending) return <p className="loading">Loading…</p>;
  if (connector.isError || !c) {
    return (
      <section>
        {back}
        {isDisabled(connector.error) ? <DisabledBanner /> : <Notice>{messageOf(connector.error)}</Notice>}
      </section>
    );
  }
  const showsWorkflows = (c.kind === "n8n" || c.kind === "activepieces") && c.hasApiKey;

  return (
    <section aria-labelledby="connector-title" className="connector-detail">
      {back}
      <h1 id="connector-title" className="connector-title" tabIndex={-1}>
        {c.name} <span className="badge">{KIND_LABEL[c.kind]}</span>{" "}
        {c.enabled ? null : <span className="badge badge-danger">Off</span>}
      </h1>
      {off ? <DisabledBanner /> : null}
      {actionError && !isDisabled(actionError) ? <Notice>{messageOf(actionError)}</Notice> : null}
      <dl className="connector-facts">
        {c.kind === "catalog" ? (
          <>
            <dt>Runs</dt>
            <dd>Inside the workspace's runtime, as set up by the operator</dd>
          </>
        ) : (
          <>
            {c.instanceUrl ? (
              <>
                <dt>Instance</dt>
                <dd>{safeUrl(c.instanceUrl)}</dd>
              </>
            ) : null}
            <dt>MCP endpoint</dt>
            <dd>{safeUrl(c.url)}</dd>
            <dt>Transport</dt>
            <dd>{c.transport === "sse" ? "SSE" : "Streamable HTTP"}</dd>
            <dt>Credentials</dt>
            <dd>{credentialsOf(c)}</dd>
          </>
        )}
        <dt>Tool names</dt>
        <dd>
          <code>{c.slug}__…</code> inside the agents' gateway
        </dd>
        <dt>Last test</dt>
        <dd>
          {c.lastTestedAt
            ? `${c.lastTestOk ? "Worked" : "Failed"} ${ago(c.lastTestedAt)}${c.lastTestOk || !c.lastTestError ? "" : `: ${lastTestText(c.lastTestError)}`}`
            : "Never tested"}
        </dd>
      </dl>
      {canManage && !editing ? (
        <div className="actions">
          <button type="button" onClick={() => test.mutate()} disabled={test.isPending}>
            {test.isPending ? "Testing…" : "Test connection"}
          </button>
          <button type="button" className="secondary" id="edit-connector" onClick={() => setEditing(true)}>
            Edit
          </button>
          <button
            type="button"
            className="secondary"
            disabled={toggle.isPending}
            onClick={() => toggle.mutate(!c.enabled)}
          >
            {c.enabled ? "Turn off" : "Turn on"}
          </button>
          <button type="button" className="danger" disabled={remove.isPending} onClick={() => void onDelete(c)}>
            Delete
          </button>
        </div>
      ) : null}
      {!canManage ? <p className="hint">Only owners and admins can change or test this connector.</p> : null}
      {test.data ? <TestOutcome result={test.data} /> : null}
      {editing ? (
        <div ref={focusForm}>
          <ConnectorForm
            wid={wid}
            kind={c.kind}
            connector={c}
            onCancel={() => {
              setEditing(false);
              focusLater(() => document.getElementById("edit-connector"));
            }}
            onSaved={async (saved, r) => {
              setEditing(false);
              setAnnounce(
                `${saved.name} saved.${r ? (r.ok ? " Connection works." : " The connection test failed.") : ""}`,
              );
              await refresh();
              focusLater(() => document.getElementById("edit-connector"));
            }}
          />
        </div>
      ) : null}
      <p className="visually-hidden" role="status">
        {announce}
      </p>

      <h2>Tools</h2>
      {c.tools ? (
        <ToolList tools={c.tools} label={`Tools of ${c.name}`} />
      ) : (
        <p className="hint">Not listed yet: test the connection to see what the server offers.</p>
      )}
      {c.toolAllowlist ? <p className="hint">Only these are offered to agents: {c.toolAllowlist.join(", ")}.</p> : null}

      <h2>Agents</h2>
      <ConnectorAgents wid={wid} connector={c} canManage={canManage} />

      {showsWorkflows ? (
        <>
          <h2>{c.kind === "n8n" ? "Workflows" : "Flows"}</h2>
          <ConnectorWorkflows wid={wid} connector={c} />
        </>
      ) : c.kind === "n8n" || c.kind === "activepieces" ? (
        <p className="hint">
          {canManage ? "Add a REST API key (Edit) to see" : "With a REST API key stored, this page lists"} the{" "}
          {c.kind === "n8n" ? "workflows" : "flows"} here.
        </p>
      ) : null}
      {dialog}
    </section>
  );
}
