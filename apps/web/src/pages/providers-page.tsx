import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useParams } from "@tanstack/react-router";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Provider } from "../api/types.ts";
import { providersQuery } from "../components/agent-form.tsx";
import { ProviderEditForm } from "../components/edit-forms.tsx";
import { Notice } from "../components/forms.tsx";
import { ProviderForm, ProviderTestButton } from "../components/provider-form.tsx";
import { atLeast, useMe, useWorkspace } from "../components/session.ts";

export function ProvidersPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  const me = useMe();
  const providers = useQuery(providersQuery(wid));
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const canAdd = atLeast(membership?.role, "member");
  const canShare = atLeast(membership?.role, "admin");
  const mayManage = (p: Provider) => (p.personal ? p.createdBy === me.data?.user.id : canShare);
  return (
    <section aria-labelledby="providers-title">
      <div className="page-head">
        <h1 id="providers-title">Providers</h1>
        {canAdd && !adding ? (
          <button type="button" onClick={() => setAdding(true)}>
            Add provider
          </button>
        ) : null}
      </div>
      {adding ? <ProviderForm wid={wid} canShare={canShare} onCreated={() => setAdding(false)} /> : null}
      {providers.isError ? <Notice>{messageOf(providers.error)}</Notice> : null}
      {providers.data?.items.length === 0 ? <p>No providers yet.</p> : null}
      <ul className="cards">
        {providers.data?.items.map((p) => (
          <li key={p.id} className="card">
            <h2>
              {p.name} {p.personal ? <span className="badge">personal</span> : null}
            </h2>
            <dl>
              <dt>Kind</dt>
              <dd>{p.kind}</dd>
              <dt>Base URL</dt>
              <dd>{p.baseUrl}</dd>
              <dt>Key</dt>
              <dd>{p.apiKey ?? "none"}</dd>
              <dt>Models</dt>
              <dd>
                {p.models.length ? p.models.slice(0, 8).join(", ") + (p.models.length > 8 ? "…" : "") : "none listed"}
              </dd>
            </dl>
            {editing === p.id ? <ProviderEditForm wid={wid} provider={p} onDone={() => setEditing(null)} /> : null}
            {mayManage(p) && editing !== p.id ? (
              <div className="actions">
                <button type="button" className="secondary" onClick={() => setEditing(p.id)}>
                  Edit
                </button>
                <ProviderTestButton wid={wid} provider={p} />
                <DeleteButton
                  what={`provider ${p.name}`}
                  path={`/api/v1/workspaces/${wid}/providers/${p.id}`}
                  queryKey={["providers", wid]}
                />
              </div>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Delete with a confirmation step; shows why the server refused (e.g. still in use). */
export function DeleteButton(props: { what: string; path: string; queryKey: unknown[] }) {
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const remove = useMutation({
    mutationFn: () => api("DELETE", props.path),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: props.queryKey }),
  });
  if (!confirming) {
    return (
      <button type="button" className="danger" onClick={() => setConfirming(true)}>
        Delete
      </button>
    );
  }
  return (
    <fieldset className="confirm">
      <legend className="visually-hidden">Confirm deleting {props.what}</legend>
      <span>Delete {props.what}?</span>
      <button type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
        Yes, delete
      </button>
      <button type="button" className="secondary" onClick={() => setConfirming(false)}>
        Cancel
      </button>
      {remove.isError ? <Notice>{messageOf(remove.error)}</Notice> : null}
    </fieldset>
  );
}
