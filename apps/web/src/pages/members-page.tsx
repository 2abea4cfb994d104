import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useParams } from "@tanstack/react-router";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { ApiKey, Member, Page, Role } from "../api/types.ts";
import { Field, Notice, Select } from "../components/forms.tsx";
import { atLeast, useMe, useWorkspace } from "../components/session.ts";

const ROLES: Role[] = ["viewer", "member", "admin", "owner"];
const roleOptions = (max: Role | undefined) =>
  ROLES.filter((r) => max && atLeast(max, r)).map((r) => ({ value: r, label: r }));

function CopyButton(props: { text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="secondary"
      onClick={() =>
        void navigator.clipboard?.writeText(props.text).then(
          () => setCopied(true),
          () => setCopied(false),
        )
      }
    >
      {copied ? "Copied" : "Copy"}
    </button>
  );
}

export function MembersPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  const me = useMe();
  const queryClient = useQueryClient();
  const role = membership?.role;
  const canManage = atLeast(role, "admin");
  const members = useQuery({
    queryKey: ["members", wid],
    queryFn: () => api<Page<Member>>("GET", `/api/v1/workspaces/${wid}/members?limit=200`),
  });
  const [email, setEmail] = useState("");
  const [inviteRole, setInviteRole] = useState<Role>("member");
  const invite = useMutation({
    mutationFn: () =>
      api<{ delivery: "email" | "link"; url?: string }>("POST", `/api/v1/workspaces/${wid}/invites`, {
        email,
        role: inviteRole,
      }),
    onSuccess: () => setEmail(""),
  });
  const change = useMutation({
    mutationFn: (v: { userId: string; role?: Role; remove?: boolean }) =>
      v.remove
        ? api("DELETE", `/api/v1/workspaces/${wid}/members/${v.userId}`)
        : api("PATCH", `/api/v1/workspaces/${wid}/members/${v.userId}`, { role: v.role }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["members", wid] }),
  });
  return (
    <section aria-labelledby="members-title">
      <h1 id="members-title">Members</h1>
      {change.isError ? <Notice>{messageOf(change.error)}</Notice> : null}
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            {canManage ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {members.data?.items.map((m) => (
            <tr key={m.userId}>
              <td>{m.name}</td>
              <td>{m.email}</td>
              <td>
                {canManage && m.userId !== me.data?.user.id && atLeast(role, m.role) ? (
                  <select
                    aria-label={`Role of ${m.name}`}
                    value={m.role}
                    onChange={(e) => change.mutate({ userId: m.userId, role: e.target.value as Role })}
                  >
                    {roleOptions(role).map((o) => (
                      <option key={o.value} value={o.value}>
                        {o.label}
                      </option>
                    ))}
                  </select>
                ) : (
                  m.role
                )}
              </td>
              {canManage ? (
                <td>
                  {m.userId !== me.data?.user.id && atLeast(role, m.role) ? (
                    <button
                      type="button"
                      className="danger"
                      onClick={() => change.mutate({ userId: m.userId, remove: true })}
                    >
                      Remove
                    </button>
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      {canManage ? (
        <form
          className="card"
          onSubmit={(e) => {
            e.preventDefault();
            invite.mutate();
          }}
        >
          <h2>Invite someone</h2>
          <Field label="Their email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
          <Select
            label="Role"
            value={inviteRole}
            onChange={(v) => setInviteRole(v as Role)}
            options={roleOptions(role)}
          />
          {invite.isError ? <Notice>{messageOf(invite.error)}</Notice> : null}
          {invite.data?.delivery === "email" ? <Notice kind="ok">Invitation sent by email.</Notice> : null}
          {invite.data?.url ? (
            <Notice kind="ok">
              Send them this link (it works once): <code>{invite.data.url}</code> <CopyButton text={invite.data.url} />
            </Notice>
          ) : null}
          <button type="submit" disabled={!email || invite.isPending}>
            Invite
          </button>
        </form>
      ) : null}
      {canManage ? <ApiKeys wid={wid} role={role} /> : null}
    </section>
  );
}

function ApiKeys(props: { wid: string; role: Role | undefined }) {
  const queryClient = useQueryClient();
  const keys = useQuery({
    queryKey: ["api-keys", props.wid],
    queryFn: () => api<Page<ApiKey>>("GET", `/api/v1/workspaces/${props.wid}/api-keys?limit=200`),
  });
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("member");
  const create = useMutation({
    mutationFn: () => api<{ key: string }>("POST", `/api/v1/workspaces/${props.wid}/api-keys`, { name, role }),
    onSuccess: () => {
      setName("");
      return queryClient.invalidateQueries({ queryKey: ["api-keys", props.wid] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api("DELETE", `/api/v1/workspaces/${props.wid}/api-keys/${id}`),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["api-keys", props.wid] }),
  });
  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <ul className="cards">
        {keys.data?.items.map((k) => (
          <li key={k.id} className="card">
            <strong>{k.name}</strong> <span className="badge">{k.role}</span> <code>{k.prefix}…</code>
            <span className="hint">
              {" "}
              {k.revokedAt
                ? "revoked"
                : k.lastUsedAt
                  ? `last used ${new Date(k.lastUsedAt).toLocaleString()}`
                  : "never used"}
            </span>
            {k.revokedAt ? null : (
              <button type="button" className="danger" onClick={() => revoke.mutate(k.id)}>
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
        <Field label="Key name" value={name} onChange={(e) => setName(e.target.value)} />
        <Select label="Key role" value={role} onChange={(v) => setRole(v as Role)} options={roleOptions(props.role)} />
        {create.isError ? <Notice>{messageOf(create.error)}</Notice> : null}
        {create.data ? (
          <Notice kind="ok">
            Your new key (shown only now): <code>{create.data.key}</code> <CopyButton text={create.data.key} />
          </Notice>
        ) : null}
        <button type="submit" disabled={!name || create.isPending}>
          Create key
        </button>
      </form>
    </section>
  );
}
