import { createRootRoute, createRoute, createRouter, Outlet } from "@tanstack/react-router";
import { AppShell, HomeRedirect } from "./components/layout.tsx";
import { AdminPage } from "./pages/admin-page.tsx";
import { AgentsPage } from "./pages/agents-page.tsx";
import { ApprovalsPage } from "./pages/approvals-page.tsx";
import { AuditPage, UsagePage } from "./pages/audit-page.tsx";
import { InvitePage, SignInPage, SignUpPage } from "./pages/auth-pages.tsx";
import { ChatPage } from "./pages/chat-page.tsx";
import { MembersPage } from "./pages/members-page.tsx";
import { PlatformSetupPage } from "./pages/platform-setup-page.tsx";
import { ProvidersPage } from "./pages/providers-page.tsx";
import { SetupPage } from "./pages/setup-page.tsx";

/** Keeps the named string search params that are present (absent ones stay absent, not undefined). */
function pick<K extends string>(s: Record<string, unknown>, ...keys: K[]): { [P in K]?: string } {
  const out: { [P in K]?: string } = {};
  for (const k of keys) {
    const v = s[k];
    if (typeof v === "string" && v) out[k] = v;
  }
  return out;
}

const rootRoute = createRootRoute({ component: () => <Outlet /> });

const signInRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/signin",
  validateSearch: (s: Record<string, unknown>): { next?: string; expired?: boolean } => ({
    ...pick(s, "next"),
    ...(s.expired ? { expired: true } : {}),
  }),
  component: SignInPage,
});
const signUpRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/signup",
  validateSearch: (s: Record<string, unknown>) => pick(s, "next"),
  component: SignUpPage,
});
const inviteRoute = createRoute({ getParentRoute: () => rootRoute, path: "/invites/$token", component: InvitePage });

/** Everything behind sign-in. */
const appRoute = createRoute({ getParentRoute: () => rootRoute, id: "app", component: AppShell });
const homeRoute = createRoute({ getParentRoute: () => appRoute, path: "/", component: HomeRedirect });
const setupRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/setup", component: SetupPage });
const chatRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/w/$wid/chat",
  validateSearch: (s: Record<string, unknown>) => pick(s, "session"),
  component: ChatPage,
});
const agentsRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/agents", component: AgentsPage });
const providersRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/w/$wid/providers",
  component: ProvidersPage,
});

const approvalsRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/w/$wid/approvals",
  validateSearch: (s: Record<string, unknown>) => pick(s, "tab"),
  component: ApprovalsPage,
});
const membersRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/members", component: MembersPage });
const auditRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/audit", component: AuditPage });
const usageRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/usage", component: UsagePage });
const adminRoute = createRoute({ getParentRoute: () => appRoute, path: "/admin", component: AdminPage });
const platformSetupRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/admin/setup",
  component: PlatformSetupPage,
});

const routeTree = rootRoute.addChildren([
  signInRoute,
  signUpRoute,
  inviteRoute,
  appRoute.addChildren([
    homeRoute,
    setupRoute,
    chatRoute,
    agentsRoute,
    providersRoute,
    approvalsRoute,
    membersRoute,
    auditRoute,
    usageRoute,
    adminRoute,
    platformSetupRoute,
  ]),
]);

export const router = createRouter({ routeTree, defaultPreload: false });

declare module "@tanstack/react-router" {
  interface Register {
    router: typeof router;
  }
}
