import { useState } from "react";
import { Field } from "./forms.tsx";

/** The early hint the server's password policy would give anyway (it checks more: common passwords, the email). */
export function passwordHint(password: string): string | undefined {
  return password && password.length < 12 ? "At least 12 characters." : undefined;
}

/**
 * A new password typed twice, as the password change and the reset page ask
 * for it: the hint while it is short, and the confirmation flagged only after
 * a submit that found the two different (until it is edited again).
 */
export function useNewPassword() {
  const [value, setValue] = useState({ password: "", confirm: "" });
  const [mismatch, setMismatch] = useState(false);
  return {
    password: value.password,
    /** Whether both entries agree; flags the confirmation field when they do not. */
    confirmed(): boolean {
      const ok = value.password === value.confirm;
      setMismatch(!ok);
      return ok;
    },
    reset() {
      setValue({ password: "", confirm: "" });
      setMismatch(false);
    },
    fields(serverError: string | undefined) {
      return (
        <>
          <Field
            label="New password"
            type="password"
            autoComplete="new-password"
            required
            value={value.password}
            onChange={(e) => setValue({ ...value, password: e.target.value })}
            error={serverError ?? passwordHint(value.password)}
          />
          <Field
            label="Confirm new password"
            type="password"
            autoComplete="new-password"
            required
            value={value.confirm}
            onChange={(e) => {
              setValue({ ...value, confirm: e.target.value });
              setMismatch(false);
            }}
            error={mismatch ? "The two passwords are not the same." : undefined}
          />
        </>
      );
    },
  };
}
