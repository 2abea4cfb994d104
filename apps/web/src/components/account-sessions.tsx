import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import { api, messageOf } from "../api/client.ts";
import type { LinkedIdentity, Page, Session } from "../api/types.ts";
import { useConfirm } from "./confirm-dialog.tsx";
import { Notice } from "./forms.tsx";
import { forgetSession } from "./session.ts";

/** "Firefox on Linux" from a user agent: enough to recognise one's own devices, no more. */
export function deviceOf(userAgent: string | null): string {
  if (!userAgent) return "Unknown device";
  const ua = userAgent;
  const browser = /Edg\//.test(ua)
    ? "Edge"
    : /OPR\/|Opera/.test(ua)
      ? "Opera"
      : /Firefox\//.test(ua)
        ? "Firefox"
        : /Chrome\/|Chromium\/|CriOS\//.test(ua)
          ? "Chrome"
          : /Safari\//.test(ua)
            ? "Safari"
            : /curl\//.test(ua)
              ? "curl"
              : undefined;
  const os = /iPhone|iPad/.test(ua)
    ? "iOS"
    : /Android/.test(ua)
      ? "Android"
      : /Mac OS X|Macintosh/.test(ua)
        ? "macOS"
        : /Windows/.test(ua)
          ? "Windows"
          : /CrOS/.test(ua)
            ? "ChromeOS"
            : /Linux/.test(ua)
              ? "Linux"
              : undefined;
  if (browser && os) return `${browser} on ${os}`;
  return browser ?? os ?? ua.slice(0, 60);
}

/**
 * How a session signed in, in words: "Password", "Password + authenticator", "Email link", "Signed in with
 * Acme SSO" (`oidc:<slug>` / `saml:<slug>`: the provider's name when one of the linked sign-ins names it, else
 * its slug). Sessions from before methods were recorded have none.
 */
export function methodLabel(
  method: string | null | undefined,
  providerNames?: ReadonlyMap<string, string>,
): string | undefined {
  if (!method) return undefined;
  const sso = /^(?:oidc|saml):(.+)$/.exec(method);
  if (sso?.[1]) return `Signed in with ${providerNames?.get(sso[1]) ?? sso[1]}`;
  const totp = method.endsWith("+totp");
  const base = method.replace(/\+totp$/, "");
  const words: Record<string, string> = {
    password: "Password",
    magic_link: "Email link",
    // The session a new account starts with: its password was just set.
    signup: "Password",
  };
  const label = words[base] ?? base;
  return totp ? `${label} + authenticator` : label;
}

const when = (iso: string) => new Date(iso).toLocaleString();

const identitiesQuery = {
  queryKey: ["my-identities"],
  queryFn: () => api<Page<LinkedIdentity>>("GET", "/api/v1/me/identities"),
};

/** Where this account is signed in, and signing out of any of them (or all). */
export function SessionsSection() {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const { confirm, dialog } = useConfirm();
  // Names the providers of SSO sessions (the same list as "Linked sign-ins", fetched once for both).
  const identities = useQuery(identitiesQuery);
  const providerNames = new Map(identities.data?.items.map((i) => [i.provider.slug, i.provider.name]));
  const sessions = useInfiniteQuery({
    queryKey: ["my-sessions"],
    initialPageParam: "",
    queryFn: ({ pageParam }) =>
      api<Page<Session>>(
        "GET",
        `/api/v1/me/sessions?limit=20${pageParam ? `&cursor=${encodeURIComponent(pageParam)}` : ""}`,
      ),
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["my-sessions"] });
  const revoke = useMutation({
    mutationFn: (id: string) => api("DELETE", `/api/v1/me/sessions/${id}`),
    onSuccess: refresh,
  });
  const revokeOthers = useMutation({
    mutationFn: () => api("POST", "/api/v1/me/sessions/revoke-all", { includeCurrent: false }),
    onSuccess: refresh,
  });
  const revokeAll = useMutation({
    mutationFn: () => api("POST", "/api/v1/me/sessions/revoke-all", { includeCurrent: true }),
    onSuccess: async () => {
      forgetSession();
      queryClient.clear();
      await navigate({ to: "/signin", search: {} });
    },
  });
  const items = sessions.data?.pages.flatMap((p) => p.items) ?? [];
  const others = items.filter((s) => !s.current).length;
  async function signOutEverywhere() {
    const ok = await confirm({
      title: "Sign out everywhere?",
      body: <p>Every device signed in to your account is signed out, this one too. You sign in again here next.</p>,
      confirmLabel: "Sign out everywhere",
    });
    if (ok) revokeAll.mutate();
  }
  const error = revoke.error ?? revokeOthers.error ?? revokeAll.error;
  return (
    <section className="card card-wide" id="sessions" aria-labelledby="sessions-title">
      <h2 id="sessions-title">Where you're signed in</h2>
      {sessions.isPending ? <p className="loading">Loading…</p> : null}
      {sessions.isError ? <Notice>{messageOf(sessions.error)}</Notice> : null}
      {items.length > 0 ? (
        <ul className="device-list" aria-label="Sessions">
          {items.map((s) => (
            <li key={s.id} className="device">
              <div>
                <strong>{deviceOf(s.userAgent)}</strong>{" "}
                {s.current ? <span className="badge badge-ok">This device</span> : null}
                <div className="hint">
                  {[
                    s.ip ? `IP ${s.ip}` : undefined,
                    `last active ${when(s.lastSeenAt)}`,
                    `signed in ${when(s.createdAt)}`,
                    methodLabel(s.method, providerNames),
                  ]
                    .filter(Boolean)
                    .join(" · ")}
                </div>
              </div>
              {s.current ? null : (
                <button
                  type="button"
                  className="secondary"
                  disabled={revoke.isPending}
                  onClick={() => revoke.mutate(s.id)}
                  aria-label={`Sign out ${deviceOf(s.userAgent)}, last active ${when(s.lastSeenAt)}`}
                >
                  Sign out
                </button>
              )}
            </li>
          ))}
        </ul>
      ) : null}
      {sessions.hasNextPage ? (
        <button
          type="button"
          className="link-button"
          disabled={sessions.isFetchingNextPage}
          onClick={() => void sessions.fetchNextPage()}
        >
          {sessions.isFetchingNextPage ? "Loading…" : "Show more"}
        </button>
      ) : null}
      {revokeOthers.isSuccess ? <Notice kind="ok">Every other device was signed out.</Notice> : null}
      {error ? <Notice>{messageOf(error)}</Notice> : null}
      <div className="actions">
        <button
          type="button"
          className="secondary"
          disabled={revokeOthers.isPending || (others === 0 && !sessions.hasNextPage)}
          onClick={() => revokeOthers.mutate()}
        >
          Sign out of all other sessions
        </button>
        <button
          type="button"
          className="danger"
          disabled={revokeAll.isPending}
          onClick={() => void signOutEverywhere()}
        >
          Sign out everywhere
        </button>
      </div>
      {dialog}
    </section>
  );
}

/** The single sign-on accounts linked to this one. */
export function LinkedSignInsSection() {
  const identities = useQuery(identitiesQuery);
  const items = identities.data?.items ?? [];
  return (
    <section className="card" id="linked-sign-ins" aria-labelledby="linked-title">
      <h2 id="linked-title">Linked sign-ins</h2>
      {identities.isPending ? <p className="loading">Loading…</p> : null}
      {identities.isError ? <Notice>{messageOf(identities.error)}</Notice> : null}
      {identities.isSuccess && items.length === 0 ? (
        <p className="empty">
          No single sign-on account is linked. If your organisation has one, signing in with it links it here.
        </p>
      ) : null}
      {items.length > 0 ? (
        <ul className="device-list">
          {items.map((i) => (
            <li key={i.id} className="device">
              <div>
                <strong>{i.provider.name}</strong> <span className="badge">{i.provider.kind.toUpperCase()}</span>
                <div className="hint">
                  {i.email} · linked {new Date(i.createdAt).toLocaleDateString()}
                  {i.lastLoginAt ? ` · last used ${when(i.lastLoginAt)}` : ""}
                </div>
              </div>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
