import { useMutation } from "@tanstack/react-query";
import { type FormEvent, useEffect, useRef, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { TotpSetup } from "../api/types.ts";
import { Field, Notice } from "./forms.tsx";

/** The `otpauth://` URI as a QR code an authenticator app scans (drawn here: the secret never leaves the page). */
export function QrCode(props: { uri: string }) {
  const [src, setSrc] = useState<string>();
  useEffect(() => {
    let live = true;
    // Loaded only when a QR code is drawn: the sign-in page does not carry the encoder.
    import("qrcode")
      .then((QRCode) => QRCode.toDataURL(props.uri, { margin: 1, width: 192, errorCorrectionLevel: "M" }))
      .then((url) => live && setSrc(url))
      .catch(() => live && setSrc(undefined));
    return () => {
      live = false;
    };
  }, [props.uri]);
  return src ? (
    <img className="qr-code" src={src} width={192} height={192} alt="QR code to scan with your authenticator app" />
  ) : (
    <div className="qr-code" aria-hidden="true" />
  );
}

/** A 6-digit code input: numeric keyboard on phones, and the OS may fill it from an SMS or authenticator. */
export function CodeField(props: { value: string; onChange: (v: string) => void; error?: string | undefined }) {
  return (
    <Field
      label="6-digit code"
      inputMode="numeric"
      autoComplete="one-time-code"
      pattern="[0-9]*"
      maxLength={6}
      required
      value={props.value}
      onChange={(e) => props.onChange(e.target.value.replace(/\D/g, "").slice(0, 6))}
      error={props.error}
      hint="From your authenticator app (Google Authenticator, 1Password, Authy…)."
    />
  );
}

/** Scan (or type the key), then prove it works with a first code. */
export function TotpSetupForm(props: {
  setup: TotpSetup;
  onConfirm: (code: string) => void;
  pending: boolean;
  error: unknown;
}) {
  const [code, setCode] = useState("");
  const errors = fieldErrors(props.error);
  return (
    <form
      className="totp-setup"
      onSubmit={(e) => {
        e.preventDefault();
        props.onConfirm(code);
      }}
      noValidate
    >
      <ol className="totp-steps">
        <li>
          <p>Scan this QR code with your authenticator app.</p>
          <QrCode uri={props.setup.otpauthUri} />
        </li>
        <li>
          <p>
            Can't scan it? Enter this setup key instead: <code className="totp-secret">{props.setup.secret}</code>
          </p>
        </li>
        <li>
          <p>Enter the 6-digit code the app shows.</p>
          <CodeField value={code} onChange={setCode} error={errors.code} />
        </li>
      </ol>
      {props.error && !errors.code ? <Notice>{messageOf(props.error)}</Notice> : null}
      <button type="submit" disabled={props.pending || code.length !== 6}>
        {props.pending ? "Checking…" : "Turn on two-factor authentication"}
      </button>
    </form>
  );
}

/** The recovery codes, shown once: copy or download them, then say they are saved. */
export function RecoveryCodes(props: { codes: string[]; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  const text = `Reef recovery codes (each works once)\n\n${props.codes.join("\n")}\n`;
  const href = `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`;
  return (
    <section className="recovery-codes" aria-labelledby="recovery-title">
      <h2 id="recovery-title">Save your recovery codes</h2>
      <p>
        If you lose your phone, each of these codes signs you in once instead of a code from the app. This is the only
        time Reef shows them: keep them somewhere safe, such as your password manager.
      </p>
      <ul className="recovery-list" aria-label="Recovery codes">
        {props.codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <div className="actions">
        <button
          type="button"
          className="secondary"
          onClick={() =>
            void navigator.clipboard
              ?.writeText(props.codes.join("\n"))
              .then(() => setCopied(true))
              .catch(() => setCopied(false))
          }
        >
          {copied ? "Copied" : "Copy codes"}
        </button>
        <a className="button secondary-link" href={href} download="reef-recovery-codes.txt">
          Download
        </a>
        <button type="button" onClick={props.onDone}>
          I've saved them
        </button>
      </div>
    </section>
  );
}

/** Sign-in's second step: a code from the app, or a recovery code. */
export function TwoFactorCodeStep(props: { challenge: string; onSignedIn: () => void; onCancel: () => void }) {
  const [recovery, setRecovery] = useState(false);
  const [value, setValue] = useState("");
  const verify = useMutation({
    mutationFn: () =>
      api("POST", "/api/v1/auth/two-factor", {
        challenge: props.challenge,
        ...(recovery ? { recoveryCode: value.trim() } : { code: value }),
      }),
    onSuccess: props.onSignedIn,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    verify.mutate();
  };
  return (
    <main className="auth">
      <h1>Two-factor authentication</h1>
      <p>
        {recovery
          ? "Enter one of the recovery codes you saved when you set up two-factor authentication. Each works once."
          : "Open your authenticator app and enter the code it shows for Reef."}
      </p>
      <form onSubmit={submit} noValidate>
        {recovery ? (
          <Field
            label="Recovery code"
            autoComplete="off"
            spellCheck={false}
            required
            value={value}
            onChange={(e) => setValue(e.target.value)}
          />
        ) : (
          <CodeField value={value} onChange={setValue} />
        )}
        {verify.isError ? <Notice>{messageOf(verify.error)}</Notice> : null}
        <button type="submit" disabled={verify.isPending || (!recovery && value.length !== 6)}>
          {verify.isPending ? "Checking…" : "Verify"}
        </button>
      </form>
      <p>
        <button
          type="button"
          className="link-button"
          onClick={() => {
            setRecovery(!recovery);
            setValue("");
            verify.reset();
          }}
        >
          {recovery ? "Use a code from the app instead" : "Use a recovery code instead"}
        </button>
      </p>
      <p>
        <button type="button" className="link-button" onClick={props.onCancel}>
          Start over
        </button>
      </p>
    </main>
  );
}

/** Sign-in when the platform requires a second factor the account does not have yet: set it up now. */
export function TwoFactorEnrolStep(props: { challenge: string; onSignedIn: () => void; onCancel: () => void }) {
  const [codes, setCodes] = useState<string[]>();
  const started = useRef(false);
  const start = useMutation({
    mutationFn: () => api<TotpSetup>("POST", "/api/v1/auth/two-factor/enrol", { challenge: props.challenge }),
  });
  const confirm = useMutation({
    mutationFn: (code: string) =>
      api<{ recoveryCodes: string[] }>("POST", "/api/v1/auth/two-factor/enrol/confirm", {
        challenge: props.challenge,
        code,
      }),
    onSuccess: (res) => setCodes(res.recoveryCodes),
  });
  // Once per challenge (a second call would replace the secret the page shows).
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    start.mutate();
  }, [start]);
  if (codes) {
    return (
      <main className="auth auth-wide">
        <RecoveryCodes codes={codes} onDone={props.onSignedIn} />
      </main>
    );
  }
  return (
    <main className="auth auth-wide">
      <h1>Set up two-factor authentication</h1>
      <p>
        This Reef asks for a second step when you sign in: a code from an authenticator app on your phone. Set it up
        once, now.
      </p>
      {start.isPending ? <p className="loading">Preparing…</p> : null}
      {start.isError ? (
        <>
          <Notice>{messageOf(start.error)}</Notice>
          <button type="button" onClick={props.onCancel}>
            Start over
          </button>
        </>
      ) : null}
      {start.data ? (
        <TotpSetupForm
          setup={start.data}
          onConfirm={(code) => confirm.mutate(code)}
          pending={confirm.isPending}
          error={confirm.error}
        />
      ) : null}
    </main>
  );
}
