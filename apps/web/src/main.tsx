import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { RouterProvider } from "@tanstack/react-router";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ApiError } from "./api/client.ts";
import { authStateQuery, hadSession, meQuery, rememberSession, twoFactorRequired } from "./components/session.ts";
import { router } from "./router.tsx";
import "./styles.css";

// Pages a signed-out visitor uses: a 401 there is the page's own business (a wrong password, a spent link).
const SIGNED_OUT_PAGES = /^\/(signin|signup|invites|magic|forgot-password|reset-password|confirm-email)(\/|$)/;

/**
 * A 401 sends the person to sign in, once the auth state confirms the session is gone (a 401 for a wrong
 * password or code on the account page is not a lost session). Only someone who had a session in this
 * browser (expired, revoked, deactivated) is told it ended; a first-time visitor is not.
 */
async function onUnauthorized() {
  if (SIGNED_OUT_PAGES.test(window.location.pathname)) return;
  const state = await queryClient.fetchQuery({ ...authStateQuery, staleTime: 0 }).catch(() => undefined);
  if (state?.signedIn) return;
  const here = window.location.pathname + window.location.search;
  const expired = hadSession();
  queryClient.clear();
  void router.navigate({
    to: "/signin",
    search: { ...(here === "/" ? {} : { next: here }), ...(expired ? { expired: true } : {}) },
  });
}

function onQueryError(err: unknown) {
  if (!(err instanceof ApiError)) return;
  if (err.status === 401) void onUnauthorized();
  // A workspace that requires two-factor refused a page load: the shell shows how to set it up instead of the page.
  else if (err.code === "TWO_FACTOR_REQUIRED") twoFactorRequired.report(window.location.pathname);
}

// A refused action is the page's to explain, next to what was tried: a TWO_FACTOR_REQUIRED here (turning on
// "Require two-factor" from a password-only session) does not mean the workspace shuts this person out.
function onMutationError(err: unknown) {
  if (err instanceof ApiError && err.status === 401) void onUnauthorized();
}

// Any successful /me means this browser is signed in (sign-in, sign-up, invite accept all end with one).
function onSuccess(_data: unknown, query: { queryKey: readonly unknown[] }) {
  if (query.queryKey[0] === meQuery.queryKey[0]) rememberSession();
}

const queryClient = new QueryClient({
  queryCache: new QueryCache({ onError: onQueryError, onSuccess }),
  mutationCache: new MutationCache({ onError: onMutationError }),
  defaultOptions: {
    queries: { retry: (n, err) => !(err instanceof ApiError && err.status < 500) && n < 2, refetchOnWindowFocus: true },
  },
});

const root = document.getElementById("root");
if (!root) throw new Error("#root is missing from index.html");
createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  </StrictMode>,
);
