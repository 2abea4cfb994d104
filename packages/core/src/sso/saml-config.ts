import { X509Certificate } from "node:crypto";
import type { SamlProviderConfig } from "@reef/db";
import { generate } from "selfsigned";
import { ssoFailed } from "./sso-provisioning.ts";

/** The SAML part of `samlProviderBodySchema` as an operator sends it (every field optional on update). */
export interface SamlConfigInput {
  metadataUrl?: string | null | undefined;
  metadataXml?: string | undefined;
  entryPoint?: string | undefined;
  idpEntityId?: string | null | undefined;
  idpCerts?: string[] | undefined;
  emailAttribute?: string | null | undefined;
  nameAttribute?: string | null | undefined;
}

/** What Reef read from an IdP's metadata document. */
export interface IdpMetadata {
  entityId: string | null;
  entryPoint: string;
  certs: string[];
}

const METADATA_TIMEOUT_MS = 10_000;
const METADATA_MAX_BYTES = 2_000_000;
const MAX_REDIRECTS = 3;
const SP_CERT_YEARS = 10;
const REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/** Reef's SAML entity id for a provider, which is also where its SP metadata is served. */
export function spEntityId(publicUrl: string, slug: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/api/v1/auth/sso/${slug}/metadata`;
}

/** Where the IdP posts its responses for a provider (the assertion consumer service). */
export function spAcsUrl(publicUrl: string, slug: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/api/v1/auth/sso/${slug}/acs`;
}

/** A PEM or bare base64 certificate as PEM; throws SSO_FAILED when it is not an X.509 certificate. */
export function toPem(cert: string): string {
  const body = cert
    .replace(/-----(BEGIN|END) CERTIFICATE-----/g, "")
    .replace(/\s+/g, "")
    .trim();
  const pem = `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)?.join("\n") ?? ""}\n-----END CERTIFICATE-----\n`;
  try {
    new X509Certificate(pem);
  } catch {
    throw ssoFailed("One of the identity provider's certificates is not a valid X.509 certificate.");
  }
  return pem;
}

/** Subject, expiry and SHA-256 fingerprint of each certificate, so operators can tell old from new while rotating. */
export function describeCerts(pems: string[]): { subject: string; notAfter: string; fingerprint: string }[] {
  return pems.map((pem) => {
    const cert = new X509Certificate(pem);
    return {
      subject: cert.subject.split("\n").join(", "),
      notAfter: new Date(cert.validTo).toISOString(),
      fingerprint: cert.fingerprint256,
    };
  });
}

const XML_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
function decodeXml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);/gi, (whole, name: string) => {
    if (name[0] !== "#") return XML_ENTITIES[name.toLowerCase()] ?? whole;
    const code = name[1] === "x" || name[1] === "X" ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
    return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
  });
}

function attribute(tagAttributes: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`).exec(tagAttributes);
  const value = m?.[1] ?? m?.[2];
  return value === undefined ? undefined : decodeXml(value);
}

// Element names may carry any namespace prefix (md:, saml2:, none); metadata has no mixed content we need.
const P = "(?:[\\w.-]+:)?";

/**
 * Reads the parts Reef needs from IdP metadata: the entity id, the single
 * sign-on URL (HTTP-Redirect preferred, Reef sends requests that way) and every
 * signing certificate (several while the IdP rotates). A small reader on
 * purpose: metadata is data Reef only reads a few elements of, and entity
 * declarations are refused outright.
 */
export function parseIdpMetadata(xml: string): IdpMetadata {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw ssoFailed("The metadata must not contain a DOCTYPE or entities.");
  const text = xml.replace(/<!--[\s\S]*?-->/g, "");
  const idpRe = new RegExp(`<(${P})IDPSSODescriptor\\b[^>]*>([\\s\\S]*?)</\\1IDPSSODescriptor>`);
  const idp = idpRe.exec(text);
  if (!idp) {
    throw ssoFailed(
      /EntityDescriptor/.test(text)
        ? "The metadata describes no identity provider (no IDPSSODescriptor)."
        : "This is not SAML metadata: no EntityDescriptor was found.",
    );
  }
  // The EntityDescriptor that holds this IDPSSODescriptor: the last one opened before it.
  const before = text.slice(0, idp.index);
  const entities = [...before.matchAll(new RegExp(`<${P}EntityDescriptor\\b([^>]*)>`, "g"))];
  const entityId = attribute(entities.at(-1)?.[1] ?? "", "entityID") ?? null;
  const body = idp[2] ?? "";

  const services = [...body.matchAll(new RegExp(`<${P}SingleSignOnService\\b([^>]*?)/?>`, "g"))].map((m) => ({
    binding: attribute(m[1] ?? "", "Binding"),
    location: attribute(m[1] ?? "", "Location"),
  }));
  const sso =
    services.find((s) => s.binding === REDIRECT_BINDING && s.location) ??
    services.find((s) => s.binding === POST_BINDING && s.location);
  if (!sso?.location) {
    throw ssoFailed("The metadata has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding.");
  }
  if (!/^https?:\/\//i.test(sso.location)) throw ssoFailed("The metadata's single sign-on URL is not an http(s) URL.");

  const certs: string[] = [];
  const keyRe = new RegExp(`<(${P})KeyDescriptor\\b([^>]*?)(?:/>|>([\\s\\S]*?)</\\1KeyDescriptor>)`, "g");
  for (const key of body.matchAll(keyRe)) {
    const use = attribute(key[2] ?? "", "use");
    if (use !== undefined && use !== "signing") continue;
    for (const c of (key[3] ?? "").matchAll(
      new RegExp(`<${P}X509Certificate\\b[^>]*>([\\s\\S]*?)</${P}X509Certificate>`, "g"),
    )) {
      const pem = toPem(c[1] ?? "");
      if (!certs.includes(pem)) certs.push(pem);
    }
  }
  if (certs.length === 0) throw ssoFailed('The metadata has no signing certificate (KeyDescriptor use="signing").');
  return { entityId, entryPoint: sso.location, certs };
}

/** Fetches IdP metadata: 10 s at most, redirects only on the same host, http only when allowed. */
export async function fetchIdpMetadata(url: string, allowHttp: boolean): Promise<string> {
  let current = new URL(url);
  const host = current.host;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    if (current.protocol !== "https:" && !(allowHttp && current.protocol === "http:")) {
      throw ssoFailed("The metadata URL must use https.");
    }
    let res: Response;
    try {
      res = await fetch(current, {
        redirect: "manual",
        signal: AbortSignal.timeout(METADATA_TIMEOUT_MS),
        headers: { accept: "application/samlmetadata+xml, application/xml, text/xml" },
      });
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
      throw ssoFailed(
        timedOut
          ? `The metadata URL did not answer within ${METADATA_TIMEOUT_MS / 1000} seconds.`
          : `The metadata URL could not be reached (${current.host}).`,
      );
    }
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get("location");
      await res.body?.cancel();
      if (!location) throw ssoFailed("The metadata URL redirected without a location.");
      const next = new URL(location, current);
      if (next.host !== host) throw ssoFailed("The metadata URL redirected to another host; give the final URL.");
      current = next;
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw ssoFailed(`The metadata URL answered HTTP ${res.status}.`);
    }
    const declared = Number(res.headers.get("content-length") ?? 0);
    if (declared > METADATA_MAX_BYTES) {
      await res.body?.cancel();
      throw ssoFailed("The metadata document is too large.");
    }
    const xml = await res.text();
    if (xml.length > METADATA_MAX_BYTES) throw ssoFailed("The metadata document is too large.");
    return xml;
  }
  throw ssoFailed("The metadata URL redirected too many times.");
}

/**
 * A new RSA key pair and self-signed certificate (PEM), valid for `years`:
 * Reef's side of a SAML provider (and the test IdP's keys).
 */
export async function selfSignedKeyPair(
  commonName: string,
  years = SP_CERT_YEARS,
): Promise<{ cert: string; privateKey: string }> {
  const notAfterDate = new Date();
  notAfterDate.setFullYear(notAfterDate.getFullYear() + years);
  const pems = await generate([{ name: "commonName", value: commonName.slice(0, 64) }], {
    keySize: 2048,
    algorithm: "sha256",
    notAfterDate,
  });
  return { cert: pems.cert, privateKey: pems.private };
}

function spCommonName(entityId: string): string {
  try {
    return `Reef SAML SP ${new URL(entityId).host}`;
  } catch {
    return "Reef SAML SP";
  }
}

/**
 * The stored SAML settings from what an operator sent: metadata pasted or
 * fetched, or the entry point and certificates by hand (hand-given parts win
 * over metadata, so a certificate list can be edited while rotating). On
 * update, `existing` fills what was not sent. Reef's own key pair is made once:
 * `spPrivateKeyPem` is returned only then, for the caller to seal (never stored
 * in `config`, never returned to anyone).
 */
export async function buildSamlConfig(
  input: SamlConfigInput,
  existing: SamlProviderConfig | undefined,
  opts: { allowHttp: boolean; entityId: string },
): Promise<{ config: SamlProviderConfig; spPrivateKeyPem?: string }> {
  let fromMetadata: IdpMetadata | undefined;
  let metadataUrl = existing?.metadataUrl ?? null;
  if (input.metadataXml?.trim()) {
    fromMetadata = parseIdpMetadata(input.metadataXml);
    metadataUrl = input.metadataUrl ?? null;
  } else if (input.metadataUrl) {
    fromMetadata = parseIdpMetadata(await fetchIdpMetadata(input.metadataUrl, opts.allowHttp));
    metadataUrl = input.metadataUrl;
  } else if (input.metadataUrl === null) {
    metadataUrl = null;
  }
  const entryPoint = input.entryPoint ?? fromMetadata?.entryPoint ?? existing?.entryPoint;
  const idpCerts = input.idpCerts?.map(toPem) ?? fromMetadata?.certs ?? existing?.idpCerts ?? [];
  const idpEntityId =
    input.idpEntityId !== undefined ? input.idpEntityId : (fromMetadata?.entityId ?? existing?.idpEntityId ?? null);
  if (!entryPoint) {
    throw ssoFailed("Give the identity provider's metadata (URL or XML), or its single sign-on URL and certificate.");
  }
  if (entryPoint.startsWith("http:") && !opts.allowHttp) {
    throw ssoFailed("The single sign-on URL must use https.");
  }
  if (idpCerts.length === 0) {
    throw ssoFailed("Give at least one signing certificate of the identity provider.");
  }
  let spCert = existing?.spCert;
  let spPrivateKeyPem: string | undefined;
  if (!spCert) {
    const pair = await selfSignedKeyPair(spCommonName(opts.entityId));
    spCert = pair.cert;
    spPrivateKeyPem = pair.privateKey;
  }
  const config: SamlProviderConfig = {
    entryPoint,
    idpEntityId: idpEntityId?.trim() || null,
    idpCerts: [...new Set(idpCerts)],
    metadataUrl,
    spCert,
    emailAttribute: (input.emailAttribute !== undefined ? input.emailAttribute : existing?.emailAttribute) || null,
    nameAttribute: (input.nameAttribute !== undefined ? input.nameAttribute : existing?.nameAttribute) || null,
  };
  return spPrivateKeyPem ? { config, spPrivateKeyPem } : { config };
}
