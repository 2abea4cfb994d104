import { NotFoundError } from "@reef/contracts";
import { type Db, schema, withScope } from "@reef/db";
import { and, asc, desc, eq } from "drizzle-orm";
import type { AuditService } from "../audit/audit-service.ts";
import { safeNext } from "../identity/next-path.ts";
import type { SignIn } from "../identity/sign-in.ts";
import type { RateLimits } from "../rate-limit/rate-limits.ts";
import type { RequestContext, UserActor } from "../shared/context.ts";
import { clampLimit, decodeCursor, olderThan, type Page, toPage } from "../shared/pagination.ts";
import type { Sealer } from "../shared/sealing.ts";
import type { OidcFlow } from "./oidc-flow.ts";
import { createSamlFlow } from "./saml-flow.ts";
import { createSsoProvisioning, type IdentityProviderRow, type SsoOutcome } from "./sso-provisioning.ts";

const { identityProviders, userIdentities } = schema;
/** What a provider slug can be (contracts' `slugSchema`); anything else is not looked up. */
const SLUG = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** A started sign-in: where to send the browser and, for OIDC, the secret its `reef_sso` cookie must hold. */
export interface SsoStart {
  redirectUrl: string;
  binding?: string | undefined;
}

/** A linked SSO account as its owner sees it (`identitySchema`). */
export interface IdentityView {
  id: string;
  provider: { slug: string; name: string; kind: "oidc" | "saml" };
  email: string;
  createdAt: string;
  lastLoginAt: string | null;
}

/**
 * Single sign-on for people: the providers on the sign-in page, starting a
 * sign-in (OIDC here, SAML through its flow), the OIDC callback turned into a
 * session (or the "prove your password to link" step), the link itself, and
 * the accounts linked to oneself.
 */
export function createSsoService(deps: {
  db: Db;
  audit: AuditService;
  signIn: SignIn;
  oidc: OidcFlow;
  /** The platform sealer (SAML: opens the SP private key). */
  sealer: Sealer;
  publicUrl: () => Promise<string>;
  /** Holds back password guesses at the link step like sign-in does. */
  rateLimits?: RateLimits;
}) {
  const { db } = deps;
  const provisioning = createSsoProvisioning({
    db,
    audit: deps.audit,
    signIn: deps.signIn,
    ...(deps.rateLimits ? { rateLimits: deps.rateLimits } : {}),
  });
  const saml = createSamlFlow({
    db,
    sealer: deps.sealer,
    publicUrl: deps.publicUrl,
    provisioning,
    audit: deps.audit,
  });

  const bySlug = (slug: string) =>
    withScope(db, { platform: true }, async (tx) => {
      const [row] = await tx.select().from(identityProviders).where(eq(identityProviders.slug, slug));
      return row;
    });
  const byId = (id: string) =>
    withScope(db, { platform: true }, async (tx) => {
      const [row] = await tx.select().from(identityProviders).where(eq(identityProviders.id, id));
      return row;
    });

  async function enabled(slug: string): Promise<IdentityProviderRow> {
    const row = SLUG.test(slug) ? await bySlug(slug) : undefined;
    if (!row?.enabled) throw new NotFoundError("There is no such sign-in provider.");
    return row;
  }

  return {
    /** The SAML flow (ACS and SP metadata routes use it directly). */
    saml,

    /** An enabled provider by slug (404 otherwise). */
    provider: enabled,

    /** The enabled providers' labels, for the sign-in page. */
    providersForSignIn(): Promise<{ slug: string; name: string; kind: "oidc" | "saml" }[]> {
      return withScope(db, { platform: true }, (tx) =>
        tx
          .select({ slug: identityProviders.slug, name: identityProviders.name, kind: identityProviders.kind })
          .from(identityProviders)
          .where(eq(identityProviders.enabled, true))
          .orderBy(asc(identityProviders.name)),
      );
    },

    /** Starts a sign-in at the provider; `next` is kept only if it is a path on Reef. */
    async start(slug: string, next: string | undefined): Promise<SsoStart> {
      const provider = await enabled(slug);
      const landing = safeNext(next);
      if (provider.kind === "saml") return saml.start(provider, { next: landing });
      return deps.oidc.start(provider, landing);
    },

    /**
     * Completes an OIDC sign-in from the IdP's redirect (`params`: its query,
     * `binding`: the `reef_sso` cookie). @returns the outcome and where to land.
     */
    async oidcCallback(
      slug: string,
      params: URLSearchParams,
      binding: string | undefined,
      ctx: RequestContext,
    ): Promise<{ outcome: SsoOutcome; next: string; provider: IdentityProviderRow }> {
      const provider = await enabled(slug);
      if (provider.kind !== "oidc") throw new NotFoundError("There is no such sign-in provider.");
      const { profile, next } = await deps.oidc.callback(provider, params, binding);
      const outcome = await provisioning.signInWithProfile(ctx, provider, profile);
      return { outcome, next: safeNext(next), provider };
    },

    /** Links the provider identity a link token names to its account, once the password is proven. */
    link(ctx: RequestContext, token: string, password: string) {
      return provisioning.linkWithPassword(ctx, token, password, byId);
    },

    /** The SSO accounts linked to the signed-in person, newest first. */
    async listIdentities(
      actor: UserActor,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<IdentityView>> {
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { createdAt: "timestamp", id: "uuid" });
      const rows = await withScope(db, { userId: actor.userId }, (tx) =>
        tx
          .select()
          .from(userIdentities)
          .where(
            and(
              eq(userIdentities.userId, actor.userId),
              olderThan(userIdentities.createdAt, userIdentities.id, cursor),
            ),
          )
          .orderBy(desc(userIdentities.createdAt), desc(userIdentities.id))
          .limit(limit + 1),
      );
      // Provider labels are platform data, read apart from the person's own rows.
      const labels = new Map<string, IdentityView["provider"]>();
      for (const id of new Set(rows.map((r) => r.providerId))) {
        const p = await byId(id);
        if (p) labels.set(id, { slug: p.slug, name: p.name, kind: p.kind });
      }
      return toPage(
        rows,
        limit,
        (r) => ({
          id: r.id,
          provider: labels.get(r.providerId) ?? { slug: "", name: "", kind: "oidc" as const },
          email: r.email,
          createdAt: r.createdAt.toISOString(),
          lastLoginAt: r.lastLoginAt?.toISOString() ?? null,
        }),
        (r) => ({ createdAt: r.createdAt.toISOString(), id: r.id }),
      );
    },
  };
}

export type SsoService = ReturnType<typeof createSsoService>;
