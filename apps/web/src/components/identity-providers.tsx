import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { IdentityProvider, IdentityProviderKind, Page } from "../api/types.ts";
import { useConfirm } from "./confirm-dialog.tsx";
import { focusLater } from "./focus.ts";
import { Notice } from "./forms.tsx";
import { IdentityProviderForm, KIND_NAME } from "./identity-provider-form.tsx";
import { useAdminWorkspaces } from "./sso-provisioning-fields.tsx";
import { CopyValue } from "./sso-setup-help.tsx";
import "./sso-settings.css";

/** Every identity provider, page by page (the sign-in policy card also asks whether one is enabled). */
export function useIdentityProviders() {
  return useInfiniteQuery({
    queryKey: ["identity-providers"],
    initialPageParam: "",
    queryFn: ({ pageParam }) =>
      api<Page<IdentityProvider>>(
        "GET",
        `/api/v1/admin/identity-providers?limit=50${pageParam ? `&cursor=${pageParam}` : ""}`,
      ),
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
}

type Mode =
  | { name: "list" }
  | { name: "choose" }
  | { name: "new"; kind: IdentityProviderKind }
  | { name: "edit"; provider: IdentityProvider; saved?: "created" | "updated" };

/**
 * "Single sign-on" on the admin page: the identity providers people sign in with (OpenID Connect or SAML 2.0), who
 * they let in and where new people land. Add, edit, switch off and delete.
 */
export function IdentityProvidersSection() {
  const providers = useIdentityProviders();
  const workspaces = useAdminWorkspaces();
  const queryClient = useQueryClient();
  const { confirm, dialog } = useConfirm();
  const [mode, setMode] = useState<Mode>({ name: "list" });
  // Set in the change event itself, so the controlled switch never snaps back before the save starts.
  const [saving, setSaving] = useState<Record<string, boolean>>({});
  const invalidate = () => queryClient.invalidateQueries({ queryKey: ["identity-providers"] });
  const toggle = useMutation({
    mutationFn: (v: { p: IdentityProvider; enabled: boolean }) =>
      api<IdentityProvider>("PATCH", `/api/v1/admin/identity-providers/${v.p.id}`, {
        kind: v.p.kind,
        enabled: v.enabled,
      }),
    onSettled: async (_d, _e, v) => {
      await invalidate();
      setSaving(({ [v.p.id]: _, ...rest }) => rest);
    },
  });
  const remove = useMutation({
    mutationFn: (p: IdentityProvider) => api("DELETE", `/api/v1/admin/identity-providers/${p.id}`),
    onSuccess: () => focusLater(() => document.getElementById("sso-add")),
    onSettled: invalidate,
  });
  const items = providers.data?.pages.flatMap((p) => p.items) ?? [];
  const workspaceName = (id: string | null) =>
    id === null
      ? "Their own personal workspace"
      : (workspaces.data?.pages.flatMap((p) => p.items).find((w) => w.id === id)?.name ?? "A workspace");

  async function deleteProvider(p: IdentityProvider) {
    const ok = await confirm({
      title: `Delete the provider ${p.name}?`,
      body: (
        <>
          <p>
            Nobody can sign in with {p.name} any more, and its button leaves the sign-in page. The accounts it created
            stay, with their workspaces; people who also have a password can still sign in with it.
          </p>
          <p>To stop sign-ins for a while instead, switch it off.</p>
        </>
      ),
      confirmLabel: "Delete provider",
    });
    if (ok) remove.mutate(p);
  }

  return (
    <section className="sso-section" aria-labelledby="sso-title">
      <h2 id="sso-title">Single sign-on</h2>
      <p className="hint sso-intro">
        Let people sign in with your organisation's identity provider. New people get an account the first time they
        sign in, placed by the provider's rules; someone who already has a password account links it once by entering
        that password.
      </p>
      {providers.isError ? <Notice>{messageOf(providers.error)}</Notice> : null}
      {toggle.isError ? <Notice>{messageOf(toggle.error)}</Notice> : null}
      {remove.isError ? <Notice>{messageOf(remove.error)}</Notice> : null}
      {remove.isSuccess ? <Notice kind="ok">Provider deleted.</Notice> : null}
      {providers.isSuccess && items.length === 0 ? <p>No identity providers yet.</p> : null}
      {items.length ? (
        <ul className="cards sso-list" aria-label="Identity providers">
          {items.map((p) => {
            // While a switch is saving it shows the new state (the list refreshes when the save is done).
            const on = saving[p.id] ?? p.enabled;
            return (
              <li key={p.id} className="card">
                <div className="connector-title">
                  <span className="badge">{p.kind === "oidc" ? "OIDC" : "SAML"}</span>
                  <h3>{p.name}</h3>
                  <code>{p.slug}</code>
                </div>
                <label className="check">
                  <input
                    type="checkbox"
                    checked={on}
                    disabled={toggle.isPending}
                    aria-label={`${p.name} enabled`}
                    onChange={(e) => {
                      const enabled = e.target.checked;
                      setSaving((m) => ({ ...m, [p.id]: enabled }));
                      toggle.mutate({ p, enabled });
                    }}
                  />
                  {on ? "Enabled: shown on the sign-in page" : "Off: nobody can sign in with it"}
                </label>
                <dl>
                  <dt>Email domains</dt>
                  <dd>{p.allowedDomains.length ? p.allowedDomains.join(", ") : "Any"}</dd>
                  <dt>New people land in</dt>
                  <dd>{workspaceName(p.defaultWorkspaceId)}</dd>
                  {p.defaultWorkspaceId ? (
                    <>
                      <dt>Role</dt>
                      <dd>
                        {p.defaultRole}
                        {p.groupClaim ? ` (or from the ${p.groupClaim} groups)` : ""}
                      </dd>
                    </>
                  ) : null}
                </dl>
                <CopyValue label={p.kind === "oidc" ? "Redirect URI" : "ACS URL"} value={p.callbackUrl} />
                <div className="actions">
                  <button
                    type="button"
                    className="secondary"
                    aria-label={`Edit ${p.name}`}
                    onClick={() => setMode({ name: "edit", provider: p })}
                  >
                    Edit
                  </button>
                  <button
                    type="button"
                    className="danger"
                    aria-label={`Delete ${p.name}`}
                    onClick={() => void deleteProvider(p)}
                  >
                    Delete
                  </button>
                </div>
              </li>
            );
          })}
        </ul>
      ) : null}
      {providers.hasNextPage ? (
        <button type="button" className="secondary" onClick={() => void providers.fetchNextPage()}>
          Load more
        </button>
      ) : null}
      {mode.name === "list" ? (
        <div className="actions">
          <button type="button" id="sso-add" onClick={() => setMode({ name: "choose" })}>
            Add provider
          </button>
        </div>
      ) : null}
      {mode.name === "choose" ? (
        <KindChooser onChoose={(kind) => setMode({ name: "new", kind })} onCancel={() => setMode({ name: "list" })} />
      ) : null}
      {mode.name === "edit" && mode.saved ? (
        <Notice kind="ok">
          {mode.saved === "created"
            ? `${mode.provider.name} added. Register the ${mode.provider.kind === "oidc" ? "redirect URI" : "details below"} at the identity provider, then try “Sign in with ${mode.provider.name}” in a private window.`
            : "Saved."}
        </Notice>
      ) : null}
      {mode.name === "new" || mode.name === "edit" ? (
        <IdentityProviderForm
          key={mode.name === "edit" ? `${mode.provider.id}-${mode.provider.updatedAt}` : mode.kind}
          kind={mode.name === "new" ? mode.kind : mode.provider.kind}
          {...(mode.name === "edit" ? { provider: mode.provider } : {})}
          onSaved={(provider, created) => setMode({ name: "edit", provider, saved: created ? "created" : "updated" })}
          onCancel={() => {
            setMode({ name: "list" });
            focusLater(() => document.getElementById("sso-add"));
          }}
        />
      ) : null}
      {dialog}
    </section>
  );
}

/** OpenID Connect or SAML 2.0: the first question when adding a provider. */
function KindChooser(props: { onChoose: (k: IdentityProviderKind) => void; onCancel: () => void }) {
  return (
    <div className="card sso-chooser">
      <h3>Add an identity provider</h3>
      <ul className="sso-kinds" aria-label="Kinds of identity provider">
        <li>
          <button type="button" className="sso-kind" onClick={() => props.onChoose("oidc")}>
            <strong>{KIND_NAME.oidc}</strong>
          </button>
          <small className="hint">Keycloak, Entra ID, Google, Okta, Authentik, GitLab… Most providers speak it.</small>
        </li>
        <li>
          <button type="button" className="sso-kind" onClick={() => props.onChoose("saml")}>
            <strong>{KIND_NAME.saml}</strong>
          </button>
          <small className="hint">
            ADFS, Shibboleth, older Okta or Entra set-ups: when OpenID Connect is not offered.
          </small>
        </li>
      </ul>
      <button type="button" className="secondary" onClick={props.onCancel}>
        Cancel
      </button>
    </div>
  );
}
