import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { RouterProvider } from "@tanstack/react-router";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ApiError } from "./api/client.ts";
import { forgetSession, hadSession, meQuery, rememberSession } from "./components/session.ts";
import { router } from "./router.tsx";
import "./styles.css";

/**
 * A 401 sends the person to sign in. Only someone who had a session in this browser
 * (expired, revoked, deactivated) is told it ended; a first-time visitor is not.
 */
function onError(err: unknown) {
  if (!(err instanceof ApiError) || err.status !== 401) return;
  const here = window.location.pathname + window.location.search;
  if (/^\/(signin|signup|invites)/.test(window.location.pathname)) return;
  const expired = hadSession();
  forgetSession();
  queryClient.clear();
  void router.navigate({
    to: "/signin",
    search: { ...(here === "/" ? {} : { next: here }), ...(expired ? { expired: true } : {}) },
  });
}

// Any successful /me means this browser is signed in (sign-in, sign-up, invite accept all end with one).
function onSuccess(_data: unknown, query: { queryKey: readonly unknown[] }) {
  if (query.queryKey[0] === meQuery.queryKey[0]) rememberSession();
}

const queryClient = new QueryClient({
  queryCache: new QueryCache({ onError, onSuccess }),
  mutationCache: new MutationCache({ onError }),
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
