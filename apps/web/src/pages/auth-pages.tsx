import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams, useSearch } from "@tanstack/react-router";
import { useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { InvitePreview } from "../api/types.ts";
import { Field, Notice } from "../components/forms.tsx";
import { passwordHint } from "../components/new-password.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { useAuthState, useMe } from "../components/session.ts";
import { RedirectOnce } from "./sign-in-page.tsx";

/**
 * `/signup`: an account with a password. On a fresh install (nobody has an account) this is where every
 * visitor lands: the first account becomes the operator.
 */
export function SignUpPage() {
  const search = useSearch({ from: "/signup" });
  const state = useAuthState();
  const firstRun = state.data?.firstRun === true;
  usePageTitle(firstRun ? "Create the first account" : "Create your account");
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [form, setForm] = useState({ name: "", email: "", password: "" });
  const signup = useMutation({
    mutationFn: () =>
      api<{ user: { platformRole: string }; workspace: { id: string } }>("POST", "/api/v1/auth/signup", form),
    onSuccess: async (res) => {
      // Everything cached so far (the auth state too) was read signed out.
      queryClient.clear();
      if (search.next?.startsWith("/")) await navigate({ to: search.next });
      else if (res.user.platformRole === "super_admin") await navigate({ to: "/admin/setup" });
      else await navigate({ to: "/w/$wid/setup", params: { wid: res.workspace.id } });
    },
  });
  const errors = fieldErrors(signup.error);
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  if (state.isPending) return <main className="auth loading">Loading…</main>;
  if (state.data?.signedIn && !signup.isPending && !signup.isSuccess) return <RedirectOnce to="/" />;
  if (state.data && !state.data.signupOpen) {
    return (
      <main className="auth">
        <h1>Accounts come from your organisation</h1>
        <p>This Reef signs people in through single sign-on: your account is made the first time you sign in.</p>
        <p>
          <Link to="/signin" search={search.next ? { next: search.next } : {}}>
            Go to sign-in
          </Link>
        </p>
      </main>
    );
  }
  return (
    <main className="auth">
      {firstRun ? (
        <>
          <h1>Create the first account</h1>
          <p>
            Nobody has an account on this Reef yet. The first account becomes its <strong>operator</strong>: you set up
            email, sign-in and limits for everyone, and you get your own workspace for agents and chats.
          </p>
        </>
      ) : (
        <>
          <h1>Create your Reef account</h1>
          <p>You get your own workspace, where your agents and chats live.</p>
        </>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          signup.mutate();
        }}
        noValidate
      >
        <Field
          label="Your name"
          autoComplete="name"
          required
          value={form.name}
          onChange={set("name")}
          error={errors.name}
        />
        <Field
          label="Email"
          type="email"
          autoComplete="email"
          required
          value={form.email}
          onChange={set("email")}
          error={errors.email}
        />
        <Field
          label="Password"
          type="password"
          autoComplete="new-password"
          required
          value={form.password}
          onChange={set("password")}
          error={errors.password ?? passwordHint(form.password)}
        />
        {signup.isError && Object.keys(errors).length === 0 ? <Notice>{messageOf(signup.error)}</Notice> : null}
        <button type="submit" disabled={signup.isPending}>
          {signup.isPending ? "Creating your account…" : "Create account"}
        </button>
      </form>
      {firstRun ? null : (
        <p>
          Already have an account?{" "}
          <Link to="/signin" search={search.next ? { next: search.next } : {}}>
            Sign in
          </Link>
        </p>
      )}
    </main>
  );
}

/** `/invites/:token`: accept when signed in; otherwise sign in or up first, then come back. */
const INVITE_ROLE_MEANS: Record<string, string> = {
  viewer: "read the agent gallery and what is shared with you",
  member: "chat with the workspace's agents",
  admin: "chat, and manage agents, providers and members",
  owner: "do everything, including deleting the workspace",
};

/**
 * `/invites/$token`: names the workspace, the inviter and the role before anyone signs in. Someone without an
 * account signs up right here with the invited email filled in, and joins that workspace (no personal one).
 */
export function InvitePage() {
  const { token } = useParams({ from: "/invites/$token" });
  const state = useAuthState();
  const me = useMe();
  const signedOut = state.data?.signedIn === false;
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const preview = useQuery({
    queryKey: ["invite-preview", token],
    queryFn: () => api<InvitePreview>("GET", `/api/v1/invites/${encodeURIComponent(token)}`),
    retry: false,
  });
  const p = preview.data;
  usePageTitle(p ? `Join ${p.workspaceName}` : "Invitation");
  const [form, setForm] = useState({ name: "", password: "" });
  const go = async (wsId: string, role: string) => {
    // The invite is used now (its preview would only get the 404 of a spent link), and the browser may have
    // just signed up: nothing cached is current.
    queryClient.clear();
    await (role === "viewer"
      ? navigate({ to: "/w/$wid/agents", params: { wid: wsId } })
      : navigate({ to: "/w/$wid/chat", params: { wid: wsId }, search: {} }));
  };
  const accept = useMutation({
    mutationFn: () =>
      api<{ workspace: { id: string; name: string; role: string } }>(
        "POST",
        `/api/v1/invites/${encodeURIComponent(token)}/accept`,
      ),
    onSuccess: (res) => go(res.workspace.id, res.workspace.role),
  });
  const signup = useMutation({
    mutationFn: () =>
      api<{ workspace: { id: string; role: string } }>("POST", "/api/v1/auth/signup", {
        name: form.name,
        password: form.password,
        email: p?.email ?? "",
        inviteToken: token,
      }),
    onSuccess: (res) => go(res.workspace.id, res.workspace.role),
  });
  const errors = fieldErrors(signup.error);
  const here = `/invites/${token}`;
  if (preview.isPending) return <main className="auth">Loading…</main>;
  if (!p) {
    return (
      <main className="auth">
        <h1>This invite cannot be used</h1>
        <Notice>{messageOf(preview.error)}</Notice>
        <p>
          <Link to="/signin" search={{}}>
            Sign in
          </Link>
        </p>
      </main>
    );
  }
  return (
    <main className="auth">
      <h1>Join {p.workspaceName} on Reef</h1>
      <p className="invite-summary">
        <strong>{p.inviterName}</strong> invited <strong>{p.email}</strong> to <strong>{p.workspaceName}</strong> as{" "}
        <strong>{p.role}</strong>: you will be able to {INVITE_ROLE_MEANS[p.role] ?? "use it"}.
      </p>
      {state.isPending || (!signedOut && me.isPending) ? <p>Loading…</p> : null}
      {signedOut ? (
        <>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              signup.mutate();
            }}
            noValidate
          >
            <h2>Create your account</h2>
            <Field label="Email" type="email" value={p.email} readOnly hint="The invited address." />
            <Field
              label="Your name"
              autoComplete="name"
              value={form.name}
              onChange={(e) => setForm({ ...form, name: e.target.value })}
              error={errors.name}
            />
            <Field
              label="Password"
              type="password"
              autoComplete="new-password"
              value={form.password}
              onChange={(e) => setForm({ ...form, password: e.target.value })}
              error={errors.password}
            />
            {signup.isError && !errors.name && !errors.password ? <Notice>{messageOf(signup.error)}</Notice> : null}
            <button type="submit" disabled={signup.isPending}>
              {signup.isPending ? "Joining…" : `Create account and join ${p.workspaceName}`}
            </button>
          </form>
          <p>
            Already have an account?{" "}
            <Link to="/signin" search={{ next: here }}>
              Sign in to accept
            </Link>
          </p>
        </>
      ) : null}
      {me.data ? (
        <>
          <p>Signed in as {me.data.user.email}.</p>
          {accept.isError ? <Notice>{messageOf(accept.error)}</Notice> : null}
          <button type="button" onClick={() => accept.mutate()} disabled={accept.isPending}>
            {accept.isPending ? "Joining…" : `Join ${p.workspaceName}`}
          </button>
        </>
      ) : null}
    </main>
  );
}
