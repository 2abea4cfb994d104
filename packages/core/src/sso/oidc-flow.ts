import { randomBytes } from "node:crypto";
import { type Db, type OidcProviderConfig, withScope } from "@reef/db";
import * as oidc from "openid-client";
import { consumeAuthToken, issueAuthToken } from "../identity/auth-tokens.ts";
import type { Sealer } from "../shared/sealing.ts";
import { oidcConfigOf, openProviderSecret, ssoCallbackUrl } from "./identity-provider-service.ts";
import { type IdentityProviderRow, type SsoProfile, ssoFailed } from "./sso-provisioning.ts";

/** How long a sign-in at the provider may take, from the redirect to the callback. */
const STATE_TTL_MS = 10 * 60_000;
/** Clocks of Reef and the IdP may disagree this much (seconds) on an id token's iat / exp. */
const CLOCK_TOLERANCE_S = 60;
/** Discovery, token and userinfo calls give up after this (seconds). */
const HTTP_TIMEOUT_S = 10;

/** A started sign-in: send the browser to `redirectUrl`, and keep `binding` in its `reef_sso` cookie. */
export interface OidcStart {
  redirectUrl: string;
  binding: string;
}

interface StateData {
  verifier: string;
  nonce: string;
  next: string;
}

/**
 * The OpenID Connect authorization code flow with PKCE (S256), state and nonce.
 * The state is a single-use `sso_state` token bound to the browser that started
 * (the `reef_sso` cookie); its row holds the PKCE verifier, the nonce and where
 * to land. openid-client checks the id token's signature, issuer, audience,
 * expiry and nonce. Discovery documents are cached per provider version (id and
 * `updatedAt`), so a changed provider is read again on every replica.
 */
export function createOidcFlow(deps: {
  db: Db;
  sealer: Sealer;
  publicUrl: () => Promise<string>;
  /** `REEF_SSO_ALLOW_HTTP`: talk to http issuers (test IdPs). */
  allowHttp: boolean;
}) {
  const { db, sealer } = deps;
  const cache = new Map<string, { key: string; config: Promise<oidc.Configuration> }>();

  function discover(config: OidcProviderConfig, secret: string | undefined): Promise<oidc.Configuration> {
    return oidc.discovery(
      new URL(config.issuer),
      config.clientId,
      { [oidc.clockTolerance]: CLOCK_TOLERANCE_S },
      secret ? oidc.ClientSecretBasic(secret) : oidc.None(),
      {
        timeout: HTTP_TIMEOUT_S,
        ...(deps.allowHttp && config.issuer.startsWith("http:") ? { execute: [oidc.allowInsecureRequests] } : {}),
      },
    );
  }

  function configurationOf(provider: IdentityProviderRow): Promise<oidc.Configuration> {
    const key = `${provider.updatedAt.getTime()}`;
    const hit = cache.get(provider.id);
    if (hit && hit.key === key) return hit.config;
    const config = discover(oidcConfigOf(provider), openProviderSecret(sealer, provider));
    // A failed discovery is not kept: the next sign-in tries again.
    config.catch(() => {
      if (cache.get(provider.id)?.config === config) cache.delete(provider.id);
    });
    cache.set(provider.id, { key, config });
    return config;
  }

  async function configurationOrFail(provider: IdentityProviderRow) {
    try {
      return await configurationOf(provider);
    } catch (err) {
      throw ssoFailed(`${provider.name} could not be reached (${(err as Error).message}). Try again later.`);
    }
  }

  return {
    /** Reads the issuer's discovery document with these settings; throws with the reason when it cannot. */
    async check(config: OidcProviderConfig, secret: string | undefined): Promise<void> {
      await discover(config, secret);
    },

    /** Forgets a provider's cached discovery (it changed or was deleted). */
    forget(providerId: string): void {
      cache.delete(providerId);
    },

    /** The IdP's authorization URL for a new sign-in, and the secret the browser's cookie must hold. */
    async start(provider: IdentityProviderRow, next: string): Promise<OidcStart> {
      const config = await configurationOrFail(provider);
      const verifier = oidc.randomPKCECodeVerifier();
      const nonce = oidc.randomNonce();
      const binding = randomBytes(32).toString("base64url");
      const state = await withScope(db, {}, (tx) =>
        issueAuthToken(tx, {
          kind: "sso_state",
          ttlMs: STATE_TTL_MS,
          providerId: provider.id,
          binding,
          data: { verifier, nonce, next } satisfies StateData,
        }),
      );
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: ssoCallbackUrl(await deps.publicUrl(), provider),
        scope: oidcScopes(provider),
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: "S256",
      });
      return { redirectUrl: url.href, binding };
    },

    /**
     * Completes a sign-in from the IdP's redirect (its query `params`): the state must be this
     * browser's unused one for this provider; then the code is exchanged and the
     * id token checked. @returns the profile it vouches for, and where to land.
     */
    async callback(
      provider: IdentityProviderRow,
      params: URLSearchParams,
      binding: string | undefined,
    ): Promise<{ profile: SsoProfile; next: string }> {
      // The redirect URI as registered (the public URL), whatever Host the request came in on.
      const currentUrl = new URL(ssoCallbackUrl(await deps.publicUrl(), provider));
      currentUrl.search = params.toString();
      const error = currentUrl.searchParams.get("error");
      const state = currentUrl.searchParams.get("state");
      if (!state) {
        throw ssoFailed(
          error
            ? `${provider.name} refused the sign-in: ${currentUrl.searchParams.get("error_description") ?? error}.`
            : "The sign-in response has no state. Start again from the sign-in page.",
        );
      }
      const row = await withScope(db, {}, (tx) =>
        consumeAuthToken(tx, "sso_state", state, { binding, what: "This sign-in attempt" }),
      );
      // A state without a binding could be replayed from any browser: refuse it even if the row had none.
      if (!binding || row.providerId !== provider.id) {
        throw ssoFailed("This sign-in response does not belong to this browser. Start again from the sign-in page.");
      }
      if (error) {
        throw ssoFailed(
          `${provider.name} refused the sign-in: ${currentUrl.searchParams.get("error_description") ?? error}.`,
        );
      }
      const data = row.data as unknown as StateData;
      const config = await configurationOrFail(provider);
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
      try {
        tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
          pkceCodeVerifier: data.verifier,
          expectedState: state,
          expectedNonce: data.nonce,
          idTokenExpected: true,
        });
      } catch (err) {
        throw ssoFailed(`${provider.name} sign-in could not be verified: ${(err as Error).message}.`);
      }
      const claims = tokens.claims();
      if (!claims) throw ssoFailed(`${provider.name} did not send an id token.`);
      let info: Record<string, unknown> = {};
      const needUserinfo =
        typeof claims.email !== "string" || (provider.groupClaim !== null && claims[provider.groupClaim] === undefined);
      if (needUserinfo && config.serverMetadata().userinfo_endpoint) {
        try {
          info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        } catch (err) {
          throw ssoFailed(`${provider.name} did not give Reef the account's details: ${(err as Error).message}.`);
        }
      }
      const pick = (name: string): unknown => (claims[name] !== undefined ? claims[name] : info[name]);
      const email = pick("email");
      const name = pick("name");
      const groups = provider.groupClaim ? pick(provider.groupClaim) : undefined;
      return {
        profile: {
          subject: claims.sub,
          email: typeof email === "string" ? email : "",
          // Only an explicit "not verified" refuses; many IdPs omit the claim for managed accounts.
          emailVerified: pick("email_verified") !== false && pick("email_verified") !== "false",
          name: typeof name === "string" ? name : undefined,
          groups: Array.isArray(groups)
            ? groups.filter((g): g is string => typeof g === "string")
            : typeof groups === "string"
              ? [groups]
              : [],
        },
        next: data.next,
      };
    },
  };
}

/** The scopes asked for: the provider's, always with `openid`. */
function oidcScopes(provider: IdentityProviderRow): string {
  const scopes = new Set(oidcConfigOf(provider).scopes);
  scopes.add("openid");
  return [...scopes].join(" ");
}

export type OidcFlow = ReturnType<typeof createOidcFlow>;
