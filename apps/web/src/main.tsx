import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { RouterProvider } from "@tanstack/react-router";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ApiError } from "./api/client.ts";
import { router } from "./router.tsx";
import "./styles.css";

/** A session that ended (expired, revoked, user deactivated) sends the person to sign in again. */
function onError(err: unknown) {
  if (!(err instanceof ApiError) || err.status !== 401) return;
  const here = window.location.pathname + window.location.search;
  if (/^\/(signin|signup|invites)/.test(window.location.pathname)) return;
  queryClient.clear();
  void router.navigate({ to: "/signin", search: { next: here, expired: true } });
}

const queryClient = new QueryClient({
  queryCache: new QueryCache({ onError }),
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
