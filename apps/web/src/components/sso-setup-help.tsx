import type { IdentityProvider } from "../api/types.ts";
import { CopyButton } from "./chat/copy-button.tsx";

/**
 * The OIDC redirect URI Reef will answer at for `slug` before it is saved (then the server's `callbackUrl`):
 * under the public URL, which is what the server uses too, or this page's origin while that is unknown.
 */
export function redirectUriFor(slug: string, publicUrl: string | undefined): string {
  const origin = (publicUrl || window.location.origin).replace(/\/+$/, "");
  return `${origin}/api/v1/auth/sso/${slug || "<slug>"}/callback`;
}

/** One value to register at the identity provider, with a copy button. */
export function CopyValue(props: { label: string; value: string; hint?: string }) {
  return (
    <div className="copy-value">
      <span className="label">{props.label}</span>
      <div className="secret-row">
        <code>{props.value}</code>
        <CopyButton text={() => props.value} label={props.label.toLowerCase()} />
      </div>
      {props.hint ? <small className="hint">{props.hint}</small> : null}
    </div>
  );
}

const OIDC_HINTS: { name: string; steps: string[] }[] = [
  {
    name: "Keycloak",
    steps: [
      "Clients → Create client: type OpenID Connect, a client ID such as reef.",
      "Turn on Client authentication (confidential) and Standard flow.",
      "Valid redirect URIs: the redirect URI above.",
      "Issuer URL: https://<keycloak>/realms/<realm>. The secret is under the client's Credentials tab.",
      "For groups: Client scopes → add a Group Membership mapper with the claim name groups (full path off).",
    ],
  },
  {
    name: "Microsoft Entra ID",
    steps: [
      "App registrations → New registration; Redirect URI: platform Web, the redirect URI above.",
      "Issuer URL: https://login.microsoftonline.com/<tenant-id>/v2.0.",
      "Client ID: the Application (client) ID. Certificates & secrets → New client secret: copy its Value.",
      "For groups: Token configuration → Add groups claim (the claim is groups; it lists group IDs).",
    ],
  },
  {
    name: "Google Workspace",
    steps: [
      "Google Cloud console → APIs & Services → Credentials → Create OAuth client ID, type Web application.",
      "Authorised redirect URIs: the redirect URI above.",
      "Issuer URL: https://accounts.google.com. Limit sign-in to your domain with Allowed email domains below.",
    ],
  },
  {
    name: "Okta",
    steps: [
      "Applications → Create App Integration: OIDC, Web Application.",
      "Sign-in redirect URIs: the redirect URI above; assign the people or groups who may use Reef.",
      "Issuer URL: https://<your-org>.okta.com (or your authorization server's issuer).",
      "For groups: add a groups claim to the ID token (Sign On tab → Groups claim filter).",
    ],
  },
  {
    name: "Authentik",
    steps: [
      "Applications → Providers → Create OAuth2/OpenID Provider, client type Confidential.",
      "Redirect URIs: the redirect URI above. Then create an Application using this provider.",
      "Issuer URL: https://<authentik>/application/o/<application-slug>/.",
      "The default profile scope already includes a groups claim.",
    ],
  },
];

/** Short, per-product setup steps for an OpenID Connect provider. */
export function OidcSetupHints() {
  return (
    <details className="sso-help">
      <summary>How to register Reef at Keycloak, Entra ID, Google, Okta or Authentik</summary>
      {OIDC_HINTS.map((h) => (
        <section key={h.name} aria-label={h.name}>
          <h4>{h.name}</h4>
          <ol>
            {h.steps.map((s) => (
              <li key={s}>{s}</li>
            ))}
          </ol>
        </section>
      ))}
    </details>
  );
}

/** What a SAML identity provider needs from Reef; known once the provider is saved. */
export function SamlSpDetails(props: { provider: IdentityProvider }) {
  const saml = props.provider.saml;
  if (!saml) return null;
  return (
    <div className="sso-sp">
      <h3>Register Reef at the identity provider</h3>
      <p className="hint">
        Most identity providers read these from the SP metadata URL; otherwise enter the entity ID and ACS URL by hand.
        Reef wants the email address as the NameID or in the email attribute set below.
      </p>
      <CopyValue label="SP entity ID" value={saml.spEntityId} />
      <CopyValue label="ACS URL" value={props.provider.callbackUrl} hint="Assertion Consumer Service, HTTP-POST." />
      <CopyValue label="SP metadata URL" value={saml.spMetadataUrl} />
    </div>
  );
}

const DAY = 24 * 60 * 60 * 1000;

/** The IdP's signing certificates, with expiry: during a rotation Reef trusts two. */
export function IdpCertList(props: { certs: NonNullable<IdentityProvider["saml"]>["idpCerts"] }) {
  if (props.certs.length === 0) return null;
  return (
    <ul className="sso-certs" aria-label="Identity provider certificates">
      {props.certs.map((c) => {
        const days = Math.floor((new Date(c.notAfter).getTime() - Date.now()) / DAY);
        return (
          <li key={c.fingerprint}>
            <span>{c.subject || "Certificate"}</span>{" "}
            <span className={days < 0 ? "badge badge-danger" : days < 30 ? "badge badge-warn" : "badge"}>
              {days < 0
                ? `expired ${new Date(c.notAfter).toLocaleDateString()}`
                : `expires ${new Date(c.notAfter).toLocaleDateString()}`}
            </span>
            <br />
            <small className="hint">
              SHA-256 <code>{c.fingerprint}</code>
            </small>
          </li>
        );
      })}
    </ul>
  );
}
