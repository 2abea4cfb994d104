import { useState } from "react";
import type { PlatformSettings, SignInPolicySettings } from "../api/types.ts";
import { useConfirm } from "./confirm-dialog.tsx";
import { useIdentityProviders } from "./identity-providers.tsx";
import { FixedByConfig, type FormProps, SettingsForm, useSaveSettings } from "./platform-settings.tsx";

type Settings = PlatformSettings & SignInPolicySettings;

/**
 * The operator's sign-in policy: single sign-on required for everyone (breakglass accounts made with
 * `reef create-admin` keep their password), and a second factor required for everyone. Each is read-only when
 * Reef's configuration sets it.
 */
export function SignInPolicyForm(props: FormProps) {
  const settings = props.settings as Settings;
  const sso = settings.requireSso ?? { value: false, source: "default" as const };
  const tfa = settings.requireTwoFactor ?? { value: false, source: "default" as const };
  const [requireSso, setRequireSso] = useState(sso.value);
  const [requireTwoFactor, setRequireTwoFactor] = useState(tfa.value);
  const providers = useIdentityProviders();
  const { confirm, dialog } = useConfirm();
  const save = useSaveSettings(props.onSaved);
  const ssoFixed = sso.source === "config";
  const tfaFixed = tfa.source === "config";
  const anyEnabled = providers.data?.pages.some((p) => p.items.some((i) => i.enabled)) ?? false;
  // Switching SSO on needs a provider to sign in with; switching it off is always allowed.
  const ssoBlocked = !sso.value && !anyEnabled;
  const unchanged = requireSso === sso.value && requireTwoFactor === tfa.value;
  const missing = settings.requireSso === undefined;

  async function submit() {
    if (requireSso && !sso.value) {
      const ok = await confirm({
        title: "Require single sign-on for everyone?",
        body: (
          <>
            <p>
              From now on people sign in only through an identity provider: password sign-in, sign-up with a password
              and email sign-in links stop working for them.
            </p>
            <p>
              Accounts made with <code>reef create-admin</code> (breakglass accounts) keep their password, so an
              operator can always get back in. Check that yours is one, or that you can sign in with a provider, before
              going on.
            </p>
          </>
        ),
        confirmLabel: "Require single sign-on",
        danger: false,
      });
      if (!ok) return;
    }
    save.mutate({
      ...(ssoFixed || requireSso === sso.value ? {} : { requireSso }),
      ...(tfaFixed || requireTwoFactor === tfa.value ? {} : { requireTwoFactor }),
      ...props.extra,
    });
  }

  return (
    <div className="sso-policy">
      <SettingsForm
        form={props}
        save={save}
        onSubmit={() => void submit()}
        blocked={missing || unchanged || (ssoFixed && tfaFixed)}
        blockedWhy={
          missing
            ? "This Reef server does not offer a sign-in policy yet."
            : ssoFixed && tfaFixed
              ? "Reef's configuration sets both, so they cannot be changed here."
              : "Change a switch above to save."
        }
        saved="Saved. It applies to the next sign-in; sessions already open stay until they end."
      >
        <div className="policy-item">
          {ssoFixed ? (
            <FixedByConfig name="Require single sign-on" value={sso.value ? "on" : "off"} env="REEF_REQUIRE_SSO" />
          ) : (
            <label className="check">
              <input
                type="checkbox"
                checked={requireSso}
                disabled={ssoBlocked && !requireSso}
                aria-describedby="policy-sso-hint"
                onChange={(e) => setRequireSso(e.target.checked)}
              />
              Require single sign-on
            </label>
          )}
          <small id="policy-sso-hint" className="hint">
            Everyone signs in through an identity provider. Breakglass accounts made with <code>reef create-admin</code>{" "}
            keep password sign-in, so an operator can always get in.
          </small>
          {ssoBlocked && !ssoFixed && providers.isSuccess ? (
            <p className="field-error">No identity provider is enabled: add or switch one on above first.</p>
          ) : null}
        </div>
        <div className="policy-item">
          {tfaFixed ? (
            <FixedByConfig
              name="Require two-factor for everyone"
              value={tfa.value ? "on" : "off"}
              env="REEF_REQUIRE_TWO_FACTOR"
            />
          ) : (
            <label className="check">
              <input
                type="checkbox"
                checked={requireTwoFactor}
                aria-describedby="policy-2fa-hint"
                onChange={(e) => setRequireTwoFactor(e.target.checked)}
              />
              Require two-factor for everyone
            </label>
          )}
          <small id="policy-2fa-hint" className="hint">
            People who sign in with a password or an email link must also enter a code from an authenticator app; those
            without one set it up at their next sign-in. Single sign-on counts as the provider's own check.
          </small>
        </div>
      </SettingsForm>
      {dialog}
    </div>
  );
}
