import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client.ts";
import type { Me, Membership, Role } from "../api/types.ts";

export const meQuery = { queryKey: ["me"], queryFn: () => api<Me>("GET", "/api/v1/me"), staleTime: 30_000 };

export function useMe() {
  return useQuery(meQuery);
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
