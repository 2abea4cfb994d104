import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { useEffect, useRef, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { SignInResult } from "../api/types.ts";
import { Field, Notice } from "../components/forms.tsx";
import { useNewPassword } from "../components/new-password.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { useAuthState } from "../components/session.ts";
import { useSignInFinish } from "./sign-in-page.tsx";

/** Runs `mutate` once when the page opens (a link's token is single use: never twice, even in dev mode). */
function useOnce(run: () => void) {
  const done = useRef(false);
  useEffect(() => {
    if (done.current) return;
    done.current = true;
    run();
  }, [run]);
}

/** `/forgot-password`: asks for a reset link; says the same whether or not the account exists. */
export function ForgotPasswordPage() {
  const search = useSearch({ from: "/forgot-password" });
  const [email, setEmail] = useState(search.email ?? "");
  const request = useMutation({
    mutationFn: () => api("POST", "/api/v1/auth/password-reset", { email: email.trim() }),
  });
  usePageTitle(request.isSuccess ? "Check your email" : "Reset your password");
  if (request.isSuccess) {
    return (
      <main className="auth">
        <h1>Check your email</h1>
        <p role="status">
          If an account exists for <strong>{email.trim()}</strong>, we sent a link to choose a new password. It works
          once, for an hour.
        </p>
        <p>
          <Link to="/signin" search={{}}>
            Back to sign-in
          </Link>
        </p>
      </main>
    );
  }
  return (
    <main className="auth">
      <h1>Reset your password</h1>
      <p>Enter the email address of your account and we'll send you a link to choose a new password.</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          request.mutate();
        }}
        noValidate
      >
        <Field
          label="Email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
        {request.isError ? <Notice>{messageOf(request.error)}</Notice> : null}
        <button type="submit" disabled={request.isPending || !email.trim()}>
          {request.isPending ? "Sending…" : "Send reset link"}
        </button>
      </form>
      <p>
        <Link to="/signin" search={{}}>
          Back to sign-in
        </Link>
      </p>
    </main>
  );
}

/** `/reset-password?token=…`: a new password, twice. Every session ends, so the person signs in again. */
export function ResetPasswordPage() {
  usePageTitle("Choose a new password");
  const { token } = useSearch({ from: "/reset-password" });
  const next = useNewPassword();
  const complete = useMutation({
    mutationFn: () => api("POST", "/api/v1/auth/password-reset/complete", { token, password: next.password }),
  });
  const errors = fieldErrors(complete.error);
  if (!token) return <LinkProblem title="This reset link is incomplete" again="/forgot-password" />;
  if (complete.isSuccess) {
    return (
      <main className="auth">
        <h1>Your password is changed</h1>
        <p role="status">Every device that was signed in to your account has been signed out.</p>
        <p>
          <Link to="/signin" search={{}} className="button">
            Sign in
          </Link>
        </p>
      </main>
    );
  }
  const linkBad = complete.error && "code" in complete.error && complete.error.code === "LINK_INVALID";
  return (
    <main className="auth">
      <h1>Choose a new password</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (next.confirmed()) complete.mutate();
        }}
        noValidate
      >
        {next.fields(errors.password)}
        {complete.isError && !errors.password ? <Notice>{messageOf(complete.error)}</Notice> : null}
        <button type="submit" disabled={complete.isPending}>
          {complete.isPending ? "Saving…" : "Set new password"}
        </button>
      </form>
      {linkBad ? (
        <p>
          <Link to="/forgot-password" search={{}}>
            Request a new link
          </Link>
        </p>
      ) : null}
    </main>
  );
}

function LinkProblem(props: { title: string; error?: unknown; again: "/forgot-password" | "/signin" }) {
  usePageTitle(props.title);
  return (
    <main className="auth">
      <h1>{props.title}</h1>
      <div className="notice notice-error" role="alert">
        {props.error ? messageOf(props.error) : "The link is missing its code. Open the link from the email again."}
      </div>
      <p>
        <Link to={props.again} search={{}} className="button">
          Request a new link
        </Link>
      </p>
    </main>
  );
}

/**
 * `/magic?token=…`: signs in as soon as the page opens. Mail scanners that fetch links run no script,
 * so they cannot spend the link; and it only works in the browser that asked for it.
 */
export function MagicLinkPage() {
  usePageTitle("Signing in");
  const { token } = useSearch({ from: "/magic" });
  const { handle, stepScreen } = useSignInFinish("/");
  const consume = useMutation({
    mutationFn: () => api<SignInResult>("POST", "/api/v1/auth/magic-link/consume", { token }),
    onSuccess: handle,
  });
  const { mutate } = consume;
  useOnce(() => {
    if (token) mutate();
  });
  if (!token) return <LinkProblem title="This sign-in link is incomplete" again="/signin" />;
  if (stepScreen) return stepScreen;
  if (consume.isError)
    return <LinkProblem title="This sign-in link cannot be used" error={consume.error} again="/signin" />;
  return (
    <main className="auth">
      <h1>Signing you in…</h1>
      <p className="loading" role="status">
        One moment.
      </p>
    </main>
  );
}

/** `/confirm-email?token=…`: the new address takes effect (the link went to it, proving it is theirs). */
export function ConfirmEmailPage() {
  usePageTitle("Confirm your new email");
  const { token } = useSearch({ from: "/confirm-email" });
  const state = useAuthState();
  const queryClient = useQueryClient();
  const confirm = useMutation({
    mutationFn: () => api("POST", "/api/v1/auth/email-change/confirm", { token }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["me"] }),
  });
  const { mutate } = confirm;
  useOnce(() => {
    if (token) mutate();
  });
  if (!token) return <LinkProblem title="This confirmation link is incomplete" again="/signin" />;
  if (confirm.isError) {
    return (
      <main className="auth">
        <h1>This confirmation link cannot be used</h1>
        <div className="notice notice-error" role="alert">
          {messageOf(confirm.error)}
        </div>
        <p>Change your email again from your account page to get a new link.</p>
      </main>
    );
  }
  if (!confirm.isSuccess) {
    return (
      <main className="auth">
        <h1>Confirming your new email…</h1>
      </main>
    );
  }
  return (
    <main className="auth">
      <h1>Your email address is changed</h1>
      <p role="status">From now on, sign in with your new address. We told your old address about the change.</p>
      <p>
        {state.data?.signedIn ? (
          <Link to="/account" className="button">
            Back to your account
          </Link>
        ) : (
          <Link to="/signin" search={{}} className="button">
            Sign in
          </Link>
        )}
      </p>
    </main>
  );
}

/**
 * `/signin/link?token&email&provider`: the provider's email belongs to an existing password account;
 * its password, given once, links the two (so nobody takes over an account just by naming its email at an IdP).
 */
export function SsoLinkPage() {
  const search = useSearch({ from: "/signin/link" });
  const provider = search.provider ?? "single sign-on";
  usePageTitle(`Link your ${provider} sign-in`);
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [password, setPassword] = useState("");
  const link = useMutation({
    mutationFn: () => api("POST", "/api/v1/auth/sso/link", { token: search.token, password }),
    onSuccess: async () => {
      queryClient.clear();
      await navigate({ to: "/" });
    },
  });
  if (!search.token) return <LinkProblem title="This link is incomplete" again="/signin" />;
  return (
    <main className="auth">
      <h1>Link your {provider} sign-in to your Reef account</h1>
      <p>
        Reef already has an account for <strong>{search.email ?? "this email address"}</strong>. Enter its password once
        to link them; after that, {provider} signs you in.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          link.mutate();
        }}
        noValidate
      >
        {search.email ? <input type="hidden" autoComplete="username" value={search.email} readOnly /> : null}
        <Field
          label="Reef password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {link.isError ? <Notice>{messageOf(link.error)}</Notice> : null}
        <button type="submit" disabled={link.isPending || !password}>
          {link.isPending ? "Linking…" : "Link and sign in"}
        </button>
      </form>
      <p>
        <Link to="/signin" search={{}}>
          Cancel
        </Link>
      </p>
    </main>
  );
}
