import { createRootRoute, createRoute, createRouter, lazyRouteComponent, Outlet } from "@tanstack/react-router";
import { AppShell, HomeRedirect } from "./components/layout.tsx";

// Every screen is its own chunk, so the first screen (sign-in, or chat) loads only what it shows.
const AdminPage = lazyRouteComponent(() => import("./pages/admin-page.tsx"), "AdminPage");
const AgentsPage = lazyRouteComponent(() => import("./pages/agents-page.tsx"), "AgentsPage");
const ApprovalsPage = lazyRouteComponent(() => import("./pages/approvals-page.tsx"), "ApprovalsPage");
const AuditPage = lazyRouteComponent(() => import("./pages/audit-page.tsx"), "AuditPage");
const UsagePage = lazyRouteComponent(() => import("./pages/audit-page.tsx"), "UsagePage");
const InvitePage = lazyRouteComponent(() => import("./pages/auth-pages.tsx"), "InvitePage");
const SignInPage = lazyRouteComponent(() => import("./pages/sign-in-page.tsx"), "SignInPage");
// --- sign-in and account (issue 17) ---
const AccountPage = lazyRouteComponent(() => import("./pages/account-page.tsx"), "AccountPage");
const NewWorkspacePage = lazyRouteComponent(() => import("./pages/new-workspace-page.tsx"), "NewWorkspacePage");
const ForgotPasswordPage = lazyRouteComponent(() => import("./pages/email-link-pages.tsx"), "ForgotPasswordPage");
const ResetPasswordPage = lazyRouteComponent(() => import("./pages/email-link-pages.tsx"), "ResetPasswordPage");
const MagicLinkPage = lazyRouteComponent(() => import("./pages/email-link-pages.tsx"), "MagicLinkPage");
const ConfirmEmailPage = lazyRouteComponent(() => import("./pages/email-link-pages.tsx"), "ConfirmEmailPage");
const SsoLinkPage = lazyRouteComponent(() => import("./pages/email-link-pages.tsx"), "SsoLinkPage");
const SignUpPage = lazyRouteComponent(() => import("./pages/auth-pages.tsx"), "SignUpPage");
const ChatPage = lazyRouteComponent(() => import("./pages/chat-page.tsx"), "ChatPage");
const MembersPage = lazyRouteComponent(() => import("./pages/members-page.tsx"), "MembersPage");
const PlatformSetupPage = lazyRouteComponent(() => import("./pages/platform-setup-page.tsx"), "PlatformSetupPage");
const ProvidersPage = lazyRouteComponent(() => import("./pages/providers-page.tsx"), "ProvidersPage");
const SetupPage = lazyRouteComponent(() => import("./pages/setup-page.tsx"), "SetupPage");
const SchedulesPage = lazyRouteComponent(() => import("./pages/schedules-page.tsx"), "SchedulesPage");
// --- connectors (issue 16) ---
const ConnectorsPage = lazyRouteComponent(() => import("./pages/connectors-page.tsx"), "ConnectorsPage");
const ConnectorDetailPage = lazyRouteComponent(() => import("./pages/connectors-page.tsx"), "ConnectorDetailPage");
// --- team (H4) ---
const ApiKeysPage = lazyRouteComponent(() => import("./pages/api-keys-page.tsx"), "ApiKeysPage");
const WorkspaceSettingsPage = lazyRouteComponent(
  () => import("./pages/workspace-settings-page.tsx"),
  "WorkspaceSettingsPage",
);

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
  // `error` and `message`: a single sign-on that came back refused (from the server's SSO callbacks).
  validateSearch: (
    s: Record<string, unknown>,
  ): { next?: string; expired?: boolean; error?: string; message?: string } => ({
    ...pick(s, "next", "error", "message"),
    ...(s.expired ? { expired: true } : {}),
  }),
  component: SignInPage,
});
// --- sign-in and account (issue 17) ---
const ssoLinkRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/signin/link",
  validateSearch: (s: Record<string, unknown>) => pick(s, "token", "email", "provider"),
  component: SsoLinkPage,
});
const forgotPasswordRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/forgot-password",
  validateSearch: (s: Record<string, unknown>) => pick(s, "email"),
  component: ForgotPasswordPage,
});
const resetPasswordRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/reset-password",
  validateSearch: (s: Record<string, unknown>) => pick(s, "token"),
  component: ResetPasswordPage,
});
const magicLinkRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/magic",
  validateSearch: (s: Record<string, unknown>) => pick(s, "token"),
  component: MagicLinkPage,
});
const confirmEmailRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/confirm-email",
  validateSearch: (s: Record<string, unknown>) => pick(s, "token"),
  component: ConfirmEmailPage,
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
const schedulesRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/w/$wid/schedules",
  component: SchedulesPage,
});
const connectorsRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/w/$wid/connectors",
  component: ConnectorsPage,
});
const connectorRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/w/$wid/connectors/$cid",
  component: ConnectorDetailPage,
});
const membersRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/members", component: MembersPage });
const auditRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/audit", component: AuditPage });
// --- team (H4) ---
const apiKeysRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/api-keys", component: ApiKeysPage });
const settingsRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/w/$wid/settings",
  component: WorkspaceSettingsPage,
});
const usageRoute = createRoute({ getParentRoute: () => appRoute, path: "/w/$wid/usage", component: UsagePage });
const adminRoute = createRoute({ getParentRoute: () => appRoute, path: "/admin", component: AdminPage });
const accountRoute = createRoute({ getParentRoute: () => appRoute, path: "/account", component: AccountPage });
const newWorkspaceRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/workspaces/new",
  component: NewWorkspacePage,
});
const platformSetupRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/admin/setup",
  component: PlatformSetupPage,
});

const routeTree = rootRoute.addChildren([
  signInRoute,
  signUpRoute,
  inviteRoute,
  ssoLinkRoute,
  forgotPasswordRoute,
  resetPasswordRoute,
  magicLinkRoute,
  confirmEmailRoute,
  appRoute.addChildren([
    homeRoute,
    setupRoute,
    chatRoute,
    agentsRoute,
    providersRoute,
    approvalsRoute,
    schedulesRoute,
    connectorsRoute,
    connectorRoute,
    membersRoute,
    auditRoute,
    usageRoute,
    apiKeysRoute,
    settingsRoute,
    adminRoute,
    accountRoute,
    newWorkspaceRoute,
    platformSetupRoute,
  ]),
]);

export const router = createRouter({ routeTree, defaultPreload: false });

declare module "@tanstack/react-router" {
  interface Register {
    router: typeof router;
  }
}
