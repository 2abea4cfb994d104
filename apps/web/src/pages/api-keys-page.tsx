import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useParams } from "@tanstack/react-router";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { ApiKey, Page, Role } from "../api/types.ts";
import { useConfirm } from "../components/confirm-dialog.tsx";
import { Field, Notice, Select } from "../components/forms.tsx";
import { OpenAiPanel } from "../components/openai-panel.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { atLeast, useWorkspace } from "../components/session.ts";
import { CopyButton, roleOptions } from "./members-page.tsx";

/** `/w/$wid/api-keys`: the workspace's API keys; revoked ones hidden unless asked for. */
export function ApiKeysPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  usePageTitle("API keys", membership?.name);
  const queryClient = useQueryClient();
  const { confirm, dialog } = useConfirm();
  const [showRevoked, setShowRevoked] = useState(false);
  const keys = useQuery({
    queryKey: ["api-keys", wid],
    queryFn: () => api<Page<ApiKey>>("GET", `/api/v1/workspaces/${wid}/api-keys?limit=200`),
  });
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("member");
  const create = useMutation({
    mutationFn: () => api<{ key: string }>("POST", `/api/v1/workspaces/${wid}/api-keys`, { name, role }),
    onSuccess: () => {
      setName("");
      return queryClient.invalidateQueries({ queryKey: ["api-keys", wid] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api("DELETE", `/api/v1/workspaces/${wid}/api-keys/${id}`),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["api-keys", wid] }),
  });
  if (membership && !atLeast(membership.role, "admin"))
    return <Notice kind="info">Only owners and admins manage API keys.</Notice>;
  const all = keys.data?.items ?? [];
  const revokedCount = all.filter((k) => k.revokedAt).length;
  const shown = showRevoked ? all : all.filter((k) => !k.revokedAt);
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      <p className="hint">Programs use an API key to act in this workspace with the key's role.</p>
      {keys.isError ? <Notice>{messageOf(keys.error)}</Notice> : null}
      {revoke.isError ? <Notice>{messageOf(revoke.error)}</Notice> : null}
      <label className="inline-check">
        <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} /> Show revoked
        keys ({revokedCount})
      </label>
      {shown.length === 0 ? <p className="hint">No API keys yet.</p> : null}
      <ul className="cards">
        {shown.map((k) => (
          <li key={k.id} className="card">
            <strong>{k.name}</strong> <span className="badge">{k.role}</span> <code>{k.prefix}…</code>
            <span className="hint">
              {" "}
              {k.revokedAt
                ? "revoked"
                : k.lastUsedAt
                  ? `last used ${new Date(k.lastUsedAt).toLocaleString()}`
                  : "never used"}
            </span>{" "}
            {k.revokedAt ? null : (
              <button
                type="button"
                className="danger"
                aria-label={`Revoke ${k.name}`}
                onClick={async () => {
                  const ok = await confirm({
                    title: `Revoke the key ${k.name}?`,
                    body: (
                      <p>
                        Every program using it ({k.prefix}…) is refused from now on. This cannot be undone: you would
                        create a new key and put it in those programs.
                      </p>
                    ),
                    confirmLabel: "Revoke key",
                  });
                  if (ok) revoke.mutate(k.id);
                }}
              >
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <h2>New API key</h2>
        <Field label="Key name" value={name} onChange={(e) => setName(e.target.value)} />
        <Select
          label="Key role"
          value={role}
          onChange={(v) => setRole(v as Role)}
          options={roleOptions(membership?.role)}
        />
        {create.isError ? <Notice>{messageOf(create.error)}</Notice> : null}
        {create.data ? (
          <Notice kind="ok">
            Your new key (shown only now): <code className="invite-link">{create.data.key}</code>{" "}
            <CopyButton text={create.data.key} />
          </Notice>
        ) : null}
        <button type="submit" disabled={!name || create.isPending}>
          Create key
        </button>
        {!name ? <small className="disabled-why"> Name the key first.</small> : null}
      </form>
      <OpenAiPanel wid={wid} newKey={create.data?.key} />
      {dialog}
    </section>
  );
}
