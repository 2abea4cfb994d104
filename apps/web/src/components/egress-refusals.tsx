import type { egressListsSchema, egressRefusalSchema } from "@reef/contracts";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import type { z } from "zod";
import { api, messageOf } from "../api/client.ts";
import type { Page } from "../api/types.ts";
import { Notice } from "./forms.tsx";
import { atLeast, useWorkspace } from "./session.ts";

type EgressRefusal = z.infer<typeof egressRefusalSchema>;
type EgressLists = z.infer<typeof egressListsSchema>;

/** The refusal codes of Reef's egress proxy, in words. */
const REASONS: Record<string, string> = {
  private_address: "Private or local address",
  denied_host: "On the workspace's deny list",
  not_allowed_host: "Not on the workspace's allow list",
  dns_failed: "Host name did not resolve",
  too_many_connections: "Too many open connections",
};

function HostList(props: { label: string; hosts: string[]; empty: string }) {
  return (
    <>
      <dt>{props.label}</dt>
      <dd>{props.hosts.length ? props.hosts.join(", ") : <span className="hint">{props.empty}</span>}</dd>
    </>
  );
}

/**
 * What the egress proxy refused this workspace's agents (admins and owners):
 * the workspace's allow and deny lists, read-only (operators set them), and the
 * refused connections per day and destination, newest first.
 */
export function EgressRefusals(props: { wid: string }) {
  const admin = atLeast(useWorkspace(props.wid)?.role, "admin");
  const lists = useQuery({
    queryKey: ["egress-lists", props.wid],
    queryFn: () => api<EgressLists>("GET", `/api/v1/workspaces/${props.wid}/egress`),
    enabled: admin,
  });
  const refusals = useInfiniteQuery({
    queryKey: ["egress-refusals", props.wid],
    initialPageParam: "",
    queryFn: ({ pageParam }) => {
      const q = new URLSearchParams({ limit: "50" });
      if (pageParam) q.set("cursor", pageParam);
      return api<Page<EgressRefusal>>("GET", `/api/v1/workspaces/${props.wid}/egress/refusals?${q}`);
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    enabled: admin,
  });
  if (!admin) return null;
  const rows = refusals.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section aria-labelledby="egress-title">
      <h2 id="egress-title">Blocked connections</h2>
      <p className="hint">
        Agents reach the network only through Reef. Private and local addresses are refused unless the operator allows a
        host; the operator can also give this workspace an allow list (only those hosts) and a deny list.
      </p>
      {lists.data ? (
        <dl className="card">
          <HostList label="Allowed hosts" hosts={lists.data.allowHosts} empty="any public host" />
          <HostList label="Denied hosts" hosts={lists.data.denyHosts} empty="none" />
        </dl>
      ) : null}
      {lists.isError ? <Notice>{messageOf(lists.error)}</Notice> : null}
      {refusals.isError ? <Notice>{messageOf(refusals.error)}</Notice> : null}
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">Port</th>
            <th scope="col">Reason</th>
            <th scope="col">Count</th>
            <th scope="col">Last time</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={`${r.day}|${r.host}|${r.port}|${r.reason}`}>
              <td>{r.host}</td>
              <td>{r.port}</td>
              <td>{REASONS[r.reason] ?? r.reason}</td>
              <td>{r.count}</td>
              <td>{new Date(r.lastAt).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && refusals.isSuccess ? <p>No connections were blocked.</p> : null}
      {refusals.hasNextPage ? (
        <button
          type="button"
          className="secondary"
          onClick={() => void refusals.fetchNextPage()}
          disabled={refusals.isFetchingNextPage}
        >
          {refusals.isFetchingNextPage ? "Loading…" : "Load more"}
        </button>
      ) : null}
    </section>
  );
}
