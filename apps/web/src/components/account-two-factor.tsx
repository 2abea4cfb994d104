import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type ReactNode, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { TotpSetup, TwoFactorStatus } from "../api/types.ts";
import { Field, Notice } from "./forms.tsx";
import { RecoveryCodes, TotpSetupForm } from "./two-factor.tsx";

const statusQuery = {
  queryKey: ["my-two-factor"],
  queryFn: () => api<TwoFactorStatus>("GET", "/api/v1/me/two-factor"),
};

/** Asks for the account's password before a change to two-factor (someone at an unlocked screen cannot). */
function PasswordStep(props: {
  action: string;
  pendingLabel: string;
  danger?: boolean;
  onSubmit: (password: string) => void;
  onCancel: () => void;
  pending: boolean;
  error: unknown;
  children?: ReactNode;
}) {
  const [password, setPassword] = useState("");
  const errors = fieldErrors(props.error);
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit(password);
      }}
      noValidate
    >
      {props.children}
      <Field
        label="Current password"
        type="password"
        autoComplete="current-password"
        required
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        hint="To confirm it's you."
        error={errors.password}
      />
      {props.error && !errors.password ? <Notice>{messageOf(props.error)}</Notice> : null}
      <div className="actions">
        <button type="submit" className={props.danger ? "danger" : undefined} disabled={props.pending || !password}>
          {props.pending ? props.pendingLabel : props.action}
        </button>
        <button type="button" className="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

type Mode = "idle" | "setup-password" | "setup" | "codes" | "disable" | "regenerate";

/** Two-factor authentication: its state, setting it up (QR, code, recovery codes), new codes, turning it off. */
export function TwoFactorSection() {
  const queryClient = useQueryClient();
  const status = useQuery(statusQuery);
  const [mode, setMode] = useState<Mode>("idle");
  const [codes, setCodes] = useState<string[]>([]);
  const refresh = () => queryClient.invalidateQueries({ queryKey: statusQuery.queryKey });
  const setup = useMutation({
    mutationFn: (password: string) => api<TotpSetup>("POST", "/api/v1/me/two-factor/setup", { password }),
    onSuccess: () => setMode("setup"),
  });
  const confirm = useMutation({
    mutationFn: (code: string) => api<{ recoveryCodes: string[] }>("POST", "/api/v1/me/two-factor/confirm", { code }),
    onSuccess: (res) => {
      setCodes(res.recoveryCodes);
      setMode("codes");
      void refresh();
    },
  });
  const disable = useMutation({
    mutationFn: (password: string) => api("POST", "/api/v1/me/two-factor/disable", { password }),
    onSuccess: () => {
      setMode("idle");
      void refresh();
    },
  });
  const regenerate = useMutation({
    mutationFn: (password: string) =>
      api<{ recoveryCodes: string[] }>("POST", "/api/v1/me/two-factor/recovery-codes", { password }),
    onSuccess: (res) => {
      setCodes(res.recoveryCodes);
      setMode("codes");
      void refresh();
    },
  });
  const cancel = () => {
    setMode("idle");
    for (const m of [setup, confirm, disable, regenerate]) m.reset();
  };
  const s = status.data;
  let body: ReactNode;
  if (status.isPending) body = <p className="loading">Loading…</p>;
  else if (status.isError) body = <Notice>{messageOf(status.error)}</Notice>;
  else if (mode === "codes") {
    body = <RecoveryCodes codes={codes} onDone={() => setMode("idle")} />;
  } else if (mode === "setup" && setup.data) {
    body = (
      <>
        <TotpSetupForm
          setup={setup.data}
          onConfirm={(code) => confirm.mutate(code)}
          pending={confirm.isPending}
          error={confirm.error}
        />
        <button type="button" className="link-button" onClick={cancel}>
          Cancel
        </button>
      </>
    );
  } else if (mode === "setup-password") {
    body = (
      <PasswordStep
        action="Continue"
        pendingLabel="Preparing…"
        onSubmit={(p) => setup.mutate(p)}
        onCancel={cancel}
        pending={setup.isPending}
        error={setup.error}
      />
    );
  } else if (mode === "disable") {
    body = (
      <PasswordStep
        action="Turn off two-factor authentication"
        pendingLabel="Turning off…"
        danger
        onSubmit={(p) => disable.mutate(p)}
        onCancel={cancel}
        pending={disable.isPending}
        error={disable.error}
      >
        <p>Signing in will need only your password again. Your recovery codes stop working.</p>
      </PasswordStep>
    );
  } else if (mode === "regenerate") {
    body = (
      <PasswordStep
        action="Make new recovery codes"
        pendingLabel="Making codes…"
        onSubmit={(p) => regenerate.mutate(p)}
        onCancel={cancel}
        pending={regenerate.isPending}
        error={regenerate.error}
      >
        <p>Your current recovery codes stop working.</p>
      </PasswordStep>
    );
  } else if (s?.enabled) {
    body = (
      <>
        <p>
          <span className="badge badge-ok">On</span>{" "}
          {s.enabledAt ? `since ${new Date(s.enabledAt).toLocaleDateString()}. ` : ""}
          Signing in asks for a code from your authenticator app.
        </p>
        <p>
          {s.recoveryCodesLeft === 1 ? "1 recovery code left." : `${s.recoveryCodesLeft} recovery codes left.`}
          {s.recoveryCodesLeft < 3 ? " Make new ones before you run out." : ""}
        </p>
        <div className="actions">
          <button type="button" className="secondary" onClick={() => setMode("regenerate")}>
            New recovery codes
          </button>
          {s.required ? (
            <p className="hint">Your organisation requires two-factor authentication, so it cannot be turned off.</p>
          ) : (
            <button type="button" className="danger" onClick={() => setMode("disable")}>
              Turn off
            </button>
          )}
        </div>
      </>
    );
  } else {
    body = (
      <>
        <p>
          <span className="badge">Off</span> Add a second step to signing in: a code from an authenticator app on your
          phone, so a stolen password alone cannot get into your account.
        </p>
        {s?.required ? <Notice kind="info">Your organisation requires two-factor authentication.</Notice> : null}
        <button type="button" onClick={() => setMode("setup-password")}>
          Set up two-factor authentication
        </button>
      </>
    );
  }
  return (
    <section className="card" id="two-factor" aria-labelledby="two-factor-title">
      <h2 id="two-factor-title">Two-factor authentication</h2>
      {body}
    </section>
  );
}
