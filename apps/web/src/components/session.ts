import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client.ts";
import type { AuthState, Me, Membership, Role } from "../api/types.ts";

export const meQuery = { queryKey: ["me"], queryFn: () => api<Me>("GET", "/api/v1/me"), staleTime: 30_000 };

/**
 * What the app boots from: always 200, so a first visit or a signed-out one logs no failed request
 * (`/me` is asked only once this says the browser is signed in).
 */
export const authStateQuery = {
  queryKey: ["auth-state"],
  queryFn: () => api<AuthState>("GET", "/api/v1/auth/state"),
  staleTime: 30_000,
};

export function useAuthState() {
  return useQuery(authStateQuery);
}

/** The signed-in user and their workspaces; asked only once the auth state says this browser is signed in. */
export function useMe() {
  const signedIn = useAuthState().data?.signedIn === true;
  return useQuery({ ...meQuery, enabled: signedIn });
}

const RANK: Record<Role, number> = { viewer: 1, member: 2, admin: 3, owner: 4 };

/** Whether a role is at least `min`: what the UI shows; the server still decides. */
export function atLeast(role: Role | undefined, min: Role): boolean {
  return role !== undefined && RANK[role] >= RANK[min];
}

export function useWorkspace(wid: string): Membership | undefined {
  return useMe().data?.workspaces.find((w) => w.id === wid);
}

// Set while this browser has a session, so only someone who had one is told it ended.
const HAD_SESSION = "reef.hadSession";

/** Notes that this browser is signed in (a successful /me). */
export function rememberSession(): void {
  try {
    localStorage.setItem(HAD_SESSION, "1");
  } catch {}
}

/** Forgets it on sign-out, so the sign-in page does not say the session "ended". */
export function forgetSession(): void {
  try {
    localStorage.removeItem(HAD_SESSION);
  } catch {}
}

/** Whether this browser had a session (read and cleared when one is found gone). */
export function hadSession(): boolean {
  try {
    return localStorage.getItem(HAD_SESSION) === "1";
  } catch {
    return false;
  }
}

type Listener = () => void;
let blockedPath: string | undefined;
const listeners = new Set<Listener>();

/**
 * Workspaces that require two-factor answer 403 TWO_FACTOR_REQUIRED to a session without one; the shell
 * shows a panel pointing to the account page instead of the page's own error. Keyed by the workspace path.
 */
export const twoFactorRequired = {
  report(pathname: string): void {
    const wid = /^\/w\/([^/]+)/.exec(pathname)?.[1];
    if (!wid || blockedPath === wid) return;
    blockedPath = wid;
    for (const l of listeners) l();
  },
  subscribe(l: Listener): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  },
  /** The workspace id last refused for want of a second factor. */
  current(): string | undefined {
    return blockedPath;
  },
  clear(): void {
    blockedPath = undefined;
    for (const l of listeners) l();
  },
};
