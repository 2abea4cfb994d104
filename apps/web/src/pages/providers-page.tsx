import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useParams } from "@tanstack/react-router";
import { useEffect, useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Provider } from "../api/types.ts";
import { providersQuery } from "../components/agent-form.tsx";
import { useConfirm } from "../components/confirm-dialog.tsx";
import { ProviderEditForm } from "../components/edit-forms.tsx";
import { focusAfterRemoval, focusLater, useFocusOnMount } from "../components/focus.ts";
import { Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { ProviderForm, ProviderTestButton } from "../components/provider-form.tsx";
import { atLeast, useMe, useWorkspace } from "../components/session.ts";

export function ProvidersPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  const me = useMe();
  const queryClient = useQueryClient();
  const providers = useQuery(providersQuery(wid));
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const { confirm, dialog } = useConfirm();
  const focusForm = useFocusOnMount<HTMLDivElement>("select, input");
  const canAdd = atLeast(membership?.role, "member");
  const canShare = atLeast(membership?.role, "admin");
  const mayManage = (p: Provider) => (p.personal ? p.createdBy === me.data?.user.id : canShare);
  usePageTitle("Providers", membership?.name);
  // Linked from a chat error ("Check the provider", #<providerId>): land on that provider.
  const loaded = providers.isSuccess;
  useEffect(() => {
    const id = window.location.hash.slice(1);
    if (loaded && id) focusLater(() => document.getElementById(`provider-${id}`));
  }, [loaded]);
  const addButton = () => document.getElementById("add-provider");
  const remove = useMutation({
    mutationFn: (p: Provider) => api("DELETE", `/api/v1/workspaces/${wid}/providers/${p.id}`),
  });

  async function onDelete(p: Provider, item: HTMLElement | null) {
    const ok = await confirm({
      title: `Delete provider ${p.name}?`,
      body: "Agents cannot use it any more; Reef refuses while an agent still uses it. Its stored key is deleted.",
      confirmLabel: "Delete provider",
    });
    if (!ok) return;
    // Before the card goes: where focus should land (the next card's Delete, else Add provider).
    const refocus = focusAfterRemoval(item, "button.danger", addButton);
    remove.mutate(p, {
      onSuccess: async () => {
        await queryClient.invalidateQueries({ queryKey: ["providers", wid] });
        refocus();
      },
    });
  }

  return (
    <section aria-labelledby="providers-title">
      <div className="page-head">
        <h1 id="providers-title">Providers</h1>
        {canAdd && !adding ? (
          <button type="button" id="add-provider" onClick={() => setAdding(true)}>
            Add provider
          </button>
        ) : null}
      </div>
      {!canAdd ? <p className="hint">Viewers can see the providers but not add them.</p> : null}
      {adding ? (
        <div ref={focusForm}>
          <ProviderForm
            wid={wid}
            canShare={canShare}
            onCreated={(p) => {
              setAdding(false);
              focusLater(() => document.getElementById(`provider-${p.id}`));
            }}
            onCancel={() => {
              setAdding(false);
              focusLater(addButton);
            }}
          />
        </div>
      ) : null}
      {providers.isError ? <Notice>{messageOf(providers.error)}</Notice> : null}
      {remove.isError ? <Notice>{messageOf(remove.error)}</Notice> : null}
      {providers.data?.items.length === 0 ? <p>No providers yet.</p> : null}
      <ul className="cards">
        {providers.data?.items.map((p) => (
          <li key={p.id} id={p.id} className="card">
            <h2 id={`provider-${p.id}`} tabIndex={-1}>
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
            {editing === p.id ? (
              <div ref={focusForm}>
                <ProviderEditForm
                  wid={wid}
                  provider={p}
                  onDone={() => {
                    setEditing(null);
                    focusLater(() => document.getElementById(`edit-${p.id}`));
                  }}
                />
              </div>
            ) : null}
            {mayManage(p) && editing !== p.id ? (
              <div className="actions">
                <button type="button" className="secondary" id={`edit-${p.id}`} onClick={() => setEditing(p.id)}>
                  Edit
                </button>
                <ProviderTestButton wid={wid} provider={p} />
                <button
                  type="button"
                  className="danger"
                  disabled={remove.isPending}
                  onClick={(e) => void onDelete(p, e.currentTarget.closest("li"))}
                >
                  Delete
                </button>
              </div>
            ) : !mayManage(p) ? (
              <p className="hint">
                {p.personal ? "Only the person who added it can change it." : "Only admins can change this provider."}
              </p>
            ) : null}
          </li>
        ))}
      </ul>
      {dialog}
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
