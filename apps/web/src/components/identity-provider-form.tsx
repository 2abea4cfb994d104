import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useRef, useState } from "react";
import { ApiError, api, fieldErrors, messageOf } from "../api/client.ts";
import type { IdentityProvider, IdentityProviderKind } from "../api/types.ts";
import { KEEP, SecretField, type SecretState, secretPatch } from "./connector-secret.tsx";
import { useFocusOnMount } from "./focus.ts";
import { Field, Notice, validateUrl } from "./forms.tsx";
import { platformSettingsQuery } from "./platform-settings.tsx";
import {
  domainsProblem,
  ProvisioningFields,
  type ProvisioningState,
  provisioningBody,
  type SsoRole,
} from "./sso-provisioning-fields.tsx";
import { CopyValue, IdpCertList, OidcSetupHints, redirectUriFor, SamlSpDetails } from "./sso-setup-help.tsx";

export const KIND_NAME: Record<IdentityProviderKind, string> = { oidc: "OpenID Connect", saml: "SAML 2.0" };

/** "Acme Okta" → "acme-okta": the slug is part of the callback URL. */
export function slugOf(name: string): string {
  return name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
}

/** The server's sentence for a failed save: SSO_FAILED (discovery, metadata) names what went wrong. */
export function ssoErrorText(err: unknown): string {
  return err instanceof ApiError && err.code === "SSO_FAILED" && err.message ? err.message : messageOf(err);
}

type SamlSource = "url" | "xml" | "manual";

function initialProvisioning(p: IdentityProvider | undefined): ProvisioningState {
  return {
    domains: p?.allowedDomains.join(", ") ?? "",
    workspaceId: p?.defaultWorkspaceId ?? "",
    role: (p?.defaultRole === "owner" ? "admin" : (p?.defaultRole ?? "member")) as SsoRole,
    groupClaim: p?.groupClaim ?? "",
    groups: Object.entries(p?.groupRoles ?? {}).map(([group, role], i) => ({
      key: i + 1,
      group,
      role: (role === "owner" ? "admin" : role) as SsoRole,
    })),
  };
}

/**
 * Adds or edits one identity provider. OIDC: issuer (discovered by the server on save), client ID, a write-only
 * client secret and scopes. SAML: a metadata URL, pasted metadata, or entry point and certificates by hand. Both:
 * the provisioning rules. The redirect URI (or, for SAML once saved, the SP details) is shown to copy.
 */
export function IdentityProviderForm(props: {
  kind: IdentityProviderKind;
  provider?: IdentityProvider;
  onSaved: (p: IdentityProvider, created: boolean) => void;
  onCancel: () => void;
}) {
  const p = props.provider;
  const kind = p?.kind ?? props.kind;
  const editing = !!p;
  const queryClient = useQueryClient();
  const publicUrl = useQuery(platformSettingsQuery).data?.publicUrl.value;
  const [name, setName] = useState(p?.name ?? "");
  const [slug, setSlug] = useState(p?.slug ?? "");
  const [slugTouched, setSlugTouched] = useState(editing);
  const [enabled, setEnabled] = useState(p?.enabled ?? true);
  const [issuer, setIssuer] = useState(p?.oidc?.issuer ?? "");
  const [clientId, setClientId] = useState(p?.oidc?.clientId ?? "");
  const [secret, setSecret] = useState<SecretState>(KEEP);
  const [scopes, setScopes] = useState(p?.oidc?.scopes.join(" ") ?? "openid email profile");
  const [source, setSource] = useState<SamlSource>(p?.saml ? (p.saml.metadataUrl ? "url" : "manual") : "url");
  const [metadataUrl, setMetadataUrl] = useState(p?.saml?.metadataUrl ?? "");
  const [metadataXml, setMetadataXml] = useState("");
  const [entryPoint, setEntryPoint] = useState(p?.saml?.entryPoint ?? "");
  const [idpEntityId, setIdpEntityId] = useState(p?.saml?.idpEntityId ?? "");
  const [certs, setCerts] = useState<string[]>(p?.saml ? [] : [""]);
  const [emailAttribute, setEmailAttribute] = useState(p?.saml?.emailAttribute ?? "");
  const [nameAttribute, setNameAttribute] = useState(p?.saml?.nameAttribute ?? "");
  const [rules, setRules] = useState<ProvisioningState>(() => initialProvisioning(p));
  const keyRef = useRef(rules.groups.length + 1);
  const whyId = useId();
  const focusFirst = useFocusOnMount<HTMLFormElement>("input");

  const slugNow = slugTouched ? slug : slugOf(name);

  function body(): Record<string, unknown> {
    const common = { kind, name: name.trim(), enabled, ...provisioningBody(rules) };
    if (kind === "oidc") {
      const s = secretPatch(secret);
      return {
        ...common,
        ...(editing ? {} : { slug: slugNow }),
        issuer: issuer.trim(),
        clientId: clientId.trim(),
        ...(s !== undefined && !(s === null && !editing) ? { clientSecret: s } : {}),
        scopes: scopes.split(/[\s,]+/).filter(Boolean),
      };
    }
    const pasted = certs.map((c) => c.trim()).filter(Boolean);
    return {
      ...common,
      ...(editing ? {} : { slug: slugNow }),
      ...(source === "url" ? { metadataUrl: metadataUrl.trim() } : {}),
      ...(source === "xml" && metadataXml.trim() ? { metadataXml } : {}),
      ...(source === "manual"
        ? {
            ...(p?.saml?.metadataUrl ? { metadataUrl: null } : {}),
            entryPoint: entryPoint.trim(),
            idpEntityId: idpEntityId.trim() || null,
            ...(pasted.length ? { idpCerts: pasted } : {}),
          }
        : {}),
      emailAttribute: emailAttribute.trim() || null,
      nameAttribute: nameAttribute.trim() || null,
    };
  }

  const save = useMutation({
    mutationFn: () =>
      p
        ? api<IdentityProvider>("PATCH", `/api/v1/admin/identity-providers/${p.id}`, body())
        : api<IdentityProvider>("POST", "/api/v1/admin/identity-providers", body()),
    onSuccess: async (saved) => {
      setSecret(KEEP);
      setMetadataXml("");
      setCerts([]);
      await queryClient.invalidateQueries({ queryKey: ["identity-providers"] });
      await queryClient.invalidateQueries({ queryKey: ["platform-settings"] });
      props.onSaved(saved, !editing);
    },
  });
  const server = fieldErrors(save.error);
  const errors: Record<string, string | undefined> = {
    ...server,
    slug: server.slug,
    issuer: validateUrl(issuer, "https://idp.example.com/realms/acme") ?? server.issuer,
    metadataUrl: validateUrl(metadataUrl, "https://idp.example.com/metadata.xml") ?? server.metadataUrl,
    entryPoint: validateUrl(entryPoint, "https://idp.example.com/sso/saml") ?? server.entryPoint,
    allowedDomains: domainsProblem(rules.domains) ?? server.allowedDomains,
  };
  const why = !name.trim()
    ? "Enter the button label."
    : !slugNow
      ? "Enter a slug."
      : kind === "oidc" && !issuer.trim()
        ? "Enter the issuer URL."
        : kind === "oidc" && !clientId.trim()
          ? "Enter the client ID."
          : kind === "saml" && source === "url" && !metadataUrl.trim()
            ? "Enter the metadata URL."
            : kind === "saml" && source === "xml" && !editing && !metadataXml.trim()
              ? "Paste the metadata XML."
              : kind === "saml" && source === "manual" && !entryPoint.trim()
                ? "Enter the single sign-on URL."
                : kind === "saml" && source === "manual" && !p?.saml?.idpCerts.length && !certs.some((c) => c.trim())
                  ? "Paste the identity provider's certificate."
                  : errors.issuer || errors.metadataUrl || errors.entryPoint || errors.allowedDomains
                    ? "Correct the fields marked above."
                    : undefined;
  const fieldShown = Object.keys(server).length > 0;
  const title = editing ? `Edit ${p?.name}` : `Add ${KIND_NAME[kind]} provider`;

  return (
    <form
      ref={focusFirst}
      className="card sso-form"
      aria-label={title}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!why && !save.isPending) save.mutate();
      }}
    >
      <h3>{title}</h3>
      <Field
        label="Button label"
        value={name}
        placeholder={kind === "oidc" ? "Acme Keycloak" : "Acme SAML"}
        onChange={(e) => setName(e.target.value)}
        error={errors.name}
        hint="Shown on the sign-in page as “Sign in with …”."
      />
      <Field
        label="Slug"
        value={slugNow}
        disabled={editing}
        onChange={(e) => {
          setSlugTouched(true);
          setSlug(e.target.value.toLowerCase());
        }}
        error={errors.slug}
        hint={
          editing
            ? "Part of the addresses registered at the identity provider, so it cannot change."
            : "Lower-case letters, digits and dashes; part of the callback URL."
        }
      />
      {p?.saml ? <SamlSpDetails provider={p} /> : null}
      {kind === "oidc" ? (
        <>
          <CopyValue
            label="Redirect URI"
            value={p?.callbackUrl ?? redirectUriFor(slugNow, publicUrl)}
            hint="Register this at the identity provider as the allowed redirect (callback) URI."
          />
          <OidcSetupHints />
          <Field
            label="Issuer URL"
            type="url"
            value={issuer}
            placeholder="https://idp.example.com/realms/acme"
            onChange={(e) => setIssuer(e.target.value.trim())}
            error={errors.issuer}
            hint="Reef reads <issuer>/.well-known/openid-configuration when you save."
          />
          <Field
            label="Client ID"
            value={clientId}
            autoComplete="off"
            onChange={(e) => setClientId(e.target.value)}
            error={errors.clientId}
          />
          <SecretField
            label="Client secret"
            stored={!!p?.oidc?.hasClientSecret}
            state={secret}
            onChange={setSecret}
            error={errors.clientSecret}
            hint="Stored encrypted; Reef never shows it again. Leave empty for a public client (PKCE only)."
          />
          <Field
            label="Scopes"
            value={scopes}
            onChange={(e) => setScopes(e.target.value)}
            error={errors.scopes}
            hint="Space-separated. openid is always sent; add groups if your provider needs it for the group claim."
          />
        </>
      ) : (
        <SamlFields
          provider={p}
          source={source}
          setSource={setSource}
          values={{ metadataUrl, metadataXml, entryPoint, idpEntityId, emailAttribute, nameAttribute }}
          set={{ setMetadataUrl, setMetadataXml, setEntryPoint, setIdpEntityId, setEmailAttribute, setNameAttribute }}
          certs={certs}
          setCerts={setCerts}
          errors={errors}
        />
      )}
      <ProvisioningFields
        value={rules}
        onChange={setRules}
        errors={errors}
        groupWord={kind === "oidc" ? "claim" : "attribute"}
        nextKey={() => keyRef.current++}
      />
      <label className="check">
        <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Show it on the
        sign-in page (enabled)
      </label>
      {save.error && !fieldShown ? <Notice>{ssoErrorText(save.error)}</Notice> : null}
      {save.error && fieldShown ? <Notice>Correct the fields marked above.</Notice> : null}
      <div className="actions">
        <button type="submit" disabled={!!why || save.isPending} aria-describedby={why ? whyId : undefined}>
          {save.isPending ? "Saving…" : editing ? "Save provider" : "Add provider"}
        </button>
        <button type="button" className="secondary" onClick={props.onCancel}>
          {editing ? "Close" : "Cancel"}
        </button>
        {why ? (
          <small id={whyId} className="disabled-why">
            {why}
          </small>
        ) : null}
      </div>
    </form>
  );
}

type Setter = (v: string) => void;

/** Where a SAML provider's details come from: its metadata URL, pasted metadata, or by hand. */
function SamlFields(props: {
  provider: IdentityProvider | undefined;
  source: SamlSource;
  setSource: (s: SamlSource) => void;
  values: Record<
    "metadataUrl" | "metadataXml" | "entryPoint" | "idpEntityId" | "emailAttribute" | "nameAttribute",
    string
  >;
  set: Record<
    "setMetadataUrl" | "setMetadataXml" | "setEntryPoint" | "setIdpEntityId" | "setEmailAttribute" | "setNameAttribute",
    Setter
  >;
  certs: string[];
  setCerts: (c: string[]) => void;
  errors: Record<string, string | undefined>;
}) {
  const { source, values: v, set, errors, certs } = props;
  const saml = props.provider?.saml;
  const xmlId = useId();
  return (
    <>
      {saml ? null : (
        <p className="hint">
          Once saved, Reef shows its SP entity ID, ACS URL and metadata URL to register at the identity provider.
        </p>
      )}
      <fieldset className="field">
        <legend>Identity provider details</legend>
        {(
          [
            ["url", "From its metadata URL (kept up to date)"],
            ["xml", "Paste its metadata XML"],
            ["manual", "Enter the sign-on URL and certificate by hand"],
          ] as const
        ).map(([value, label]) => (
          <label key={value} className="check">
            <input type="radio" name="saml-source" checked={source === value} onChange={() => props.setSource(value)} />{" "}
            {label}
          </label>
        ))}
      </fieldset>
      {source === "url" ? (
        <Field
          label="Metadata URL"
          type="url"
          value={v.metadataUrl}
          placeholder="https://idp.example.com/saml/metadata"
          onChange={(e) => set.setMetadataUrl(e.target.value.trim())}
          error={errors.metadataUrl}
          hint="Reef reads the sign-on URL and signing certificates from it when you save."
        />
      ) : null}
      {source === "xml" ? (
        <div className="field">
          <label htmlFor={xmlId}>Metadata XML</label>
          <textarea
            id={xmlId}
            rows={6}
            value={v.metadataXml}
            spellCheck={false}
            placeholder="<md:EntityDescriptor …>"
            onChange={(e) => set.setMetadataXml(e.target.value)}
            aria-invalid={errors.metadataXml ? true : undefined}
          />
          {errors.metadataXml ? <small className="field-error">{errors.metadataXml}</small> : null}
          {saml ? <small className="hint">Empty: keep the details saved now.</small> : null}
        </div>
      ) : null}
      {source === "manual" ? (
        <>
          <Field
            label="Single sign-on URL"
            type="url"
            value={v.entryPoint}
            placeholder="https://idp.example.com/sso/saml"
            onChange={(e) => set.setEntryPoint(e.target.value.trim())}
            error={errors.entryPoint}
            hint="Where Reef sends people to sign in (HTTP-Redirect binding)."
          />
          <Field
            label="Identity provider entity ID (optional)"
            value={v.idpEntityId}
            onChange={(e) => set.setIdpEntityId(e.target.value)}
            error={errors.idpEntityId}
          />
        </>
      ) : null}
      {saml ? (
        <div className="field">
          <span className="label">Signing certificates Reef trusts now</span>
          <IdpCertList certs={saml.idpCerts} />
        </div>
      ) : null}
      {source === "manual" ? (
        <CertEditor certs={certs} setCerts={props.setCerts} stored={!!saml?.idpCerts.length} error={errors.idpCerts} />
      ) : null}
      <Field
        label="Email attribute (optional)"
        value={v.emailAttribute}
        placeholder="email"
        onChange={(e) => set.setEmailAttribute(e.target.value)}
        error={errors.emailAttribute}
        hint="Empty: the NameID, or a common email attribute."
      />
      <Field
        label="Name attribute (optional)"
        value={v.nameAttribute}
        placeholder="displayName"
        onChange={(e) => set.setNameAttribute(e.target.value)}
        error={errors.nameAttribute}
      />
    </>
  );
}

/**
 * Certificates pasted by hand. They replace the trusted list when saved, so a rotation pastes both the current
 * certificate and the new one, and later saves the new one alone.
 */
function CertEditor(props: {
  certs: string[];
  setCerts: (c: string[]) => void;
  stored: boolean;
  error?: string | undefined;
}) {
  const { certs, setCerts } = props;
  const id = useId();
  return (
    <fieldset className="field">
      <legend>{props.stored ? "Replace the certificates (optional)" : "Signing certificates"}</legend>
      {certs.map((c, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: rows have no identity but their position
        <div key={i} className="field">
          <label htmlFor={`${id}-${i}`}>Certificate {i + 1}</label>
          <textarea
            id={`${id}-${i}`}
            rows={4}
            spellCheck={false}
            value={c}
            placeholder="-----BEGIN CERTIFICATE-----"
            onChange={(e) => setCerts(certs.map((x, j) => (j === i ? e.target.value : x)))}
          />
          <button
            type="button"
            className="secondary"
            aria-label={`Remove certificate ${i + 1}`}
            onClick={() => setCerts(certs.filter((_, j) => j !== i))}
          >
            Remove
          </button>
        </div>
      ))}
      {props.error ? <small className="field-error">{props.error}</small> : null}
      <div className="actions">
        <button
          type="button"
          className="secondary"
          disabled={certs.length >= 5}
          onClick={() => setCerts([...certs, ""])}
        >
          {certs.length ? "Add another certificate" : "Add a certificate"}
        </button>
      </div>
      <small className="hint">
        {props.stored
          ? "What you paste replaces the list above. To rotate, paste the current certificate and the new one; once the identity provider signs with the new one, save it alone."
          : "PEM or base64. Two while the identity provider rotates its key."}
      </small>
    </fieldset>
  );
}
