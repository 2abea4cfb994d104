import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, fieldErrors, messageOf } from "../api/client.ts";
import type { Me } from "../api/types.ts";
import { Field, Notice } from "./forms.tsx";
import { useNewPassword } from "./new-password.tsx";

/** Name and email. A new email takes effect only once its link, mailed to the new address, is opened. */
export function ProfileSection(props: { user: Me["user"] }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState(props.user.name);
  useEffect(() => setName(props.user.name), [props.user.name]);
  const rename = useMutation({
    mutationFn: () => api("PATCH", "/api/v1/me", { name: name.trim() }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["me"] }),
  });
  const [changing, setChanging] = useState(false);
  const [email, setEmail] = useState({ newEmail: "", password: "" });
  const change = useMutation({
    mutationFn: () => api("POST", "/api/v1/me/email", email),
  });
  const nameErrors = fieldErrors(rename.error);
  const emailErrors = fieldErrors(change.error);
  return (
    <section className="card" id="profile" aria-labelledby="profile-title">
      <h2 id="profile-title">Profile</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          rename.mutate();
        }}
        noValidate
      >
        <Field
          label="Name"
          autoComplete="name"
          required
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            rename.reset();
          }}
          error={nameErrors.name}
        />
        {rename.isSuccess ? <Notice kind="ok">Your name is saved.</Notice> : null}
        {rename.isError && !nameErrors.name ? <Notice>{messageOf(rename.error)}</Notice> : null}
        <button type="submit" disabled={rename.isPending || !name.trim() || name.trim() === props.user.name}>
          {rename.isPending ? "Saving…" : "Save name"}
        </button>
      </form>
      <h3>Email</h3>
      <p>
        <strong>{props.user.email}</strong>{" "}
        {changing ? null : (
          <button type="button" className="link-button" onClick={() => setChanging(true)}>
            Change email
          </button>
        )}
      </p>
      {change.isSuccess ? (
        <Notice kind="ok">
          Check your new inbox: we sent a link to <strong>{email.newEmail}</strong>. Your email changes when you open it
          (within 24 hours).
        </Notice>
      ) : null}
      {changing && !change.isSuccess ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            change.mutate();
          }}
          noValidate
        >
          <Field
            label="New email address"
            type="email"
            autoComplete="email"
            required
            value={email.newEmail}
            onChange={(e) => setEmail({ ...email, newEmail: e.target.value })}
            error={emailErrors.newEmail}
          />
          <Field
            label="Current password"
            type="password"
            autoComplete="current-password"
            required
            value={email.password}
            onChange={(e) => setEmail({ ...email, password: e.target.value })}
            hint="To confirm it's you."
            error={emailErrors.password}
          />
          {change.isError && !emailErrors.newEmail && !emailErrors.password ? (
            <Notice>{messageOf(change.error)}</Notice>
          ) : null}
          <div className="actions">
            <button type="submit" disabled={change.isPending || !email.newEmail.trim() || !email.password}>
              {change.isPending ? "Sending…" : "Send confirmation link"}
            </button>
            <button type="button" className="secondary" onClick={() => setChanging(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}
    </section>
  );
}

/** A new password (other sessions are signed out by the server; this one stays). */
export function PasswordSection() {
  const queryClient = useQueryClient();
  const [currentPassword, setCurrentPassword] = useState("");
  const next = useNewPassword();
  const change = useMutation({
    mutationFn: () => api("POST", "/api/v1/me/password", { currentPassword, newPassword: next.password }),
    onSuccess: () => {
      setCurrentPassword("");
      next.reset();
      void queryClient.invalidateQueries({ queryKey: ["my-sessions"] });
    },
  });
  const errors = fieldErrors(change.error);
  return (
    <section className="card" id="password" aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (next.confirmed()) change.mutate();
        }}
        noValidate
      >
        <Field
          label="Current password"
          type="password"
          autoComplete="current-password"
          required
          value={currentPassword}
          onChange={(e) => setCurrentPassword(e.target.value)}
          error={errors.currentPassword}
        />
        {next.fields(errors.newPassword)}
        {change.isSuccess ? (
          <Notice kind="ok">Your password is changed. Every other device was signed out.</Notice>
        ) : null}
        {change.isError && !errors.currentPassword && !errors.newPassword ? (
          <Notice>{messageOf(change.error)}</Notice>
        ) : null}
        <button type="submit" disabled={change.isPending || !currentPassword || !next.password}>
          {change.isPending ? "Saving…" : "Change password"}
        </button>
      </form>
    </section>
  );
}
