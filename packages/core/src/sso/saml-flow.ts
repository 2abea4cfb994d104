import { randomBytes } from "node:crypto";
import { type CacheProvider, type Profile, SAML, type SamlConfig, ValidateInResponseTo } from "@node-saml/node-saml";
import { AppError, NotFoundError } from "@reef/contracts";
import { type Db, type SamlProviderConfig, schema, withScope } from "@reef/db";
import { eq } from "drizzle-orm";
import type { AuditService } from "../audit/audit-service.ts";
import { consumeAuthToken, issueAuthToken } from "../identity/auth-tokens.ts";
import { safeNext } from "../identity/next-path.ts";
import type { RequestContext } from "../shared/context.ts";
import type { Sealer } from "../shared/sealing.ts";
import { providerSecretAad } from "./identity-provider-service.ts";
import { spAcsUrl, spEntityId } from "./saml-config.ts";
import {
  auditSsoRefusal,
  type IdentityProviderRow,
  type SsoOutcome,
  type SsoProvisioning,
  ssoFailed,
} from "./sso-provisioning.ts";

/** How long a person has at the IdP before the sign-in attempt lapses. */
const STATE_TTL_MS = 10 * 60_000;
/** Clocks of Reef and the IdP may differ this much. */
const CLOCK_SKEW_MS = 60_000;
const NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * node-saml's request-id cache, answering only for the one request this
 * response must answer (with when it was made: node-saml checks its age too).
 */
function oneRequestCache(request: { id: string; issuedAt: Date } | null): CacheProvider {
  return {
    saveAsync: async (_key, value) => ({ value, createdAt: Date.now() }),
    getAsync: async (key) => (request && key === request.id ? request.issuedAt.toISOString() : null),
    removeAsync: async (key) => key,
  };
}

/** An attribute's values as strings (node-saml gives a string, an array, or objects for odd values). */
function values(v: unknown): string[] {
  const list = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return list
    .map((x) => (typeof x === "string" ? x : typeof x === "object" && x && "_" in x ? String(x._) : ""))
    .map((x) => x.trim())
    .filter(Boolean);
}

/** A sentence for what node-saml refused, without echoing the response back. */
function refusal(providerName: string, err: unknown): { reason: string; message: string } {
  const text = err instanceof Error ? err.message : String(err);
  const says = (re: RegExp) => re.test(text);
  if (says(/signature|not signed|cannot obtain assertion/i)) {
    return {
      reason: "signature",
      message: `${providerName}'s response was not signed with a certificate Reef trusts for this provider.`,
    };
  }
  if (says(/InResponseTo/i)) {
    return { reason: "in_response_to", message: `${providerName}'s response does not answer this sign-in attempt.` };
  }
  if (says(/audience/i)) {
    return { reason: "audience", message: `${providerName}'s response was meant for another service.` };
  }
  // node-saml says "no valid subject confirmation" when its NotOnOrAfter has passed.
  if (says(/expired|NotBefore|NotOnOrAfter|not yet valid|too old|subject confirmation/i)) {
    return { reason: "expired", message: `${providerName}'s response has expired. Sign in again.` };
  }
  if (says(/issuer/i)) {
    return { reason: "issuer", message: `The response did not come from ${providerName}'s configured entity.` };
  }
  if (says(/SAML provider returned/i)) {
    return { reason: "idp_error", message: `${providerName} did not sign you in.` };
  }
  return { reason: "invalid", message: `${providerName}'s response could not be verified.` };
}

export interface SamlFlowDeps {
  db: Db;
  /** The platform sealer: opens the SP private key. */
  sealer: Pick<Sealer, "open">;
  publicUrl: () => Promise<string> | string;
  provisioning: SsoProvisioning;
  /** Records refused responses (bad signature, wrong audience, replays). */
  audit?: AuditService | undefined;
}

/**
 * SP-initiated SAML 2.0 sign-in: a signed AuthnRequest over HTTP-Redirect, its
 * id kept in a single-use `sso_state` token that travels as RelayState, and
 * the IdP's POSTed response verified by node-saml (signed assertion, audience,
 * timestamps, InResponseTo matching that token's request) before the profile
 * goes to SSO provisioning.
 */
export function createSamlFlow(deps: SamlFlowDeps) {
  const { db, sealer, provisioning } = deps;

  function configOf(provider: IdentityProviderRow): SamlProviderConfig {
    if (provider.kind !== "saml") throw ssoFailed(`${provider.name} is not a SAML provider.`);
    return provider.config as SamlProviderConfig;
  }

  function privateKeyOf(provider: IdentityProviderRow): string {
    if (!provider.secretSealed) {
      throw ssoFailed(`${provider.name} has no service-provider key yet. An operator must save the provider again.`);
    }
    try {
      return sealer.open(provider.secretSealed, providerSecretAad(provider.id));
    } catch {
      throw ssoFailed(`${provider.name}'s service-provider key cannot be opened. An operator must save it again.`);
    }
  }

  async function samlFor(
    provider: IdentityProviderRow,
    extra: Pick<SamlConfig, "cacheProvider" | "generateUniqueId">,
  ): Promise<SAML> {
    const config = configOf(provider);
    const base = await deps.publicUrl();
    const entityId = spEntityId(base, provider.slug);
    return new SAML({
      entryPoint: config.entryPoint,
      issuer: entityId,
      audience: entityId,
      callbackUrl: spAcsUrl(base, provider.slug),
      idpCert: config.idpCerts,
      ...(config.idpEntityId ? { idpIssuer: config.idpEntityId } : {}),
      privateKey: privateKeyOf(provider),
      publicCert: config.spCert,
      signatureAlgorithm: "sha256",
      digestAlgorithm: "http://www.w3.org/2001/04/xmlenc#sha256",
      identifierFormat: NAMEID_UNSPECIFIED,
      // Requesting a password context would refuse people who signed in with MFA or a passkey at the IdP.
      disableRequestedAuthnContext: true,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      acceptedClockSkewMs: CLOCK_SKEW_MS,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: STATE_TTL_MS,
      ...extra,
    });
  }

  async function refuse(ctx: RequestContext, provider: IdentityProviderRow, reason: string) {
    if (deps.audit) await auditSsoRefusal(deps.audit, ctx, provider, reason);
  }

  /** Consumes the RelayState token once; @returns the request id it holds and where to land. */
  async function claimState(
    ctx: RequestContext,
    provider: IdentityProviderRow,
    relayState: string | undefined,
  ): Promise<{ requestId: string; issuedAt: Date; next: string }> {
    if (!relayState || relayState.length > 200) {
      await refuse(ctx, provider, "no_relay_state");
      throw ssoFailed(`Sign-in with ${provider.name} must start from Reef's sign-in page. Start again there.`);
    }
    let row: Awaited<ReturnType<typeof consumeAuthToken>>;
    try {
      row = await withScope(db, {}, (tx) =>
        consumeAuthToken(tx, "sso_state", relayState, { what: "This sign-in attempt" }),
      );
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      await refuse(ctx, provider, "relay_state");
      throw ssoFailed(`${err.message.replace(/ Ask for a new one\.$/, "")} Sign in with ${provider.name} again.`);
    }
    const requestId = row.data.requestId;
    if (row.providerId !== provider.id || typeof requestId !== "string") {
      await refuse(ctx, provider, "relay_state");
      throw ssoFailed(`This sign-in attempt was not for ${provider.name}. Sign in again.`);
    }
    return { requestId, issuedAt: row.createdAt, next: safeNext(row.data.next) };
  }

  /** The person as Reef needs them, from a verified assertion. */
  function profileOf(provider: IdentityProviderRow, profile: Profile) {
    const config = configOf(provider);
    const attrs = (profile.attributes ?? {}) as Record<string, unknown>;
    const first = (name: string | null | undefined) => (name ? values(attrs[name])[0] : undefined);
    const nameId = (profile.nameID ?? "").trim();
    if (!nameId) throw ssoFailed(`${provider.name} sent no NameID for this account.`);
    const email = EMAIL_RE.test(nameId)
      ? nameId
      : (first(config.emailAttribute) ?? first("email") ?? first("mail") ?? values(profile.mail)[0] ?? "");
    const name = first(config.nameAttribute) ?? first("displayName") ?? first("name");
    const groups = provider.groupClaim ? values(attrs[provider.groupClaim]) : [];
    return { subject: nameId, email, emailVerified: true, ...(name ? { name } : {}), groups };
  }

  return {
    /** The enabled SAML provider with this slug (platform metadata, read in platform scope); else 404. */
    async provider(slug: string): Promise<IdentityProviderRow> {
      const row = await withScope(db, { platform: true }, async (tx) => {
        const [r] = await tx
          .select()
          .from(schema.identityProviders)
          .where(eq(schema.identityProviders.slug, slug.toLowerCase()));
        return r;
      });
      if (row?.kind !== "saml" || !row.enabled) {
        throw new NotFoundError("There is no SAML sign-in with this name. It may have been removed or turned off.");
      }
      return row;
    },

    /** Starts a sign-in: @returns the IdP URL carrying a signed AuthnRequest and the RelayState token. */
    async start(provider: IdentityProviderRow, opts: { next?: string | undefined }): Promise<{ redirectUrl: string }> {
      const requestId = `_${randomBytes(20).toString("hex")}`;
      const token = await withScope(db, {}, (tx) =>
        issueAuthToken(tx, {
          kind: "sso_state",
          providerId: provider.id,
          ttlMs: STATE_TTL_MS,
          data: { requestId, next: safeNext(opts.next) },
        }),
      );
      const saml = await samlFor(provider, {
        generateUniqueId: () => requestId,
        cacheProvider: oneRequestCache(null),
      });
      try {
        return { redirectUrl: await saml.getAuthorizeUrlAsync(token, undefined, {}) };
      } catch {
        throw ssoFailed(`Reef could not build the sign-in request for ${provider.name}.`);
      }
    },

    /**
     * The assertion consumer service: verifies the POSTed response against the
     * attempt its RelayState names (used once), then signs the person in.
     */
    async acs(
      provider: IdentityProviderRow,
      body: { SAMLResponse: string; RelayState?: string | undefined },
      ctx: RequestContext,
    ): Promise<{ outcome: SsoOutcome; next: string }> {
      const { requestId, issuedAt, next } = await claimState(ctx, provider, body.RelayState);
      const saml = await samlFor(provider, { cacheProvider: oneRequestCache({ id: requestId, issuedAt }) });
      let profile: Profile | null;
      try {
        ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: body.SAMLResponse }));
      } catch (err) {
        const { reason, message } = refusal(provider.name, err);
        await refuse(ctx, provider, reason);
        throw ssoFailed(message);
      }
      if (!profile) {
        await refuse(ctx, provider, "no_assertion");
        throw ssoFailed(`${provider.name} did not sign you in.`);
      }
      const outcome = await provisioning.signInWithProfile(ctx, provider, profileOf(provider, profile));
      return { outcome, next };
    },

    /** Reef's SP metadata for this provider: entity id, ACS URL (HTTP-POST) and the signing certificate. */
    async metadata(provider: IdentityProviderRow): Promise<string> {
      const saml = await samlFor(provider, { cacheProvider: oneRequestCache(null) });
      const config = configOf(provider);
      return saml.generateServiceProviderMetadata(null, config.spCert);
    },
  };
}

export type SamlFlow = ReturnType<typeof createSamlFlow>;
