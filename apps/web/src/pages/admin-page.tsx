import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, messageOf } from "../api/client.ts";
import type { Page, Runtime } from "../api/types.ts";
import { AuditTable } from "../components/audit-table.tsx";
import { useConfirm } from "../components/confirm-dialog.tsx";
import { ConnectorSettingsForm } from "../components/connector-settings.tsx";
import { Field, Notice } from "../components/forms.tsx";
import { IdentityProvidersSection } from "../components/identity-providers.tsx";
import { usePageTitle } from "../components/page-title.ts";
import {
  EmailForm,
  GrantableToolsForm,
  IdleTimeoutForm,
  ProviderHostsForm,
  PublicUrlForm,
  platformSettingsQuery,
  ResourceCapsForm,
} from "../components/platform-settings.tsx";
import { useMe } from "../components/session.ts";
import { SignInPolicyForm } from "../components/sign-in-policy.tsx";

interface AdminUser {
  id: string;
  email: string;
  name: string;
  platformRole: "super_admin" | "user";
  deactivated: boolean;
  createdAt: string;
  /** A confirmed authenticator: only then is there two-factor to reset. */
  twoFactorEnabled: boolean;
}
interface AdminWorkspace {
  id: string;
  name: string;
  memberCount: number;
  owners: { email: string }[];
}

const mb = (bytes: number | null) => (bytes === null ? "–" : `${Math.round(bytes / 1024 / 1024)} MB`);

/** Which idle tier a workspace's gateway is in: active (answers now), paused (resumes in about a second), stopped. */
function tierOf(r: Runtime): string {
  if (r.state !== "running") return r.state === "starting" || r.state === "queued" ? "Waking" : "Stopped";
  if (!r.pausedAt) return "Active";
  return `Paused${r.swappedOutAt ? ", swapped out," : ""} since ${new Date(r.pausedAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
}

/** Operators only: users, workspaces, runtimes and the platform audit trail. */
export function AdminPage() {
  const me = useMe();
  usePageTitle("Administration");
  const queryClient = useQueryClient();
  const [q, setQ] = useState("");
  const [search, setSearch] = useState("");
  const users = useInfiniteQuery({
    queryKey: ["admin-users", search],
    initialPageParam: "",
    queryFn: ({ pageParam }) =>
      api<Page<AdminUser>>(
        "GET",
        `/api/v1/admin/users?limit=50${search ? `&q=${encodeURIComponent(search)}` : ""}${pageParam ? `&cursor=${pageParam}` : ""}`,
      ),
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const workspaces = useQuery({
    queryKey: ["admin-workspaces"],
    queryFn: () => api<Page<AdminWorkspace>>("GET", "/api/v1/admin/workspaces?limit=100"),
  });
  const runtimes = useQuery({
    queryKey: ["admin-runtimes"],
    queryFn: () => api<Page<Runtime>>("GET", "/api/v1/admin/runtimes?limit=100"),
    refetchInterval: 10_000,
  });
  const setActive = useMutation({
    mutationFn: (v: { id: string; deactivated: boolean }) =>
      api("PATCH", `/api/v1/admin/users/${v.id}`, { deactivated: v.deactivated }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["admin-users"] }),
  });
  const resetTwoFactor = useMutation({
    mutationFn: (id: string) => api("POST", `/api/v1/admin/users/${id}/two-factor/reset`),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["admin-users"] }),
  });
  const stopRuntime = useMutation({
    mutationFn: (wid: string) => api("POST", `/api/v1/admin/runtimes/${wid}/stop`),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["admin-runtimes"] }),
  });
  // Deactivate and Stop go through the confirmation dialog (H4).
  const { confirm, dialog } = useConfirm();
  if (me.data?.user.platformRole !== "super_admin") return <Notice kind="info">Operators only.</Notice>;
  const wsName = (id: string) => workspaces.data?.items.find((w) => w.id === id)?.name ?? id.slice(0, 8);
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Administration</h1>
      <h2 id="admin-users-title">Users</h2>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(q.trim());
        }}
      >
        <Field label="Search users" value={q} onChange={(e) => setQ(e.target.value)} />
        <button type="submit">Search</button>
      </form>
      {setActive.isError ? <Notice>{messageOf(setActive.error)}</Notice> : null}
      {stopRuntime.isError ? <Notice>{messageOf(stopRuntime.error)}</Notice> : null}
      {resetTwoFactor.isError ? <Notice>{messageOf(resetTwoFactor.error)}</Notice> : null}
      {resetTwoFactor.isSuccess ? (
        <Notice kind="ok">Two-factor reset: they set up a new authenticator at their next sign-in.</Notice>
      ) : null}
      <table className="table cards" aria-labelledby="admin-users-title">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {users.data?.pages
            .flatMap((p) => p.items)
            .map((u) => (
              <tr key={u.id}>
                <td data-label="Name">
                  {u.name}
                  {u.twoFactorEnabled ? (
                    <>
                      {" "}
                      <span className="badge badge-ok" aria-hidden="true">
                        2FA
                      </span>
                      <span className="visually-hidden">(two-factor on)</span>
                    </>
                  ) : null}
                </td>
                <td data-label="Email">{u.email}</td>
                <td data-label="Role">{u.platformRole === "super_admin" ? "operator" : "user"}</td>
                <td data-label="Status">
                  {u.deactivated ? "deactivated " : "active "}
                  {u.id === me.data?.user.id ? null : (
                    <button
                      type="button"
                      className={u.deactivated ? "secondary" : "danger"}
                      aria-label={`${u.deactivated ? "Reactivate" : "Deactivate"} ${u.name}`}
                      onClick={async () => {
                        const ok =
                          u.deactivated ||
                          (await confirm({
                            title: `Deactivate ${u.name}?`,
                            body: (
                              <p>
                                {u.name} ({u.email}) is signed out everywhere and cannot sign in until reactivated.
                                Their API keys stop working. Their workspaces and conversations stay.
                              </p>
                            ),
                            confirmLabel: "Deactivate user",
                          }));
                        if (ok) setActive.mutate({ id: u.id, deactivated: !u.deactivated });
                      }}
                    >
                      {u.deactivated ? "Reactivate" : "Deactivate"}
                    </button>
                  )}
                  {/* Only someone with an authenticator has one to reset; operators reset their own on the account page. */}
                  {u.twoFactorEnabled && u.id !== me.data?.user.id ? (
                    <>
                      {" "}
                      <button
                        type="button"
                        className="secondary"
                        aria-label={`Reset two-factor of ${u.name}`}
                        onClick={async () => {
                          const ok = await confirm({
                            title: `Reset two-factor for ${u.name}?`,
                            body: (
                              <p>
                                {u.name} ({u.email}) loses their authenticator app and recovery codes, and is signed out
                                everywhere. They sign in with their password again and set up a new authenticator if
                                two-factor is required. Do this only once you are sure it is really them asking.
                              </p>
                            ),
                            confirmLabel: "Reset two-factor",
                          });
                          if (ok) resetTwoFactor.mutate(u.id);
                        }}
                      >
                        Reset two-factor
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
        </tbody>
      </table>
      {users.hasNextPage ? (
        <button type="button" className="secondary" onClick={() => void users.fetchNextPage()}>
          More users
        </button>
      ) : null}
      <h2>Workspaces</h2>
      <table className="table cards">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Members</th>
            <th scope="col">Owners</th>
          </tr>
        </thead>
        <tbody>
          {workspaces.data?.items.map((w) => (
            <tr key={w.id}>
              <td data-label="Name">{w.name}</td>
              <td data-label="Members">{w.memberCount}</td>
              <td data-label="Owners">{w.owners.map((o) => o.email).join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Runtimes</h2>
      <table className="table cards">
        <thead>
          <tr>
            <th scope="col">Workspace</th>
            <th scope="col">State</th>
            <th scope="col">Tier</th>
            <th scope="col">Memory</th>
            <th scope="col">Last activity</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {runtimes.data?.items.map((r) => (
            <tr key={r.workspaceId}>
              <td data-label="Workspace">{wsName(r.workspaceId)}</td>
              <td data-label="State">
                {r.state}
                {r.failureReason ? <span className="field-error"> {r.failureReason}</span> : null}
              </td>
              <td data-label="Tier">{tierOf(r)}</td>
              <td data-label="Memory">{mb(r.rssBytes)}</td>
              <td data-label="Last activity">{r.lastActivityAt ? new Date(r.lastActivityAt).toLocaleString() : "–"}</td>
              <td>
                {r.state === "running" || r.state === "failed" ? (
                  <button
                    type="button"
                    className="danger"
                    aria-label={`Stop ${wsName(r.workspaceId)}`}
                    onClick={async () => {
                      const ok = await confirm({
                        title: `Stop the workspace ${wsName(r.workspaceId)}?`,
                        body: (
                          <p>
                            Its gateway stops now: answers being written are cut off, and the next message waits while
                            it starts again.
                          </p>
                        ),
                        confirmLabel: "Stop runtime",
                      });
                      if (ok) stopRuntime.mutate(r.workspaceId);
                    }}
                  >
                    Stop
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <IdentityProvidersSection />
      <SignInPolicySection />
      <PlatformSettingsSection />
      <h2>Platform audit trail</h2>
      <AuditTable path="/api/v1/admin/audit" queryKey={["admin-audit"]} />
      {dialog}
    </section>
  );
}

/** Under single sign-on: whether it is required, and whether everyone needs a second factor. */
function SignInPolicySection() {
  const settings = useQuery(platformSettingsQuery);
  if (!settings.data) return null;
  return (
    <>
      <h3 id="sign-in-policy">Sign-in policy</h3>
      <SignInPolicyForm settings={settings.data} submitLabel="Save sign-in policy" />
    </>
  );
}

/** Public URL, email, idle timeout and limits: editable any time (the first three are the first-run wizard's). */
function PlatformSettingsSection() {
  const settings = useQuery(platformSettingsQuery);
  if (settings.isPending) return null;
  if (settings.isError) return <Notice>{messageOf(settings.error)}</Notice>;
  const s = settings.data;
  return (
    <div>
      <h2>Settings</h2>
      <h3>Public URL</h3>
      <PublicUrlForm settings={s} submitLabel="Save public URL" />
      <h3>Email</h3>
      <EmailForm settings={s} submitLabel="Save email settings" />
      <h3>Idle workspaces</h3>
      <IdleTimeoutForm settings={s} submitLabel="Save idle timeout" />
      <h3>Limits</h3>
      <ResourceCapsForm settings={s} submitLabel="Save limits" />
      <h3>Provider hosts</h3>
      <ProviderHostsForm settings={s} submitLabel="Save provider hosts" />
      <h3>Agent tools</h3>
      <GrantableToolsForm settings={s} submitLabel="Save agent tools" />
      <h3>Connectors</h3>
      <ConnectorSettingsForm settings={s} submitLabel="Save connector settings" />
    </div>
  );
}
