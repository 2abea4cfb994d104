import {
  AppError,
  BadRequestError,
  ConflictError,
  type IdentityProviderView,
  type identityProviderBodySchema,
  type identityProviderPatchSchema,
  NotFoundError,
} from "@reef/contracts";
import { type Db, type OidcProviderConfig, type SamlProviderConfig, schema, type Tx, withScope } from "@reef/db";
import { and, asc, eq, gt, isNotNull, or } from "drizzle-orm";
import type { z } from "zod";
import { requireOperator } from "../admin/admin-service.ts";
import { appendAudit } from "../audit/audit-service.ts";
import type { RequestContext } from "../shared/context.ts";
import { clampLimit, decodeCursor, type Page, toPage } from "../shared/pagination.ts";
import type { Sealer } from "../shared/sealing.ts";
import { buildSamlConfig, describeCerts, type SamlConfigInput, spEntityId } from "./saml-config.ts";
import { type IdentityProviderRow, ssoFailed } from "./sso-provisioning.ts";

const { identityProviders, workspaces } = schema;

type ProviderBody = z.infer<typeof identityProviderBodySchema>;
type ProviderPatch = z.infer<typeof identityProviderPatchSchema>;

/** Who may sign in through a provider and where they land (every field optional on update). */
interface ProvisioningInput {
  name?: string | undefined;
  enabled?: boolean | undefined;
  allowedDomains?: string[] | undefined;
  defaultWorkspaceId?: string | null | undefined;
  defaultRole?: "admin" | "member" | "viewer" | undefined;
  groupClaim?: string | null | undefined;
  groupRoles?: Record<string, "owner" | "admin" | "member" | "viewer"> | undefined;
}

/** What building a SAML provider's stored settings gives back (see `saml-config.ts`). */
export interface SamlConfigResult {
  config: SamlProviderConfig;
  /** Present when a new SP key pair was made: Reef seals it into the provider's secret. */
  spPrivateKeyPem?: string | undefined;
}

/** The SAML parts the admin API delegates (metadata, certificates), kept apart so this file stays OIDC-shaped. */
export interface SamlConfigBuilder {
  build(
    input: SamlConfigInput,
    existing: SamlProviderConfig | undefined,
    opts: { allowHttp: boolean; entityId: string },
  ): Promise<SamlConfigResult>;
  describeCerts(pems: string[]): { subject: string; notAfter: string; fingerprint: string }[];
}

export interface IdentityProviderDeps {
  db: Db;
  /** The platform sealer: client secrets and SP private keys, bound to their provider's id. */
  sealer: Sealer;
  publicUrl: () => Promise<string>;
  /** `REEF_SSO_ALLOW_HTTP`: http issuers and metadata URLs (test IdPs); https only otherwise. */
  ssoAllowHttp: boolean;
  /** Default: `buildSamlConfig` and `describeCerts` of `saml-config.ts`. */
  saml?: SamlConfigBuilder | undefined;
  /**
   * Reads the issuer's discovery document with these client settings; throws
   * (with the reason) when it cannot. See `createOidcFlow().check`.
   */
  checkOidc: (config: OidcProviderConfig, clientSecret: string | undefined) => Promise<void>;
}

/** The AAD a provider's sealed secret is bound to: moved to another row, it does not open. */
export function providerSecretAad(providerId: string): string {
  return `idp:${providerId}`;
}

/** The provider's secret in the clear (OIDC client secret or SAML SP private key), if it has one. */
export function openProviderSecret(sealer: Sealer, row: IdentityProviderRow): string | undefined {
  return row.secretSealed ? sealer.open(row.secretSealed, providerSecretAad(row.id)) : undefined;
}

/**
 * Reseals every identity provider's secret sealed under a previous root key,
 * inside `tx` (platform scope), for `reef rotate-keys`. @returns how many.
 */
export async function resealIdentityProviderSecretsIn(tx: Tx, sealer: Sealer): Promise<number> {
  const rows = await tx.select().from(identityProviders).where(isNotNull(identityProviders.secretSealed)).for("update");
  let count = 0;
  for (const row of rows) {
    const next = row.secretSealed ? sealer.reseal(row.secretSealed, providerSecretAad(row.id)) : undefined;
    if (!next) continue;
    await tx.update(identityProviders).set({ secretSealed: next }).where(eq(identityProviders.id, row.id));
    count += 1;
  }
  return count;
}

/** An OIDC provider's stored settings (the row's `kind` says which shape `config` has). */
export function oidcConfigOf(row: IdentityProviderRow): OidcProviderConfig {
  return row.config as OidcProviderConfig;
}

/** A SAML provider's stored settings (the row's `kind` says which shape `config` has). */
export function samlConfigOf(row: IdentityProviderRow): SamlProviderConfig {
  return row.config as SamlProviderConfig;
}

const DEFAULT_SCOPES = ["openid", "email", "profile"];

/** Where the IdP sends people back to Reef for this provider. */
export function ssoCallbackUrl(publicUrl: string, row: Pick<IdentityProviderRow, "kind" | "slug">): string {
  const base = `${publicUrl.replace(/\/+$/, "")}/api/v1/auth/sso/${row.slug}`;
  return row.kind === "oidc" ? `${base}/callback` : `${base}/acs`;
}

/**
 * The operators' identity providers (OIDC and SAML): list, read, create,
 * change, delete. Super-admins only; every change audited in its transaction
 * with the names of the fields changed, never a secret. An OIDC issuer is
 * checked by reading its discovery document before it is saved, so a typo is
 * refused with the reason instead of failing at someone's sign-in.
 */
export function createIdentityProviderService(deps: IdentityProviderDeps) {
  const { db, sealer } = deps;
  const samlBuilder = deps.saml ?? { build: buildSamlConfig, describeCerts };
  const platform = <T>(ctx: RequestContext, fn: (tx: Tx) => Promise<T>) =>
    withScope(db, { platform: true, ...(ctx.actor.kind === "user" ? { userId: ctx.actor.userId } : {}) }, fn);

  async function view(row: IdentityProviderRow, publicUrl?: string): Promise<IdentityProviderView> {
    const base = publicUrl ?? (await deps.publicUrl());
    const oidc = row.kind === "oidc" ? oidcConfigOf(row) : undefined;
    const saml = row.kind === "saml" ? samlConfigOf(row) : undefined;
    return {
      id: row.id,
      kind: row.kind,
      slug: row.slug,
      name: row.name,
      enabled: row.enabled,
      allowedDomains: row.allowedDomains,
      defaultWorkspaceId: row.defaultWorkspaceId,
      defaultRole: row.defaultRole,
      groupClaim: row.groupClaim,
      groupRoles: row.groupRoles,
      callbackUrl: ssoCallbackUrl(base, row),
      oidc: oidc
        ? {
            issuer: oidc.issuer,
            clientId: oidc.clientId,
            scopes: oidc.scopes,
            hasClientSecret: row.secretSealed !== null,
          }
        : null,
      saml: saml
        ? {
            entryPoint: saml.entryPoint,
            idpEntityId: saml.idpEntityId,
            metadataUrl: saml.metadataUrl,
            idpCerts: samlBuilder.describeCerts(saml.idpCerts),
            spEntityId: spEntityId(base, row.slug),
            spMetadataUrl: spEntityId(base, row.slug),
            emailAttribute: saml.emailAttribute,
            nameAttribute: saml.nameAttribute,
          }
        : null,
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    };
  }

  async function requireWorkspace(tx: Tx, workspaceId: string | null | undefined) {
    if (!workspaceId) return;
    const [w] = await tx.select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.id, workspaceId));
    if (!w) throw new NotFoundError("The default workspace does not exist.");
  }

  async function checkIssuer(config: OidcProviderConfig, secret: string | undefined) {
    if (config.issuer.startsWith("http:") && !deps.ssoAllowHttp) {
      throw ssoFailed(`The issuer ${config.issuer} is not https. Reef talks to identity providers over https only.`);
    }
    try {
      await deps.checkOidc(config, secret);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw ssoFailed(`Could not read the OpenID configuration of ${config.issuer}: ${(err as Error).message}`);
    }
  }

  /** The provisioning columns of a body or patch (only those given). */
  function provisioning(input: ProvisioningInput): Partial<typeof identityProviders.$inferInsert> {
    const set: Partial<typeof identityProviders.$inferInsert> = {};
    if (input.name !== undefined) set.name = input.name;
    if (input.enabled !== undefined) set.enabled = input.enabled;
    if (input.allowedDomains !== undefined) set.allowedDomains = [...new Set(input.allowedDomains)];
    if (input.defaultWorkspaceId !== undefined) set.defaultWorkspaceId = input.defaultWorkspaceId;
    if (input.defaultRole !== undefined) set.defaultRole = input.defaultRole;
    if (input.groupClaim !== undefined) set.groupClaim = input.groupClaim;
    if (input.groupRoles !== undefined) set.groupRoles = input.groupRoles;
    return set;
  }

  const changedFields = (input: Record<string, unknown>) =>
    Object.keys(input)
      .filter((k) => k !== "kind" && input[k] !== undefined)
      .sort();

  async function load(tx: Tx, id: string): Promise<IdentityProviderRow> {
    const [row] = await tx.select().from(identityProviders).where(eq(identityProviders.id, id));
    if (!row) throw new NotFoundError("No such identity provider.");
    return row;
  }

  return {
    async list(
      ctx: RequestContext,
      q: { cursor?: string | undefined; limit?: number | undefined },
    ): Promise<Page<IdentityProviderView>> {
      requireOperator(ctx);
      const limit = clampLimit(q.limit);
      const cursor = decodeCursor(q.cursor, { slug: "text", id: "uuid" });
      const rows = await platform(ctx, (tx) =>
        tx
          .select()
          .from(identityProviders)
          .where(
            cursor
              ? or(
                  gt(identityProviders.slug, cursor.slug),
                  and(eq(identityProviders.slug, cursor.slug), gt(identityProviders.id, cursor.id)),
                )
              : undefined,
          )
          .orderBy(asc(identityProviders.slug), asc(identityProviders.id))
          .limit(limit + 1),
      );
      const publicUrl = await deps.publicUrl();
      const page = toPage(
        rows,
        limit,
        (r) => r,
        (r) => ({ slug: r.slug, id: r.id }),
      );
      return { items: await Promise.all(page.items.map((r) => view(r, publicUrl))), nextCursor: page.nextCursor };
    },

    async get(ctx: RequestContext, id: string): Promise<IdentityProviderView> {
      requireOperator(ctx);
      return view(await platform(ctx, (tx) => load(tx, id)));
    },

    async create(ctx: RequestContext, input: ProviderBody): Promise<IdentityProviderView> {
      requireOperator(ctx);
      const id = crypto.randomUUID();
      const publicUrl = await deps.publicUrl();
      let config: OidcProviderConfig | SamlProviderConfig;
      let secret: string | undefined;
      if (input.kind === "oidc") {
        config = { issuer: input.issuer, clientId: input.clientId, scopes: input.scopes ?? DEFAULT_SCOPES };
        secret = input.clientSecret ?? undefined;
        await checkIssuer(config, secret);
      } else {
        const built = await samlBuilder.build(input, undefined, {
          allowHttp: deps.ssoAllowHttp,
          entityId: spEntityId(publicUrl, input.slug),
        });
        config = built.config;
        secret = built.spPrivateKeyPem;
      }
      const row = await platform(ctx, async (tx) => {
        await requireWorkspace(tx, input.defaultWorkspaceId);
        const [taken] = await tx
          .select({ id: identityProviders.id })
          .from(identityProviders)
          .where(eq(identityProviders.slug, input.slug));
        if (taken) throw new ConflictError(`Another identity provider already uses the slug "${input.slug}".`);
        const [created] = await tx
          .insert(identityProviders)
          .values({
            id,
            kind: input.kind,
            slug: input.slug,
            config,
            secretSealed: secret ? sealer.seal(secret, providerSecretAad(id)) : null,
            ...provisioning(input),
            name: input.name,
            updatedBy: ctx.actor.kind === "user" ? ctx.actor.userId : null,
          })
          .returning();
        if (!created) throw new ConflictError("The identity provider could not be saved.");
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "identity_provider.create",
          targetType: "identity_provider",
          targetId: id,
          details: { slug: input.slug, kind: input.kind, fields: changedFields(input) },
        });
        return created;
      });
      return view(row, publicUrl);
    },

    async patch(ctx: RequestContext, id: string, input: ProviderPatch): Promise<IdentityProviderView> {
      requireOperator(ctx);
      const publicUrl = await deps.publicUrl();
      const before = await platform(ctx, (tx) => load(tx, id));
      if (before.kind !== input.kind) {
        throw new BadRequestError(`This provider is ${before.kind.toUpperCase()}; its kind cannot change.`, {
          field: "kind",
        });
      }
      const set: Partial<typeof identityProviders.$inferInsert> = {
        ...provisioning(input),
        updatedAt: new Date(),
        updatedBy: ctx.actor.kind === "user" ? ctx.actor.userId : null,
      };
      if (input.kind === "oidc") {
        const old = oidcConfigOf(before);
        const next: OidcProviderConfig = {
          issuer: input.issuer ?? old.issuer,
          clientId: input.clientId ?? old.clientId,
          scopes: input.scopes ?? old.scopes,
        };
        set.config = next;
        if (input.clientSecret !== undefined) {
          set.secretSealed = input.clientSecret ? sealer.seal(input.clientSecret, providerSecretAad(id)) : null;
        }
        if (next.issuer !== old.issuer || next.clientId !== old.clientId) {
          const secret =
            input.clientSecret === undefined ? openProviderSecret(sealer, before) : (input.clientSecret ?? undefined);
          await checkIssuer(next, secret);
        }
      } else {
        const { kind: _kind, ...samlInput } = input;
        const built = await samlBuilder.build(samlInput, samlConfigOf(before), {
          allowHttp: deps.ssoAllowHttp,
          entityId: spEntityId(publicUrl, before.slug),
        });
        set.config = built.config;
        if (built.spPrivateKeyPem) set.secretSealed = sealer.seal(built.spPrivateKeyPem, providerSecretAad(id));
      }
      const row = await platform(ctx, async (tx) => {
        await requireWorkspace(tx, input.defaultWorkspaceId);
        const [after] = await tx.update(identityProviders).set(set).where(eq(identityProviders.id, id)).returning();
        if (!after) throw new NotFoundError("No such identity provider.");
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "identity_provider.update",
          targetType: "identity_provider",
          targetId: id,
          details: { slug: after.slug, kind: after.kind, fields: changedFields(input) },
        });
        return after;
      });
      return view(row, publicUrl);
    },

    async delete(ctx: RequestContext, id: string): Promise<void> {
      requireOperator(ctx);
      await platform(ctx, async (tx) => {
        const [gone] = await tx.delete(identityProviders).where(eq(identityProviders.id, id)).returning();
        if (!gone) throw new NotFoundError("No such identity provider.");
        await appendAudit(tx, ctx, {
          workspaceId: null,
          action: "identity_provider.delete",
          targetType: "identity_provider",
          targetId: id,
          details: { slug: gone.slug, kind: gone.kind },
        });
      });
    },
  };
}

export type IdentityProviderService = ReturnType<typeof createIdentityProviderService>;
