import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams } from "@tanstack/react-router";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { CatalogEntry, Connector, ConnectorKind, Page } from "../api/types.ts";
import { agentsQuery } from "../components/agent-form.tsx";
import { ConnectorForm } from "../components/connector-form.tsx";
import { DisabledBanner, useConnectorsOff } from "../components/connector-help.tsx";
import { catalogQuery, connectorsPath } from "../components/connector-queries.ts";
import { addressOf, ago, KIND_LABEL, PRESETS } from "../components/connector-text.ts";
import { focusLater, useFocusOnMount } from "../components/focus.ts";
import { Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { atLeast, useWorkspace } from "../components/session.ts";
import "../components/connectors.css";

export { ConnectorDetailPage } from "../components/connector-detail.tsx";

/** The three presets and the operator's catalogue entries, as buttons: what "add a connector" starts from. */
function PresetChooser(props: { onPick: (kind: ConnectorKind, entry?: CatalogEntry) => void; onCancel?: () => void }) {
  const catalog = useQuery(catalogQuery);
  const focusFirst = useFocusOnMount<HTMLDivElement>("button");
  return (
    <div ref={props.onCancel ? focusFirst : undefined}>
      <ul className="preset-grid" aria-label="Kinds of connector">
        {PRESETS.map((p) => (
          <li key={p.kind}>
            <button
              type="button"
              className="preset"
              aria-describedby={`preset-${p.kind}`}
              onClick={() => props.onPick(p.kind)}
            >
              <strong>{p.title}</strong>
            </button>
            <small id={`preset-${p.kind}`} className="hint">
              {p.blurb}
            </small>
          </li>
        ))}
        {(catalog.data ?? []).map((e) => (
          <li key={e.id}>
            <button
              type="button"
              className="preset"
              aria-describedby={`preset-cat-${e.id}`}
              onClick={() => props.onPick("catalog", e)}
            >
              <strong>{e.name}</strong> <span className="badge">From your operator</span>
            </button>
            <small id={`preset-cat-${e.id}`} className="hint">
              {e.description}
            </small>
          </li>
        ))}
      </ul>
      {props.onCancel ? (
        <button type="button" className="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      ) : null}
    </div>
  );
}

function TestStatus(props: { c: Connector }) {
  const { c } = props;
  if (c.lastTestOk === null || !c.lastTestedAt) return <span className="badge">Not tested</span>;
  return c.lastTestOk ? (
    <span className="badge badge-ok">Works · {ago(c.lastTestedAt)}</span>
  ) : (
    <span className="badge badge-danger">Failed · {ago(c.lastTestedAt)}</span>
  );
}

/** `/w/$wid/connectors`: the workspace's MCP connectors, and adding one from a preset. */
export function ConnectorsPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  usePageTitle("Connectors", membership?.name);
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const canManage = atLeast(membership?.role, "admin");
  const [choosing, setChoosing] = useState(false);
  const [adding, setAdding] = useState<{ kind: ConnectorKind; entry?: CatalogEntry } | null>(null);
  const focusForm = useFocusOnMount<HTMLDivElement>("input");
  const agents = useQuery(agentsQuery(wid));
  const connectors = useInfiniteQuery({
    queryKey: ["connectors", wid, "list"],
    initialPageParam: "",
    queryFn: ({ pageParam }) => {
      const q = new URLSearchParams({ limit: "50" });
      if (pageParam) q.set("cursor", pageParam);
      return api<Page<Connector>>("GET", `${connectorsPath(wid)}?${q}`);
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const rows = connectors.data?.pages.flatMap((p) => p.items) ?? [];
  const agentName = (id: string) => agents.data?.items.find((a) => a.id === id)?.name ?? "an agent";
  const disabled = useConnectorsOff(connectors.error);
  const addButton = () => document.getElementById("add-connector");
  const pick = (kind: ConnectorKind, entry?: CatalogEntry) => {
    setChoosing(false);
    setAdding(entry ? { kind, entry } : { kind });
  };

  return (
    <section aria-labelledby="connectors-title">
      <div className="page-head">
        <h1 id="connectors-title">Connectors</h1>
        {canManage && !disabled && !adding && !choosing && rows.length > 0 ? (
          <button type="button" id="add-connector" onClick={() => setChoosing(true)}>
            Add connector
          </button>
        ) : null}
      </div>
      <p className="hint connector-intro">
        Connectors give agents tools from other systems (MCP servers, n8n or Activepieces workflows). Reef keeps their
        tokens encrypted and adds them itself: agents never see them. Each agent gets a connector only when you enable
        it for that agent.
      </p>
      {disabled ? <DisabledBanner /> : null}
      {!canManage && membership ? (
        <p className="hint">
          You can see the connectors and which agents use them. Owners and admins add, change and test them.
        </p>
      ) : null}
      {choosing ? (
        <div className="card connector-chooser">
          <h2>Add a connector</h2>
          <PresetChooser
            onPick={pick}
            onCancel={() => {
              setChoosing(false);
              focusLater(addButton);
            }}
          />
        </div>
      ) : null}
      {adding ? (
        <div ref={focusForm}>
          <ConnectorForm
            wid={wid}
            kind={adding.kind}
            {...(adding.entry ? { catalogEntry: adding.entry } : {})}
            onCancel={() => {
              setAdding(null);
              focusLater(() => addButton() ?? document.querySelector<HTMLElement>(".preset"));
            }}
            onSaved={async (c) => {
              setAdding(null);
              await queryClient.invalidateQueries({ queryKey: ["connectors", wid] });
              await navigate({ to: "/w/$wid/connectors/$cid", params: { wid, cid: c.id } });
            }}
          />
        </div>
      ) : null}
      {connectors.isError && !disabled ? <Notice>{messageOf(connectors.error)}</Notice> : null}
      {connectors.isPending ? <p className="loading">Loading…</p> : null}
      {connectors.isSuccess && rows.length === 0 && !adding ? (
        <div className="card empty-state connector-empty">
          <h2>No connectors yet</h2>
          {canManage && !disabled ? (
            <>
              <p>
                Connect a workflow engine or any MCP server, test it, then choose which agents may use its tools. Start
                from one of these:
              </p>
              <PresetChooser onPick={pick} />
            </>
          ) : (
            <p>
              Owners and admins of this workspace can connect n8n, Activepieces or any MCP server, so agents can use
              their tools.
            </p>
          )}
        </div>
      ) : null}
      {rows.length > 0 ? (
        <ul className="cards connector-list" aria-label="Connectors">
          {rows.map((c) => (
            <li key={c.id} className="card connector-card">
              <h2 className="connector-title">
                <Link to="/w/$wid/connectors/$cid" params={{ wid, cid: c.id }} id={`connector-${c.id}`}>
                  {c.name}
                </Link>{" "}
                <span className="badge">{KIND_LABEL[c.kind]}</span>{" "}
                {c.enabled ? null : <span className="badge badge-danger">Off</span>}
              </h2>
              <dl className="connector-facts">
                <dt>Address</dt>
                <dd>{addressOf(c)}</dd>
                <dt>Last test</dt>
                <dd>
                  <TestStatus c={c} />
                </dd>
                <dt>Tools</dt>
                <dd>{c.tools ? (c.tools.length === 1 ? "1 tool" : `${c.tools.length} tools`) : "Not listed yet"}</dd>
                <dt>Agents</dt>
                <dd>
                  {c.agents.length === 0
                    ? "None yet"
                    : c.agents
                        .map((a) => `${agentName(a.agentId)}${a.tools ? ` (${a.tools.length} of the tools)` : ""}`)
                        .join(", ")}
                </dd>
              </dl>
            </li>
          ))}
        </ul>
      ) : null}
      {connectors.hasNextPage ? (
        <button
          type="button"
          className="secondary"
          onClick={() => void connectors.fetchNextPage()}
          disabled={connectors.isFetchingNextPage}
        >
          {connectors.isFetchingNextPage ? "Loading…" : "Load more"}
        </button>
      ) : null}
    </section>
  );
}
