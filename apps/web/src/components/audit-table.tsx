import { useInfiniteQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { AuditEntry, Page } from "../api/types.ts";
import { Field, Notice, Select } from "./forms.tsx";

/**
 * The actions a workspace's audit trail records, with the plain words the audit page shows for each
 * (its action filter offers these). Kept here, not in @reef/contracts, so the page does not load zod.
 */
export const AUDIT_ACTIONS: Readonly<Record<string, string>> = {
  "workspace.create": "Created the workspace",
  "workspace.rename": "Renamed the workspace",
  "workspace.default_agent": "Changed the default agent",
  "workspace.delete": "Deleted the workspace",
  "workspace.egress_update": "Changed web access rules",
  "workspace.token_budget_set": "Changed the token budget",
  "member.role_change": "Changed a member's role",
  "member.remove": "Removed a member",
  "member.leave": "Left the workspace",
  "invite.create": "Invited someone",
  "invite.resend": "Sent an invite again",
  "invite.revoke": "Revoked an invite",
  "invite.accept": "Accepted an invite",
  "api_key.create": "Created an API key",
  "api_key.revoke": "Revoked an API key",
  "api_key.first_use": "Used an API key for the first time",
  "provider.create": "Added a provider",
  "provider.update": "Changed a provider",
  "provider.delete": "Deleted a provider",
  "provider.test": "Tested a provider",
  "agent.create": "Created an agent",
  "agent.update": "Changed an agent",
  "agent.delete": "Deleted an agent",
  "agent.allowlist_add": "Allowed a command for an agent",
  "chat.session.create": "Started a conversation",
  "chat.session.delete": "Deleted a conversation",
  "chat.session.update": "Renamed or pinned a conversation",
  "chat.message.send": "Sent a message",
  "chat.message.replace": "Edited or regenerated a message",
  "chat.message.abort": "Stopped an answer",
  "llm_proxy.credential_refused": "The provider refused its API key",
  "approval.request": "An agent asked for approval",
  "approval.decide": "Decided an approval",
  "approval.expire": "An approval expired",
  "approval.policy": "Changed an approval policy",
  "runtime.start": "Started the workspace",
  "runtime.stop": "Stopped the workspace",
  "runtime.restart": "Restarted the workspace",
  "runtime.ready": "The workspace became ready",
  "runtime.failed": "The workspace failed to start",
  "runtime.crash": "The workspace crashed",
  "runtime.queue": "The workspace waited for capacity",
  "runtime.integrity_failure": "The workspace's runtime failed a safety check",
  "runtime.reconcile": "Reef brought the workspace's state up to date",
  "access.denied": "Was refused access",
  "rate_limit.exceeded": "Hit a rate limit",
};

/** Who did it, in words: the person's or key's name, else what is left to say. */
function actorText(e: AuditEntry): string {
  if (e.actorName) return e.actorType === "api_key" ? `API key “${e.actorName}”` : e.actorName;
  if (e.actorType === "system") return "Reef";
  if (e.actorType === "anonymous") return "Someone not signed in";
  if (e.actorType === "api_key") return "A deleted API key";
  return e.actorId ? `Former member (${e.actorId.slice(0, 8)})` : "Unknown";
}

/**
 * An audit trail with filters, "load more" pages and each entry's details. With `people`, the actor filter
 * is a person picker and the action filter a list of known actions (the workspace trail); without, both
 * are free text (the platform trail).
 */
export function AuditTable(props: {
  path: string;
  queryKey: unknown[];
  people?: { value: string; label: string }[] | undefined;
}) {
  const [action, setAction] = useState("");
  const [actor, setActor] = useState("");
  const [applied, setApplied] = useState({ action: "", actor: "" });
  const picker = props.people !== undefined;
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
        {picker ? (
          <>
            <Select
              label="Person"
              value={actor}
              onChange={setActor}
              options={[{ value: "", label: "Anyone" }, ...(props.people ?? [])]}
            />
            <Select
              label="Action"
              value={action}
              onChange={setAction}
              options={[
                { value: "", label: "Any action" },
                ...Object.entries(AUDIT_ACTIONS).map(([value, label]) => ({ value, label })),
              ]}
            />
          </>
        ) : (
          <>
            <Field
              label="Action"
              placeholder="e.g. provider.create"
              value={action}
              onChange={(e) => setAction(e.target.value)}
            />
            <Field label="Actor id" value={actor} onChange={(e) => setActor(e.target.value)} />
          </>
        )}
        <button type="submit">Filter</button>
      </form>
      {entries.isError ? <Notice>{messageOf(entries.error)}</Notice> : null}
      <table className="table audit-table">
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
              <td>
                {AUDIT_ACTIONS[e.action] ?? e.action}
                {e.targetName ? <span className="hint"> · {e.targetName}</span> : null}
              </td>
              <td>
                {picker ? (
                  actorText(e)
                ) : (
                  <>
                    {e.actorType}
                    {e.actorId ? <span className="hint"> {e.actorId.slice(0, 8)}</span> : null}
                  </>
                )}
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
