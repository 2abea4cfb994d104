import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, Navigate, Outlet, useNavigate, useParams } from "@tanstack/react-router";
import { api, messageOf } from "../api/client.ts";
import { usePendingApprovalCount } from "./approval-card.tsx";
import { Notice } from "./forms.tsx";
import { platformSettingsQuery } from "./platform-settings.tsx";
import { useMe } from "./session.ts";

/** The signed-in frame: brand, workspace switcher, navigation, sign out. */
export function AppShell() {
  const me = useMe();
  const params = useParams({ strict: false }) as { wid?: string };
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const waiting = usePendingApprovalCount(me.data?.workspaces.find((w) => w.id === params.wid)?.id);
  if (me.isPending) return <p className="loading">Loading…</p>;
  if (me.isError) {
    return (
      <main className="page">
        <Notice>{messageOf(me.error)}</Notice>
      </main>
    );
  }
  const { user, workspaces } = me.data;
  const wid = params.wid;
  const current = workspaces.find((w) => w.id === wid);

  async function signOut() {
    await api("POST", "/api/v1/auth/logout").catch(() => {});
    queryClient.clear();
    await navigate({ to: "/signin", search: {} });
  }

  return (
    <div className="shell">
      <header className="topbar">
        <Link to="/" className="brand">
          Reef
        </Link>
        {workspaces.length > 0 ? (
          <label className="switcher">
            <span className="visually-hidden">Workspace</span>
            <select
              value={wid ?? ""}
              onChange={(e) => void navigate({ to: "/w/$wid/chat", params: { wid: e.target.value }, search: {} })}
            >
              {wid ? null : <option value="">Choose a workspace</option>}
              {workspaces.map((w) => (
                <option key={w.id} value={w.id}>
                  {w.name}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        {current ? (
          <nav aria-label="Workspace">
            <Link to="/w/$wid/chat" params={{ wid: current.id }} search={{}} activeProps={{ "aria-current": "page" }}>
              Chat
            </Link>
            <Link to="/w/$wid/agents" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
              Agents
            </Link>
            <Link to="/w/$wid/providers" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
              Providers
            </Link>
            <Link to="/w/$wid/approvals" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
              Approvals
              {waiting ? (
                <span className="count">
                  {" "}
                  {waiting}
                  <span className="visually-hidden"> waiting</span>
                </span>
              ) : null}
            </Link>
            <Link to="/w/$wid/members" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
              Members
            </Link>
            <Link to="/w/$wid/usage" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
              Usage
            </Link>
            {current.role === "owner" || current.role === "admin" ? (
              <Link to="/w/$wid/audit" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
                Audit
              </Link>
            ) : null}
          </nav>
        ) : null}
        {user.platformRole === "super_admin" ? (
          <Link to="/admin" activeProps={{ "aria-current": "page" }}>
            Admin
          </Link>
        ) : null}
        <div className="account">
          <span title={user.email}>{user.name}</span>
          <button type="button" className="link-button" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main className="page">
        {wid && !current ? <Notice>This workspace does not exist or you are not a member of it.</Notice> : <Outlet />}
      </main>
    </div>
  );
}

/** `/`: the first-run wizard while an operator has it pending, else the person's first workspace. */
export function HomeRedirect() {
  const me = useMe();
  const operator = me.data?.user.platformRole === "super_admin";
  const settings = useQuery({ ...platformSettingsQuery, enabled: operator });
  const first = me.data?.workspaces.find((w) => w.personal) ?? me.data?.workspaces[0];
  if (!me.data || (operator && settings.isPending)) return null;
  if (operator && settings.data && !settings.data.setup.completed) return <Navigate to="/admin/setup" replace />;
  if (!first) return <Notice kind="info">You are not a member of any workspace yet. Ask for an invite.</Notice>;
  return <Navigate to="/w/$wid/chat" params={{ wid: first.id }} search={{}} replace />;
}
