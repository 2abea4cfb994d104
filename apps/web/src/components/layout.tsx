import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, Navigate, Outlet, useNavigate, useParams, useRouter, useRouterState } from "@tanstack/react-router";
import { useEffect, useId, useLayoutEffect, useRef, useState, useSyncExternalStore } from "react";
import { api, messageOf } from "../api/client.ts";
import { usePendingApprovalCount } from "./approval-card.tsx";
import { Notice } from "./forms.tsx";
import { platformSettingsQuery } from "./platform-settings.tsx";
import { forgetSession, hadSession, twoFactorRequired, useAuthState, useMe } from "./session.ts";

// A title for every screen until the page sets its own (usePageTitle runs after this, so it wins).
const SCREEN_TITLES: [RegExp, string][] = [
  [/^\/w\/[^/]+\/chat/, "Chat"],
  [/^\/w\/[^/]+\/agents/, "Agents"],
  [/^\/w\/[^/]+\/providers/, "Providers"],
  [/^\/w\/[^/]+\/approvals/, "Approvals"],
  [/^\/w\/[^/]+\/schedules/, "Schedules"],
  [/^\/w\/[^/]+\/connectors/, "Connectors"],
  [/^\/w\/[^/]+\/members/, "Members"],
  [/^\/w\/[^/]+\/audit/, "Audit trail"],
  [/^\/w\/[^/]+\/usage/, "Usage"],
  [/^\/w\/[^/]+\/setup/, "Set up your workspace"],
  [/^\/w\/[^/]+\/settings/, "Workspace settings"],
  [/^\/w\/[^/]+\/api-keys/, "API keys"],
  [/^\/admin\/setup/, "Welcome"],
  [/^\/account/, "Your account"],
  [/^\/workspaces\/new/, "New workspace"],
  [/^\/admin/, "Admin"],
];

function useFallbackTitle(workspaceName: string | undefined) {
  const pathname = useRouterState({ select: (s) => s.location.pathname });
  const screen = SCREEN_TITLES.find(([re]) => re.test(pathname))?.[1];
  const title = [screen, workspaceName, "Reef"].filter(Boolean).join(" · ");
  // A layout effect runs before every page's passive effect, so a page's own usePageTitle still wins.
  useLayoutEffect(() => {
    document.title = title;
  }, [title]);
}

/**
 * The phone menu: under 640 px the navigation folds behind a "Menu" button (a disclosure,
 * not a modal). Escape closes it and gives focus back to the button; following a link closes it.
 */
function useMenu() {
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const pathname = useRouterState({ select: (s) => s.location.pathname });
  // biome-ignore lint/correctness/useExhaustiveDependencies: closing is the point of a route change.
  useEffect(() => setOpen(false), [pathname]);
  useEffect(() => {
    if (!open) return;
    const onKeyDown = (e: globalThis.KeyboardEvent) => {
      if (e.key !== "Escape") return;
      setOpen(false);
      button.current?.focus();
    };
    document.addEventListener("keydown", onKeyDown);
    return () => document.removeEventListener("keydown", onKeyDown);
  }, [open]);
  return { open, setOpen, button };
}

/** Where a signed-out visitor goes: the first account on a fresh install, else sign-in (back here after). */
function SignedOut(props: { firstRun: boolean }) {
  const router = useRouter();
  const navigate = useNavigate();
  const { firstRun } = props;
  // Once, imperatively: the shell re-renders while the next screen loads, and a <Navigate> there would
  // start the navigation again on every render.
  useEffect(() => {
    if (firstRun) {
      void navigate({ to: "/signup", search: {}, replace: true });
      return;
    }
    const here = router.state.location.href;
    // Only someone who had a session in this browser is told it ended.
    const expired = hadSession();
    void navigate({
      to: "/signin",
      search: { ...(here === "/" ? {} : { next: here }), ...(expired ? { expired: true } : {}) },
      replace: true,
    });
  }, [firstRun, navigate, router]);
  return (
    <main id="main" tabIndex={-1} className="page">
      <p className="loading">Loading…</p>
    </main>
  );
}

/** A workspace requiring two-factor refused this session: say how to get in, instead of the page's error. */
function TwoFactorRequiredPanel() {
  return (
    <section className="card" aria-labelledby="tfa-required-title">
      <h1 id="tfa-required-title">This workspace requires two-factor authentication</h1>
      <p>
        Its owners ask everyone to sign in with a second step: a code from an authenticator app. Set it up on your
        account, then sign out and sign in again with a code.
      </p>
      <p>
        <Link to="/account" hash="two-factor" className="button">
          Set up two-factor authentication
        </Link>
      </p>
    </section>
  );
}

/** The signed-in frame: brand, workspace switcher, navigation, sign out. */
export function AppShell() {
  const state = useAuthState();
  const me = useMe();
  const blocked = useSyncExternalStore(twoFactorRequired.subscribe, twoFactorRequired.current);
  const params = useParams({ strict: false }) as { wid?: string };
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const waiting = usePendingApprovalCount(me.data?.workspaces.find((w) => w.id === params.wid)?.id);
  const menu = useMenu();
  const menuId = useId();
  useFallbackTitle(me.data?.workspaces.find((w) => w.id === params.wid)?.name);
  if (state.isError) {
    return (
      <main id="main" tabIndex={-1} className="page">
        <Notice>{messageOf(state.error)}</Notice>
      </main>
    );
  }
  if (state.data && !state.data.signedIn) return <SignedOut firstRun={state.data.firstRun} />;
  if (me.isPending) {
    return (
      <main id="main" tabIndex={-1} className="page">
        <p className="loading">Loading…</p>
      </main>
    );
  }
  if (me.isError) {
    return (
      <main id="main" tabIndex={-1} className="page">
        <Notice>{messageOf(me.error)}</Notice>
      </main>
    );
  }
  const { user, workspaces } = me.data;
  const wid = params.wid;
  const current = workspaces.find((w) => w.id === wid);

  async function signOut() {
    await api("POST", "/api/v1/auth/logout").catch(() => {});
    forgetSession();
    twoFactorRequired.clear();
    queryClient.clear();
    await navigate({ to: "/signin", search: {} });
  }

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          Reef
        </Link>
        {workspaces.length > 0 ? (
          <label className="switcher">
            <span className="visually-hidden">Workspace</span>
            <select
              value={wid ?? ""}
              onChange={(e) => {
                const next = workspaces.find((w) => w.id === e.target.value);
                // Viewers cannot chat: their workspace opens on the agent gallery (H4).
                if (next?.role === "viewer") void navigate({ to: "/w/$wid/agents", params: { wid: e.target.value } });
                else void navigate({ to: "/w/$wid/chat", params: { wid: e.target.value }, search: {} });
              }}
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
        <button
          type="button"
          ref={menu.button}
          className="menu-button secondary"
          aria-expanded={menu.open}
          aria-controls={menuId}
          onClick={() => menu.setOpen(!menu.open)}
        >
          Menu
        </button>
        <div id={menuId} className="menu-panel" data-open={menu.open ? "" : undefined}>
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
              <Link to="/w/$wid/schedules" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
                Schedules
              </Link>
              <Link to="/w/$wid/connectors" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
                Connectors
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
              {current.role === "owner" || current.role === "admin" ? (
                <Link to="/w/$wid/settings" params={{ wid: current.id }} activeProps={{ "aria-current": "page" }}>
                  Settings
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
            <Link to="/workspaces/new" activeProps={{ "aria-current": "page" }}>
              New workspace
            </Link>
            <Link to="/account" title={user.email} activeProps={{ "aria-current": "page" }}>
              <span className="visually-hidden">Your account: </span>
              {user.name}
            </Link>
            <button type="button" className="link-button" onClick={() => void signOut()}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main id="main" tabIndex={-1} className="page">
        {wid && !current ? (
          <Notice>This workspace does not exist or you are not a member of it.</Notice>
        ) : wid && blocked === wid ? (
          <TwoFactorRequiredPanel />
        ) : (
          <Outlet />
        )}
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
  if (!first) {
    return (
      <Notice kind="info">
        You are not a member of any workspace yet. Ask for an invite, or{" "}
        <Link to="/workspaces/new">create a workspace</Link>.
      </Notice>
    );
  }
  // Viewers cannot chat: they land on the agent gallery, which they can read.
  if (first.role === "viewer") return <Navigate to="/w/$wid/agents" params={{ wid: first.id }} replace />;
  return <Navigate to="/w/$wid/chat" params={{ wid: first.id }} search={{}} replace />;
}
