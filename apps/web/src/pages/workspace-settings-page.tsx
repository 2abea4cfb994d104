import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate, useParams } from "@tanstack/react-router";
import { useEffect, useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { WorkspaceImpact, WorkspaceView, WorkspaceWithPolicy } from "../api/types.ts";
import { agentsQuery } from "../components/agent-form.tsx";
import { useConfirm } from "../components/confirm-dialog.tsx";
import { Field, Notice, Select } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { atLeast, useWorkspace } from "../components/session.ts";

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `/w/$wid/settings`: rename, default agent, delete (owners and admins; deleting is for owners). */
export function WorkspaceSettingsPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  usePageTitle("Workspace settings", membership?.name);
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const { confirm, dialog } = useConfirm();
  const workspace = useQuery({
    queryKey: ["workspace", wid],
    queryFn: () => api<WorkspaceView>("GET", `/api/v1/workspaces/${wid}`),
  });
  const agents = useQuery(agentsQuery(wid));
  const [name, setName] = useState("");
  const [defaultAgent, setDefaultAgent] = useState("");
  useEffect(() => {
    if (workspace.data) {
      setName(workspace.data.name);
      setDefaultAgent(workspace.data.defaultAgentId ?? "");
    }
  }, [workspace.data]);
  const save = useMutation({
    mutationFn: () =>
      api<WorkspaceView>("PATCH", `/api/v1/workspaces/${wid}`, {
        ...(name.trim() !== workspace.data?.name ? { name } : {}),
        defaultAgentId: defaultAgent || null,
      }),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ["workspace", wid] });
      await queryClient.invalidateQueries({ queryKey: ["me"] });
    },
  });
  const requireTwoFactor = useMutation({
    // A refusal (TWO_FACTOR_REQUIRED: sign in with two-factor before turning it on) is shown next to the toggle.
    mutationFn: (on: boolean) =>
      api<WorkspaceWithPolicy>("PATCH", `/api/v1/workspaces/${wid}`, { requireTwoFactor: on }),
    onSuccess: (ws) => queryClient.setQueryData(["workspace", wid], ws),
  });
  const twoFactorSaved = requireTwoFactor.data;
  const twoFactorError = requireTwoFactor.error;
  const remove = useMutation({
    mutationFn: (confirmName: string) => api("DELETE", `/api/v1/workspaces/${wid}`, { confirmName }),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ["me"] });
      await navigate({ to: "/" });
    },
  });
  if (membership && !atLeast(membership.role, "admin"))
    return <Notice kind="info">Only owners and admins change workspace settings.</Notice>;
  const isOwner = membership?.role === "owner";
  const shared = agents.data?.items.filter((a) => !a.personal) ?? [];

  async function deleteWorkspace() {
    const ws = workspace.data;
    if (!ws) return;
    let impact: WorkspaceImpact | undefined;
    try {
      impact = await api<WorkspaceImpact>("GET", `/api/v1/workspaces/${wid}/impact`);
    } catch {
      impact = undefined;
    }
    const ok = await confirm({
      title: `Delete ${ws.name}?`,
      body: (
        <>
          <p>
            {impact
              ? `This deletes ${plural(impact.agents, "agent")} and ${plural(impact.sessions, "conversation")}, and ${plural(impact.members, "member")} lose access.`
              : "This deletes its agents and every conversation in it, and every member loses access."}{" "}
            Providers, API keys, invites and the audit trail go with it.
          </p>
          <p>This cannot be undone.</p>
        </>
      ),
      confirmLabel: "Delete workspace",
      typeToConfirm: ws.name,
    });
    if (ok) remove.mutate(ws.name);
  }

  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Workspace settings</h1>
      {workspace.isError ? <Notice>{messageOf(workspace.error)}</Notice> : null}
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <Field label="Workspace name" value={name} onChange={(e) => setName(e.target.value)} required />
        <Select
          label="Default agent"
          value={defaultAgent}
          onChange={setDefaultAgent}
          options={[
            { value: "", label: "None (the first agent)" },
            ...shared.map((a) => ({ value: a.id, label: a.name })),
          ]}
        />
        <small className="hint">New conversations start with this agent.</small>
        {save.isError ? <Notice>{messageOf(save.error)}</Notice> : null}
        {save.isSuccess ? <Notice kind="ok">Saved.</Notice> : null}
        <div>
          <button type="submit" disabled={!name.trim() || save.isPending}>
            {save.isPending ? "Saving…" : "Save"}
          </button>
        </div>
      </form>
      <section className="card" aria-labelledby="two-factor-title">
        <h2 id="two-factor-title">Two-factor</h2>
        <label className="check">
          <input
            type="checkbox"
            checked={!!(workspace.data as WorkspaceWithPolicy | undefined)?.requireTwoFactor}
            disabled={!workspace.data || requireTwoFactor.isPending}
            aria-describedby="two-factor-hint"
            onChange={async (e) => {
              const on = e.target.checked;
              const ok =
                !on ||
                (await confirm({
                  title: "Require two-factor for members?",
                  body: (
                    <p>
                      Members who signed in with only a password or an email link cannot open this workspace until they
                      set up an authenticator app in their account and sign in again. You too, if that is how you signed
                      in. Single sign-on counts; API keys keep working.
                    </p>
                  ),
                  confirmLabel: "Require two-factor",
                  danger: false,
                }));
              if (ok) requireTwoFactor.mutate(on);
            }}
          />
          Require two-factor for members
        </label>
        <small id="two-factor-hint" className="hint">
          Everyone must have signed in with a second factor (an authenticator app, or single sign-on) to use this
          workspace.
        </small>
        {twoFactorError ? <Notice>{messageOf(twoFactorError)}</Notice> : null}
        {twoFactorSaved ? (
          <Notice kind="ok">
            {twoFactorSaved.requireTwoFactor
              ? "Two-factor is now required in this workspace."
              : "Two-factor is no longer required here."}
          </Notice>
        ) : null}
      </section>
      {isOwner ? (
        <section className="card danger-zone" aria-labelledby="delete-title">
          <h2 id="delete-title">Delete this workspace</h2>
          <p>Deletes its agents, conversations, providers and API keys for everyone. Members lose access.</p>
          {remove.isError ? <Notice>{messageOf(remove.error)}</Notice> : null}
          <button type="button" className="danger" onClick={() => void deleteWorkspace()} disabled={remove.isPending}>
            Delete workspace…
          </button>
        </section>
      ) : null}
      {dialog}
    </section>
  );
}
