import { useInfiniteQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { AuditEntry, Page } from "../api/types.ts";
import { Field, Notice } from "./forms.tsx";

/** An audit trail with filters, "load more" pages and each entry's details. */
export function AuditTable(props: { path: string; queryKey: unknown[] }) {
  const [action, setAction] = useState("");
  const [actor, setActor] = useState("");
  const [applied, setApplied] = useState({ action: "", actor: "" });
  const entries = useInfiniteQuery({
    queryKey: [...props.queryKey, applied],
    initialPageParam: "",
    queryFn: ({ pageParam }) => {
      const q = new URLSearchParams({ limit: "50" });
      if (applied.action) q.set("action", applied.action);
      if (applied.actor) q.set("actor", applied.actor);
      if (pageParam) q.set("cursor", pageParam);
      return api<Page<AuditEntry>>("GET", `${props.path}?${q}`);
    },
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const rows = entries.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <div>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ action: action.trim(), actor: actor.trim() });
        }}
      >
        <Field
          label="Action"
          placeholder="e.g. provider.create"
          value={action}
          onChange={(e) => setAction(e.target.value)}
        />
        <Field label="Actor id" value={actor} onChange={(e) => setActor(e.target.value)} />
        <button type="submit">Filter</button>
      </form>
      {entries.isError ? <Notice>{messageOf(entries.error)}</Notice> : null}
      <table className="table">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Action</th>
            <th scope="col">Actor</th>
            <th scope="col">Outcome</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr key={e.id}>
              <td>{new Date(e.occurredAt).toLocaleString()}</td>
              <td>{e.action}</td>
              <td>
                {e.actorType}
                {e.actorId ? <span className="hint"> {e.actorId.slice(0, 8)}</span> : null}
              </td>
              <td className={e.outcome === "success" ? "" : "field-error"}>{e.outcome}</td>
              <td>
                <details>
                  <summary>Show</summary>
                  <pre>
                    {JSON.stringify(
                      {
                        target: `${e.targetType ?? ""} ${e.targetId ?? ""}`.trim(),
                        ip: e.ip,
                        requestId: e.requestId,
                        ...(e.details ?? {}),
                      },
                      null,
                      2,
                    )}
                  </pre>
                </details>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && entries.isSuccess ? <p>No entries.</p> : null}
      {entries.hasNextPage ? (
        <button
          type="button"
          className="secondary"
          onClick={() => void entries.fetchNextPage()}
          disabled={entries.isFetchingNextPage}
        >
          {entries.isFetchingNextPage ? "Loading…" : "Load more"}
        </button>
      ) : null}
    </div>
  );
}
