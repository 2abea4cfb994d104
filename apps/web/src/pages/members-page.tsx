import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "@tanstack/react-router";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Invite, Member, Page, Role } from "../api/types.ts";
import { useConfirm } from "../components/confirm-dialog.tsx";
import { Field, Notice, Select } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { atLeast, useMe, useWorkspace } from "../components/session.ts";

const ROLES: Role[] = ["viewer", "member", "admin", "owner"];
export const roleOptions = (max: Role | undefined) =>
  ROLES.filter((r) => max && atLeast(max, r)).map((r) => ({ value: r, label: r }));

/** What each role may do, in the words the role-change confirmation uses. */
const ROLE_MEANS: Record<Role, string> = {
  viewer: "can read conversations shared with them and the agent list, but cannot chat",
  member: "can chat with agents and create their own agents",
  admin: "can manage agents, providers, members, invites and API keys",
  owner:
    "has full control: can delete the workspace, remove other owners and make anyone an owner. Only another owner can undo this",
};

/** A button that copies text and says so. */
export function CopyButton(props: { text: string; label?: string }) {
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
      {copied ? "Copied" : (props.label ?? "Copy")}
    </button>
  );
}

export function MembersPage() {
  const { wid } = useParams({ strict: false }) as { wid: string };
  const membership = useWorkspace(wid);
  usePageTitle("Members", membership?.name);
  const me = useMe();
  const queryClient = useQueryClient();
  const { confirm, dialog } = useConfirm();
  const role = membership?.role;
  const canManage = atLeast(role, "admin");
  const members = useQuery({
    queryKey: ["members", wid],
    queryFn: () => api<Page<Member>>("GET", `/api/v1/workspaces/${wid}/members?limit=200`),
  });
  const change = useMutation({
    mutationFn: (v: { userId: string; role?: Role; remove?: boolean }) =>
      v.remove
        ? api("DELETE", `/api/v1/workspaces/${wid}/members/${v.userId}`)
        : api("PATCH", `/api/v1/workspaces/${wid}/members/${v.userId}`, { role: v.role }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["members", wid] }),
  });
  const workspaceName = membership?.name ?? "this workspace";

  async function changeRole(m: Member, next: Role) {
    const ok = await confirm({
      title: `Make ${m.name} ${next === "admin" || next === "owner" ? "an" : "a"} ${next}?`,
      body: (
        <p>
          {m.name} is now {m.role === "admin" || m.role === "owner" ? "an" : "a"} {m.role}. As {next} they{" "}
          {ROLE_MEANS[next]}.
        </p>
      ),
      confirmLabel: `Make ${next}`,
      // Granting ownership cannot be undone by the granter; lowering a role is routine.
      danger: next === "owner",
    });
    if (ok) change.mutate({ userId: m.userId, role: next });
  }

  async function remove(m: Member) {
    const ok = await confirm({
      title: `Remove ${m.name} from ${workspaceName}?`,
      body: (
        <p>
          {m.name} loses access at once: they can no longer open this workspace or its conversations, and the API keys
          they created here are revoked. Their past conversations stay. You can invite them again later.
        </p>
      ),
      confirmLabel: "Remove member",
    });
    if (ok) change.mutate({ userId: m.userId, remove: true });
  }

  const mayEdit = (m: Member) => canManage && m.userId !== me.data?.user.id && atLeast(role, m.role);
  return (
    <section aria-labelledby="members-title">
      <div className="page-head">
        <h1 id="members-title">Members</h1>
        {canManage ? (
          <Link to="/w/$wid/api-keys" params={{ wid }}>
            API keys
          </Link>
        ) : null}
      </div>
      {change.isError ? <Notice>{messageOf(change.error)}</Notice> : null}
      <table className="table cards members-table">
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
              <td data-label="Name">{m.name}</td>
              <td data-label="Email">{m.email}</td>
              <td data-label="Role">
                {mayEdit(m) ? (
                  <select
                    aria-label={`Role of ${m.name}`}
                    value={m.role}
                    onChange={(e) => void changeRole(m, e.target.value as Role)}
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
                <td className="row-actions">
                  {mayEdit(m) ? (
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Remove ${m.name}`}
                      onClick={() => void remove(m)}
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
      {canManage ? <Invites wid={wid} role={role} confirm={confirm} /> : null}
      {dialog}
    </section>
  );
}

function Invites(props: { wid: string; role: Role | undefined; confirm: ReturnType<typeof useConfirm>["confirm"] }) {
  const { wid, role, confirm } = props;
  const queryClient = useQueryClient();
  const [email, setEmail] = useState("");
  const [inviteRole, setInviteRole] = useState<Role>("member");
  const invites = useQuery({
    queryKey: ["invites", wid],
    queryFn: () => api<Page<Invite>>("GET", `/api/v1/workspaces/${wid}/invites?limit=100`),
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["invites", wid] });
  const invite = useMutation({
    mutationFn: () =>
      api<{ delivery: "email" | "link"; url?: string }>("POST", `/api/v1/workspaces/${wid}/invites`, {
        email,
        role: inviteRole,
      }),
    onSuccess: () => {
      setEmail("");
      return refresh();
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api("DELETE", `/api/v1/workspaces/${wid}/invites/${id}`),
    onSettled: refresh,
  });
  const resend = useMutation({
    mutationFn: (id: string) =>
      api<{ delivery: "email" | "link"; url?: string; invite: Invite }>(
        "POST",
        `/api/v1/workspaces/${wid}/invites/${id}/resend`,
      ),
    onSettled: refresh,
  });
  const open = invites.data?.items.filter((i) => i.status === "pending" || i.status === "expired") ?? [];
  const link = resend.data?.url ?? invite.data?.url;
  return (
    <>
      <section aria-labelledby="invites-title">
        <h2 id="invites-title">Pending invites</h2>
        {revoke.isError ? <Notice>{messageOf(revoke.error)}</Notice> : null}
        {resend.isError ? <Notice>{messageOf(resend.error)}</Notice> : null}
        {resend.data?.delivery === "email" ? (
          <Notice kind="ok">Sent again to {resend.data.invite.email}. The earlier link no longer works.</Notice>
        ) : null}
        {open.length === 0 ? (
          <p className="hint">No pending invites.</p>
        ) : (
          <table className="table cards invites-table">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {open.map((i) => (
                <tr key={i.id}>
                  <td data-label="Email">{i.email}</td>
                  <td data-label="Role">{i.role}</td>
                  <td data-label="Status">
                    {i.status === "expired" ? "expired" : `valid until ${new Date(i.expiresAt).toLocaleDateString()}`}
                  </td>
                  <td className="row-actions">
                    <button
                      type="button"
                      className="secondary"
                      aria-label={`Resend the invite to ${i.email}`}
                      onClick={() => resend.mutate(i.id)}
                      disabled={resend.isPending}
                    >
                      Resend
                    </button>{" "}
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Revoke the invite to ${i.email}`}
                      onClick={async () => {
                        const ok = await confirm({
                          title: `Revoke the invite to ${i.email}?`,
                          body: <p>The link they were sent stops working at once. You can invite them again later.</p>,
                          confirmLabel: "Revoke invite",
                        });
                        if (ok) revoke.mutate(i.id);
                      }}
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
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
        {invite.data?.delivery === "email" && !resend.data ? (
          <Notice kind="ok">Invitation sent by email.</Notice>
        ) : null}
        {link ? (
          <Notice kind="ok">
            Send them this link (it works once): <code className="invite-link">{link}</code> <CopyButton text={link} />
          </Notice>
        ) : null}
        <button type="submit" disabled={!email || invite.isPending}>
          Invite
        </button>
      </form>
    </>
  );
}
