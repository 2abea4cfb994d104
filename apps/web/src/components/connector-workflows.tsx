import { useInfiniteQuery } from "@tanstack/react-query";
import { api, messageOf } from "../api/client.ts";
import type { Connector, ConnectorWorkflow, Page } from "../api/types.ts";
import { Notice } from "./forms.tsx";

/**
 * The workflows (n8n) or flows (Activepieces) the connector's REST API key can see, 20 at a time,
 * with whether each is active and offered to MCP clients: which ones agents can actually run.
 */
export function ConnectorWorkflows(props: { wid: string; connector: Connector }) {
  const c = props.connector;
  const noun = c.kind === "n8n" ? "workflows" : "flows";
  const workflows = useInfiniteQuery({
    queryKey: ["connector-workflows", props.wid, c.id],
    initialPageParam: "",
    queryFn: ({ pageParam }) => {
      const q = new URLSearchParams({ limit: "20" });
      if (pageParam) q.set("cursor", pageParam);
      return api<Page<ConnectorWorkflow>>("GET", `/api/v1/workspaces/${props.wid}/connectors/${c.id}/workflows?${q}`);
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    retry: false,
  });
  const rows = workflows.data?.pages.flatMap((p) => p.items) ?? [];
  if (workflows.isPending) return <p className="loading">Loading {noun}…</p>;
  if (workflows.isError) return <Notice>{messageOf(workflows.error)}</Notice>;
  if (rows.length === 0)
    return (
      <p className="hint">
        The API key sees no {noun}. Check that it belongs to the account or project that owns them.
      </p>
    );
  return (
    <>
      <ul className="connector-workflows" aria-label={c.kind === "n8n" ? "Workflows" : "Flows"}>
        {rows.map((w) => (
          <li key={w.id}>
            <span className="workflow-name">{w.name}</span>{" "}
            <span className={w.active ? "badge badge-ok" : "badge"}>{w.active ? "Active" : "Inactive"}</span>{" "}
            {w.availableInMcp === true ? <span className="badge badge-ok">Available in MCP</span> : null}
            {w.availableInMcp === false ? <span className="badge">Not offered to agents</span> : null}
          </li>
        ))}
      </ul>
      {c.kind === "n8n" && rows.some((w) => w.availableInMcp === false) ? (
        <p className="hint">
          Agents can only run workflows marked available in MCP: switch it on in each workflow's settings in n8n.
        </p>
      ) : null}
      {workflows.hasNextPage ? (
        <button
          type="button"
          className="secondary"
          onClick={() => void workflows.fetchNextPage()}
          disabled={workflows.isFetchingNextPage}
        >
          {workflows.isFetchingNextPage ? "Loading…" : `Load more ${noun}`}
        </button>
      ) : null}
    </>
  );
}
