import { useMutation, useQueryClient } from "@tanstack/react-query";
import { type ReactNode, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { PlatformSettings, TestEmailResult } from "../api/types.ts";
import { CheckResult, Field, Notice, Select, validateUrl } from "./forms.tsx";

export const platformSettingsQuery = {
  queryKey: ["platform-settings"],
  queryFn: () => api<PlatformSettings>("GET", "/api/v1/admin/settings"),
};

type Patch = Record<string, unknown>;

/** Saves a settings patch and refreshes the cached settings. */
function useSaveSettings(onSaved?: (s: PlatformSettings) => void) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (patch: Patch) => api<PlatformSettings>("PATCH", "/api/v1/admin/settings", patch),
    onSuccess: (s) => {
      queryClient.setQueryData(platformSettingsQuery.queryKey, s);
      onSaved?.(s);
    },
  });
}

/** A setting the configuration fixes: shown, never editable here. */
function FixedByConfig(props: { name: string; value: string; env: string }) {
  return (
    <p className="hint">
      {props.name}: <strong>{props.value}</strong>. Set by <code>{props.env}</code> in Reef's configuration; change it
      there and restart Reef.
    </p>
  );
}

interface FormProps {
  settings: PlatformSettings;
  /** Extra fields sent with the save (the wizard's next step). */
  extra?: Patch;
  submitLabel: string;
  onSaved?: (s: PlatformSettings) => void;
  children?: ReactNode;
}

/** The address people use to reach Reef: invite links and emails point there. */
export function PublicUrlForm(props: FormProps) {
  const current = props.settings.publicUrl;
  const [url, setUrl] = useState(current.source === "default" ? window.location.origin : current.value);
  const save = useSaveSettings(props.onSaved);
  const fixed = current.source === "config";
  const error = validateUrl(url, "https://reef.example.org") ?? fieldErrors(save.error).publicUrl;
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!error && (fixed || url)) save.mutate({ ...(fixed ? {} : { publicUrl: url }), ...props.extra });
      }}
    >
      {fixed ? (
        <FixedByConfig name="Public URL" value={current.value} env="REEF_PUBLIC_URL" />
      ) : (
        <Field
          label="Public URL"
          type="url"
          value={url}
          onChange={(e) => setUrl(e.target.value.trim())}
          error={error}
          required
          hint="The address people type to reach Reef. Invite links and emails use it."
        />
      )}
      {props.settings.restartRequired ? (
        <Notice kind="info">
          Restart Reef so that secure cookies and HSTS follow the new address's scheme (
          {new URL(current.value).protocol}
          ).
        </Notice>
      ) : null}
      {save.isError && !fieldErrors(save.error).publicUrl ? <Notice>{messageOf(save.error)}</Notice> : null}
      {save.isSuccess && !props.extra ? <Notice kind="ok">Saved. New links use it from now on.</Notice> : null}
      <div className="actions">
        <button type="submit" disabled={save.isPending || !!error || (!fixed && !url)}>
          {props.submitLabel}
        </button>
        {props.children}
      </div>
    </form>
  );
}

const SECURITY = [
  { value: "starttls", label: "STARTTLS (usually port 587)" },
  { value: "tls", label: "TLS (usually port 465)" },
  { value: "none", label: "None (a relay on this network only)" },
];

/** Outgoing email: invites go to people's inboxes instead of links to pass on. */
export function EmailForm(props: FormProps) {
  const current = props.settings.email;
  const [host, setHost] = useState(current.host ?? "");
  const [port, setPort] = useState(String(current.port ?? 587));
  const [security, setSecurity] = useState<string>(current.security ?? "starttls");
  const [username, setUsername] = useState(current.username ?? "");
  const [password, setPassword] = useState("");
  const [from, setFrom] = useState(current.from);
  const save = useSaveSettings(props.onSaved);
  const test = useMutation({
    mutationFn: (body: Patch) => api<TestEmailResult>("POST", "/api/v1/admin/settings/test-email", body),
  });
  if (current.source === "config") {
    return (
      <div className="card">
        <FixedByConfig
          name="Mail server"
          value={current.enabled ? `${current.host}:${current.port}` : "none"}
          env="REEF_SMTP_URL"
        />
        <div className="actions">
          {props.extra ? (
            <button type="button" onClick={() => save.mutate({ ...props.extra })}>
              {props.submitLabel}
            </button>
          ) : null}
          {props.children}
        </div>
      </div>
    );
  }
  const server = errorsOf(save.error, test.error);
  const portNumber = Number(port);
  const errors = {
    host: /^(smtps?:)?\/\//.test(host) ? "Only the host name, without smtp://" : server.host,
    port:
      port && !(Number.isInteger(portNumber) && portNumber > 0 && portNumber < 65536)
        ? "A port from 1 to 65535."
        : server.port,
    from: from && !from.includes("@") ? "An address such as Reef <reef@example.org>." : server.from,
    password:
      username && !password && !(current.passwordSet && current.source === "settings")
        ? "The mail server's password for this user name."
        : server.password,
  };
  const incomplete = !host || !port || !from || Object.values(errors).some(Boolean);
  const body = () => ({
    host,
    port: portNumber,
    security,
    username: username || null,
    // Empty keeps the saved password; the server refuses a user name without one.
    ...(password ? { password } : {}),
    from,
  });
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!incomplete) save.mutate({ email: body(), ...props.extra });
      }}
    >
      <Field
        label="Mail server"
        value={host}
        onChange={(e) => setHost(e.target.value.trim())}
        error={errors.host}
        placeholder="smtp.example.org"
      />
      <Field
        label="Port"
        inputMode="numeric"
        value={port}
        onChange={(e) => setPort(e.target.value.trim())}
        error={errors.port}
      />
      <Select label="Encryption" value={security} onChange={setSecurity} options={SECURITY} />
      <Field
        label="User name (if the server needs one)"
        autoComplete="off"
        value={username}
        onChange={(e) => setUsername(e.target.value)}
      />
      <Field
        label="Password"
        type="password"
        autoComplete="new-password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        error={errors.password}
        hint={
          current.passwordSet ? "A password is saved; leave empty to keep it." : "Stored encrypted; never shown again."
        }
      />
      <Field label="Send as" value={from} onChange={(e) => setFrom(e.target.value)} error={errors.from} />
      <CheckResult result={test.data} error={test.error} />
      {save.isError && !Object.keys(fieldErrors(save.error)).length ? <Notice>{messageOf(save.error)}</Notice> : null}
      {save.isSuccess && !props.extra ? <Notice kind="ok">Saved. Invites are emailed from now on.</Notice> : null}
      <div className="actions">
        <button type="submit" disabled={save.isPending || incomplete}>
          {props.submitLabel}
        </button>
        <button
          type="button"
          className="secondary"
          disabled={test.isPending || incomplete}
          onClick={() => test.mutate({ email: body() })}
        >
          {test.isPending ? "Sending…" : "Send a test email to me"}
        </button>
        {current.enabled && !props.extra ? (
          <button type="button" className="danger" onClick={() => save.mutate({ email: null })}>
            Turn email off
          </button>
        ) : null}
        {props.children}
      </div>
    </form>
  );
}

/** Field errors of a save or test, keyed by the email form's field names. */
function errorsOf(...errs: unknown[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const err of errs) {
    const fields = fieldErrors(err);
    for (const [k, v] of Object.entries(fields)) out[k === "email" ? "host" : k] = v;
  }
  return out;
}

/** How long an unused workspace keeps its gateway running (memory) before it is stopped. */
export function IdleTimeoutForm(props: FormProps) {
  const current = props.settings.runtimeIdleTimeoutMinutes;
  const [minutes, setMinutes] = useState(String(current.value));
  const save = useSaveSettings(props.onSaved);
  const fixed = current.source === "config";
  const n = Number(minutes);
  const error = !Number.isInteger(n) || n < 1 || n > 1440 ? "Whole minutes from 1 to 1440 (a day)." : undefined;
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (fixed || !error) save.mutate({ ...(fixed ? {} : { runtimeIdleTimeoutMinutes: n }), ...props.extra });
      }}
    >
      {fixed ? (
        <FixedByConfig name="Idle timeout" value={`${current.value} minutes`} env="REEF_RUNTIME_IDLE_TIMEOUT_MINUTES" />
      ) : (
        <Field
          label="Stop an unused workspace after (minutes)"
          inputMode="numeric"
          value={minutes}
          onChange={(e) => setMinutes(e.target.value.trim())}
          error={error}
          hint="Each active workspace runs its own agent gateway (about 1 GB of memory). It starts again on the next message, in a few seconds."
        />
      )}
      {save.isError ? <Notice>{messageOf(save.error)}</Notice> : null}
      {save.isSuccess && !props.extra ? <Notice kind="ok">Saved. It applies from the next check.</Notice> : null}
      <div className="actions">
        <button type="submit" disabled={save.isPending || (!fixed && !!error)}>
          {props.submitLabel}
        </button>
        {props.children}
      </div>
    </form>
  );
}
