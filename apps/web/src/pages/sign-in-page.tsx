import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { type FormEvent, useEffect, useState } from "react";
import { api, messageOf } from "../api/client.ts";
import { errorSentence, errorText } from "../api/error-text.ts";
import type { AuthState, SignInResult } from "../api/types.ts";
import { Field, Notice } from "../components/forms.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { forgetSession, useAuthState } from "../components/session.ts";
import { TwoFactorCodeStep, TwoFactorEnrolStep } from "../components/two-factor.tsx";

/** A path inside Reef to go to after signing in (never another site). */
export function safeNext(next: string | undefined): string {
  return next?.startsWith("/") && !next.startsWith("//") ? next : "/";
}

/**
 * Goes to `to` once, when drawn. Unlike <Navigate>, it does not start the navigation again each time the
 * page re-renders while the next screen's code loads (which can loop).
 */
export function RedirectOnce(props: { to: string }) {
  const navigate = useNavigate();
  const [to] = useState(props.to);
  useEffect(() => {
    void navigate({ to, replace: true });
  }, [navigate, to]);
  return <main className="auth loading">Loading…</main>;
}

type Step = { next: "two_factor" | "two_factor_enrol"; challenge: string };

/**
 * The second step of a sign-in that needs one, then the app: shared by the password form and magic links.
 * `step` undefined: nothing pending.
 */
export function useSignInFinish(next: string | undefined) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [step, setStep] = useState<Step>();
  const finish = async () => {
    // Everything cached so far was read signed out (auth state included): start again from the server.
    queryClient.clear();
    await navigate({ to: safeNext(next) });
  };
  const handle = async (res: SignInResult) => {
    if ("user" in res) await finish();
    else setStep({ next: res.next, challenge: res.challenge });
  };
  const stepScreen = step ? (
    step.next === "two_factor" ? (
      <TwoFactorCodeStep
        challenge={step.challenge}
        onSignedIn={() => void finish()}
        onCancel={() => setStep(undefined)}
      />
    ) : (
      <TwoFactorEnrolStep
        challenge={step.challenge}
        onSignedIn={() => void finish()}
        onCancel={() => setStep(undefined)}
      />
    )
  ) : null;
  return { handle, stepScreen };
}

/** `/signin?error=CODE&message=…`: a single sign-on that came back refused, as a page of its own. */
function SignInError(props: { code: string; message: string | undefined; next: string | undefined }) {
  usePageTitle("Sign-in didn't work");
  const navigate = useNavigate();
  return (
    <main className="auth">
      <h1>Sign-in didn't work</h1>
      <div className="notice notice-error" role="alert">
        {errorSentence(errorText(props.code, props.message))}
      </div>
      <p className="hint">Error code: {props.code}</p>
      <button
        type="button"
        onClick={() => void navigate({ to: "/signin", search: props.next ? { next: props.next } : {} })}
      >
        Try again
      </button>
    </main>
  );
}

/** "Continue with <provider>" buttons: plain links, since the sign-in leaves for the provider's page. */
function SsoButtons(props: { providers: AuthState["providers"]; next: string | undefined }) {
  if (props.providers.length === 0) return null;
  const next = encodeURIComponent(safeNext(props.next));
  return (
    <ul className="sso-buttons">
      {props.providers.map((p) => (
        <li key={p.slug}>
          <a className="button sso-button" href={`/api/v1/auth/sso/${encodeURIComponent(p.slug)}/start?next=${next}`}>
            Continue with {p.name}
          </a>
        </li>
      ))}
    </ul>
  );
}

function PasswordForm(props: {
  state: AuthState;
  next: string | undefined;
  onResult: (res: SignInResult) => Promise<void>;
  onLinkSent: (email: string) => void;
}) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [needEmail, setNeedEmail] = useState(false);
  const login = useMutation({
    mutationFn: () => api<SignInResult>("POST", "/api/v1/auth/login", { email, password }),
    onSuccess: props.onResult,
  });
  const magic = useMutation({
    mutationFn: () =>
      api("POST", "/api/v1/auth/magic-link", {
        email: email.trim(),
        ...(props.next?.startsWith("/") ? { next: props.next } : {}),
      }),
    onSuccess: () => props.onLinkSent(email.trim()),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    login.mutate();
  };
  return (
    <form onSubmit={submit} noValidate>
      <Field
        label="Email"
        type="email"
        autoComplete="username"
        required
        value={email}
        onChange={(e) => {
          setEmail(e.target.value);
          setNeedEmail(false);
        }}
        error={needEmail ? "Enter your email address first." : undefined}
      />
      <Field
        label="Password"
        type="password"
        autoComplete="current-password"
        required
        value={password}
        onChange={(e) => setPassword(e.target.value)}
      />
      {props.state.emailLinks ? (
        <p className="forgot">
          <Link to="/forgot-password" search={email.trim() ? { email: email.trim() } : {}}>
            Forgot password?
          </Link>
        </p>
      ) : null}
      {login.isError ? <Notice>{messageOf(login.error)}</Notice> : null}
      {magic.isError ? <Notice>{messageOf(magic.error)}</Notice> : null}
      <div className="actions">
        <button type="submit" disabled={login.isPending}>
          {login.isPending ? "Signing in…" : "Sign in"}
        </button>
        {props.state.emailLinks ? (
          <button
            type="button"
            className="secondary"
            disabled={magic.isPending}
            onClick={() => {
              if (!email.trim()) setNeedEmail(true);
              else magic.mutate();
            }}
          >
            {magic.isPending ? "Sending…" : "Email me a sign-in link"}
          </button>
        ) : null}
      </div>
    </form>
  );
}

/** `/signin`: single sign-on first when the organisation has it, then email and password, magic links, 2FA. */
export function SignInPage() {
  const search = useSearch({ from: "/signin" });
  const state = useAuthState();
  const { handle, stepScreen } = useSignInFinish(search.next);
  const [linkSentTo, setLinkSentTo] = useState<string>();
  usePageTitle(linkSentTo ? "Check your email" : "Sign in");
  const navigate = useNavigate();
  // The "session ended" line came in the URL: shown once, then dropped from it (a reload does not repeat it),
  // and the browser's memory of a session is spent.
  const [expired] = useState(search.expired === true);
  useEffect(() => {
    forgetSession();
    if (search.expired) {
      void navigate({ to: "/signin", search: search.next ? { next: search.next } : {}, replace: true });
    }
  }, [navigate, search.expired, search.next]);

  if (search.error) return <SignInError code={search.error} message={search.message} next={search.next} />;
  if (stepScreen) return stepScreen;
  if (state.isPending) return <main className="auth loading">Loading…</main>;
  if (state.isError) {
    return (
      <main className="auth">
        <h1>Sign in to Reef</h1>
        <Notice>{messageOf(state.error)}</Notice>
      </main>
    );
  }
  const s = state.data;
  if (s.signedIn) return <RedirectOnce to={safeNext(search.next)} />;
  if (s.firstRun) return <RedirectOnce to="/signup" />;
  if (linkSentTo) {
    return (
      <main className="auth">
        <h1>Check your email</h1>
        <p role="status">
          If an account exists for <strong>{linkSentTo}</strong>, we sent it a sign-in link. Open it in this browser
          within 15 minutes; it works once.
        </p>
        <button type="button" className="link-button" onClick={() => setLinkSentTo(undefined)}>
          Back to sign-in
        </button>
      </main>
    );
  }
  const form = (
    <PasswordForm state={s} next={search.next} onResult={handle} onLinkSent={(email) => setLinkSentTo(email)} />
  );
  return (
    <main className="auth">
      <h1>Sign in to Reef</h1>
      {expired ? <Notice kind="info">Your session has ended. Sign in again to carry on.</Notice> : null}
      <SsoButtons providers={s.providers} next={search.next} />
      {s.passwordSignIn ? (
        <>
          {s.providers.length > 0 ? <p className="divider">or</p> : null}
          {form}
        </>
      ) : (
        <>
          <p>Your organisation signs in through single sign-on{s.providers.length > 0 ? ", above" : ""}.</p>
          <details className="breakglass">
            <summary>Administrator sign-in</summary>
            <p className="hint">For operator accounts kept for when single sign-on is down.</p>
            {form}
          </details>
        </>
      )}
      {s.signupOpen ? (
        <p>
          New here?{" "}
          <Link to="/signup" search={search.next ? { next: search.next } : {}}>
            Create an account
          </Link>
        </p>
      ) : null}
    </main>
  );
}
