import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams, useSearch } from "@tanstack/react-router";
import { type FormEvent, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import { Field, Notice } from "../components/forms.tsx";
import { useMe } from "../components/session.ts";

export function SignInPage() {
  const search = useSearch({ from: "/signin" });
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const login = useMutation({
    mutationFn: () => api("POST", "/api/v1/auth/login", { email, password }),
    onSuccess: async () => {
      await queryClient.invalidateQueries();
      await navigate({ to: search.next?.startsWith("/") ? search.next : "/" });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    login.mutate();
  };
  return (
    <main className="auth">
      <h1>Sign in to Reef</h1>
      {search.expired ? <Notice kind="info">Your session has ended. Sign in again to carry on.</Notice> : null}
      <form onSubmit={submit} noValidate>
        <Field
          label="Email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
        <Field
          label="Password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {login.isError ? <Notice>{messageOf(login.error)}</Notice> : null}
        <button type="submit" disabled={login.isPending}>
          {login.isPending ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        New here?{" "}
        <Link to="/signup" search={search.next ? { next: search.next } : {}}>
          Create an account
        </Link>
      </p>
    </main>
  );
}

export function SignUpPage() {
  const search = useSearch({ from: "/signup" });
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [form, setForm] = useState({ name: "", email: "", password: "" });
  const signup = useMutation({
    mutationFn: () =>
      api<{ user: { platformRole: string }; workspace: { id: string } }>("POST", "/api/v1/auth/signup", form),
    onSuccess: async (res) => {
      await queryClient.invalidateQueries();
      if (search.next?.startsWith("/")) await navigate({ to: search.next });
      else if (res.user.platformRole === "super_admin") await navigate({ to: "/admin/setup" });
      else await navigate({ to: "/w/$wid/setup", params: { wid: res.workspace.id } });
    },
  });
  const errors = fieldErrors(signup.error);
  const passwordHint = form.password && form.password.length < 12 ? "At least 12 characters." : undefined;
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  return (
    <main className="auth">
      <h1>Create your Reef account</h1>
      <p>You get your own workspace, where your agents and chats live.</p>
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
          error={errors.password ?? passwordHint}
        />
        {signup.isError && Object.keys(errors).length === 0 ? <Notice>{messageOf(signup.error)}</Notice> : null}
        <button type="submit" disabled={signup.isPending}>
          {signup.isPending ? "Creating your account…" : "Create account"}
        </button>
      </form>
      <p>
        Already have an account?{" "}
        <Link to="/signin" search={search.next ? { next: search.next } : {}}>
          Sign in
        </Link>
      </p>
    </main>
  );
}

/** `/invites/:token`: accept when signed in; otherwise sign in or up first, then come back. */
export function InvitePage() {
  const { token } = useParams({ from: "/invites/$token" });
  const me = useMe();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const accept = useMutation({
    mutationFn: () =>
      api<{ workspace: { id: string; name: string } }>("POST", `/api/v1/invites/${encodeURIComponent(token)}/accept`),
    onSuccess: async (res) => {
      await queryClient.invalidateQueries({ queryKey: ["me"] });
      await navigate({ to: "/w/$wid/chat", params: { wid: res.workspace.id }, search: {} });
    },
  });
  const here = `/invites/${token}`;
  return (
    <main className="auth">
      <h1>You are invited to a Reef workspace</h1>
      {me.isPending ? <p>Loading…</p> : null}
      {me.isError ? (
        <>
          <p>Sign in (or create an account with the invited email) to accept.</p>
          <p>
            <Link to="/signin" search={{ next: here }}>
              Sign in
            </Link>{" "}
            ·{" "}
            <Link to="/signup" search={{ next: here }}>
              Create an account
            </Link>
          </p>
        </>
      ) : null}
      {me.data ? (
        <>
          <p>Signed in as {me.data.user.email}.</p>
          {accept.isError ? <Notice>{messageOf(accept.error)}</Notice> : null}
          <button type="button" onClick={() => accept.mutate()} disabled={accept.isPending}>
            {accept.isPending ? "Joining…" : "Accept the invite"}
          </button>
        </>
      ) : null}
    </main>
  );
}
