import { useMutation, useQueryClient } from "@tanstack/react-query";
import { type ReactNode, useId, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { PlatformSettings, TestEmailResult } from "../api/types.ts";
import { CheckResult, Field, Notice, Select, validateUrl } from "./forms.tsx";

export const platformSettingsQuery = {
  queryKey: ["platform-settings"],
  queryFn: () => api<PlatformSettings>("GET", "/api/v1/admin/settings"),
};

type Patch = Record<string, unknown>;

/** Saves a settings patch and refreshes the cached settings. */
export function useSaveSettings(onSaved?: (s: PlatformSettings) => void) {
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
export function FixedByConfig(props: { name: string; value: string; env: string }) {
  return (
    <p className="hint">
      {props.name}: <strong>{props.value}</strong>. Set by <code>{props.env}</code> in Reef's configuration; change it
      there and restart Reef.
    </p>
  );
}

export interface FormProps {
  settings: PlatformSettings;
  /** Extra fields sent with the save (the wizard's next step). */
  extra?: Patch;
  submitLabel: string;
  onSaved?: (s: PlatformSettings) => void;
  children?: ReactNode;
}

/**
 * The frame every settings form shares: no browser validation, the save's
 * failure and success, the submit button, then the caller's own actions.
 */
export function SettingsForm(props: {
  form: FormProps;
  save: ReturnType<typeof useSaveSettings>;
  /** Called on submit; saves when the form is valid. */
  onSubmit: () => void;
  /** Disables submit (besides while saving). */
  blocked: boolean;
  /** Why submit is disabled, said next to it (default: the fields above need attention). */
  blockedWhy?: string;
  /** A field already shows the save's failure, so no notice repeats it. */
  saveErrorInField?: boolean;
  /** Said after a save outside the wizard. */
  saved: string;
  /** Buttons after the submit button. */
  actions?: ReactNode;
  children: ReactNode;
}) {
  const { form, save } = props;
  const whyId = useId();
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit();
      }}
    >
      {props.children}
      {save.isError && !props.saveErrorInField ? <Notice>{messageOf(save.error)}</Notice> : null}
      {save.isSuccess && !form.extra ? <Notice kind="ok">{props.saved}</Notice> : null}
      <div className="actions">
        <button
          type="submit"
          disabled={save.isPending || props.blocked}
          aria-describedby={props.blocked ? whyId : undefined}
        >
          {form.submitLabel}
        </button>
        {props.actions}
        {form.children}
      </div>
      {props.blocked ? (
        <small id={whyId} className="disabled-why">
          {props.blockedWhy ?? "Fill in or correct the fields above to save."}
        </small>
      ) : null}
    </form>
  );
}

/** The address people use to reach Reef: invite links and emails point there. */
export function PublicUrlForm(props: FormProps) {
  const current = props.settings.publicUrl;
  const [url, setUrl] = useState(current.source === "default" ? window.location.origin : current.value);
  const save = useSaveSettings(props.onSaved);
  const fixed = current.source === "config";
  const error = validateUrl(url, "https://reef.example.org") ?? fieldErrors(save.error).publicUrl;
  return (
    <SettingsForm
      form={props}
      save={save}
      onSubmit={() => {
        if (!error && (fixed || url)) save.mutate({ ...(fixed ? {} : { publicUrl: url }), ...props.extra });
      }}
      blocked={!!error || (!fixed && !url)}
      saveErrorInField={!!fieldErrors(save.error).publicUrl}
      saved="Saved. New links use it from now on."
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
    </SettingsForm>
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
    <SettingsForm
      form={props}
      save={save}
      onSubmit={() => {
        if (!incomplete) save.mutate({ email: body(), ...props.extra });
      }}
      blocked={incomplete}
      blockedWhy="Fill in the mail server, port and sender (and correct any field marked) to save or send a test."
      saveErrorInField={Object.keys(fieldErrors(save.error)).length > 0}
      saved="Saved. Invites are emailed from now on."
      actions={
        <>
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
        </>
      }
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
    </SettingsForm>
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

/**
 * The two idle tiers: how long an unused workspace's gateway runs before it is paused (frozen, resumed in about a
 * second), and before it is stopped (memory freed, the next message starts it again).
 */
export function IdleTimeoutForm(props: FormProps) {
  const stop = props.settings.runtimeIdleTimeoutMinutes;
  const pause = props.settings.runtimePauseAfterMinutes;
  const [minutes, setMinutes] = useState(String(stop.value));
  const [pauseMinutes, setPauseMinutes] = useState(String(pause.value));
  const save = useSaveSettings(props.onSaved);
  const stopFixed = stop.source === "config";
  const pauseFixed = pause.source === "config";
  const n = Number(minutes);
  const p = Number(pauseMinutes);
  const error = !Number.isInteger(n) || n < 1 || n > 1440 ? "Whole minutes from 1 to 1440 (a day)." : undefined;
  const pauseError =
    !Number.isInteger(p) || p < 0 || p > 1440 ? "Whole minutes from 0 (never pause) to 1440." : undefined;
  const blocked = (!stopFixed && !!error) || (!pauseFixed && !!pauseError);
  return (
    <SettingsForm
      form={props}
      save={save}
      onSubmit={() => {
        if (blocked) return;
        save.mutate({
          ...(stopFixed ? {} : { runtimeIdleTimeoutMinutes: n }),
          ...(pauseFixed ? {} : { runtimePauseAfterMinutes: p }),
          ...props.extra,
        });
      }}
      blocked={blocked}
      saved="Saved. It applies from the next check."
    >
      {pauseFixed ? (
        <FixedByConfig
          name="Pause after"
          value={pause.value ? `${pause.value} minutes` : "never"}
          env="REEF_RUNTIME_PAUSE_AFTER_MINUTES"
        />
      ) : (
        <Field
          label="Pause an unused workspace after (minutes)"
          inputMode="numeric"
          value={pauseMinutes}
          onChange={(e) => setPauseMinutes(e.target.value.trim())}
          error={pauseError}
          hint="A paused gateway uses no CPU and answers the next message in about a second. It keeps its memory unless this server has swap (see the operations guide). 0: never pause."
        />
      )}
      {stopFixed ? (
        <FixedByConfig name="Idle timeout" value={`${stop.value} minutes`} env="REEF_RUNTIME_IDLE_TIMEOUT_MINUTES" />
      ) : (
        <Field
          label="Stop an unused workspace after (minutes)"
          inputMode="numeric"
          value={minutes}
          onChange={(e) => setMinutes(e.target.value.trim())}
          error={error}
          hint="A stopped workspace frees its gateway's memory (about 1 GB). The next message starts it again, which takes several seconds."
        />
      )}
    </SettingsForm>
  );
}

const CAPS = [
  {
    key: "maxWorkspacesPerUser",
    env: "REEF_MAX_WORKSPACES_PER_USER",
    label: "Workspaces one person may own",
    hint: "Counts every workspace the person owns, their personal one included. Creating one more is refused.",
  },
  {
    key: "maxRuntimesPerUser",
    env: "REEF_MAX_RUNTIMES_PER_USER",
    label: "Running workspaces per person",
    hint: "Gateways running at once in the workspaces a person owns (about 1 GB each). One more is refused until one stops.",
  },
  {
    key: "maxRuntimes",
    env: "REEF_MAX_RUNTIMES",
    label: "Running workspaces on this server",
    hint: "When the server is full, chats wait in line (people see their place) and an unused workspace is stopped to make room.",
  },
] as const;

type CapKey = (typeof CAPS)[number]["key"];

/** What one person and the whole server may use: workspaces and running gateways (0: no limit). */
export function ResourceCapsForm(props: FormProps) {
  const caps = props.settings.caps;
  const [values, setValues] = useState<Record<CapKey, string>>({
    maxWorkspacesPerUser: String(caps.maxWorkspacesPerUser.value),
    maxRuntimesPerUser: String(caps.maxRuntimesPerUser.value),
    maxRuntimes: String(caps.maxRuntimes.value),
  });
  const save = useSaveSettings(props.onSaved);
  const editable = CAPS.filter((c) => caps[c.key].source !== "config");
  const errors = Object.fromEntries(
    editable.map((c) => {
      const n = Number(values[c.key]);
      return [
        c.key,
        values[c.key] === "" || !Number.isInteger(n) || n < 0 || n > 100_000
          ? "A whole number (0: no limit)."
          : undefined,
      ];
    }),
  ) as Partial<Record<CapKey, string>>;
  const invalid = Object.values(errors).some(Boolean);
  return (
    <SettingsForm
      form={props}
      save={save}
      onSubmit={() => {
        if (invalid) return;
        save.mutate({ ...Object.fromEntries(editable.map((c) => [c.key, Number(values[c.key])])), ...props.extra });
      }}
      blocked={editable.length === 0 || invalid}
      {...(editable.length === 0
        ? { blockedWhy: "Reef's configuration sets every limit, so they cannot be changed here." }
        : {})}
      saved="Saved. It applies to the next workspace created or started."
    >
      {CAPS.map((c) =>
        caps[c.key].source === "config" ? (
          <FixedByConfig key={c.key} name={c.label} value={String(caps[c.key].value || "no limit")} env={c.env} />
        ) : (
          <Field
            key={c.key}
            label={`${c.label} (0: no limit)`}
            inputMode="numeric"
            value={values[c.key]}
            onChange={(e) => setValues((v) => ({ ...v, [c.key]: e.target.value.trim() }))}
            error={errors[c.key]}
            hint={c.hint}
          />
        ),
      )}
    </SettingsForm>
  );
}

export const HOST_ENTRY = /^(?:(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d{1,5})?|[0-9a-f]*:[0-9a-f:.]*:[0-9a-f:.]*)$/;

/**
 * The entries of a comma- or space-separated host list as typed (lower-cased), and what is wrong with the first that
 * is not a host or host:port (undefined when all are).
 */
export function parseHostList(text: string): { hosts: string[]; problem: string | undefined } {
  const hosts = text
    .split(/[\s,]+/)
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const bad = hosts.find((h) => !HOST_ENTRY.test(h));
  return { hosts, problem: bad ? `"${bad}" is not a host or host:port (no http://, no path).` : undefined };
}

/**
 * Hosts on this machine or a private network that members may use as a
 * provider (a local Ollama): Reef refuses every other non-public address.
 */
export function ProviderHostsForm(props: FormProps) {
  const current = props.settings.providerAllowedHosts;
  const [text, setText] = useState(current.value.join(", "));
  const save = useSaveSettings(props.onSaved);
  const { hosts, problem } = parseHostList(text);
  const error = problem ?? fieldErrors(save.error).providerAllowedHosts;
  if (current.source === "config") {
    return (
      <div className="card">
        <FixedByConfig
          name="Allowed provider hosts"
          value={current.value.join(", ") || "none"}
          env="REEF_PROVIDER_ALLOWED_HOSTS"
        />
      </div>
    );
  }
  return (
    <SettingsForm
      form={props}
      save={save}
      onSubmit={() => {
        if (!error) save.mutate({ providerAllowedHosts: hosts, ...props.extra });
      }}
      blocked={!!error}
      saveErrorInField={!!fieldErrors(save.error).providerAllowedHosts}
      saved="Saved. It applies at once."
    >
      <Field
        label="Allowed provider hosts"
        value={text}
        onChange={(e) => setText(e.target.value)}
        error={error}
        placeholder="127.0.0.1:11434"
        hint="Reef calls a provider's base URL only at public addresses. List here, comma-separated, the hosts on this machine or your network that members may use (a local Ollama: 127.0.0.1:11434). Give the port: without one, every port of that host is open to members."
      />
    </SettingsForm>
  );
}

type GrantableTool = PlatformSettings["grantableTools"]["value"][number];
const GRANTABLE: { value: GrantableTool; label: string; host: boolean }[] = [
  { value: "web", label: "Web: search and read web pages", host: false },
  { value: "files", label: "Files: read and write files in the agent's own folder", host: true },
  { value: "shell", label: "Shell: run commands in the workspace's runtime", host: true },
];

/**
 * The tools workspace admins may grant agents. Narrowing it does not remove
 * grants: agents keep them, blocked, and lose them at their gateway's next start.
 */
export function GrantableToolsForm(props: FormProps) {
  const current = props.settings.grantableTools;
  const [tools, setTools] = useState<GrantableTool[]>(current.value);
  const save = useSaveSettings(props.onSaved);
  const label = (t: GrantableTool) => GRANTABLE.find((g) => g.value === t)?.label.split(":")[0] ?? t;
  if (current.source === "config") {
    return (
      <div className="card">
        <FixedByConfig
          name="Tools workspace admins may grant"
          value={current.value.map(label).join(", ") || "none"}
          env="REEF_GRANTABLE_TOOLS"
        />
      </div>
    );
  }
  return (
    <SettingsForm
      form={props}
      save={save}
      onSubmit={() => save.mutate({ grantableTools: tools, ...props.extra })}
      blocked={false}
      saved="Saved. Agents granted a tool no longer allowed lose it when their workspace's runtime next starts."
    >
      <fieldset className="field">
        <legend>Tools workspace admins may grant</legend>
        {GRANTABLE.map((g) => {
          const unavailable = g.host && !current.sandboxed && !tools.includes(g.value);
          return (
            <label key={g.value} className="check">
              <input
                type="checkbox"
                name="grantableTools"
                value={g.value}
                checked={tools.includes(g.value)}
                disabled={unavailable}
                onChange={(e) => setTools(e.target.checked ? [...tools, g.value] : tools.filter((t) => t !== g.value))}
              />{" "}
              {g.label}
              {unavailable ? " (needs a sandbox this server cannot give)" : ""}
            </label>
          );
        })}
        <small className="hint">
          {current.sandboxed
            ? "Files and shell run inside each workspace's sandbox; allow them only if you trust workspace admins to grant them with care."
            : "Files and shell need each workspace's runtime in a sandbox, which this server cannot provide: install bubblewrap and socat (apt-get install bubblewrap socat) and restart Reef."}{" "}
          {current.source === "default" ? "Reef's default is web only." : null}
        </small>
      </fieldset>
    </SettingsForm>
  );
}
