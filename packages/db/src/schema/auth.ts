import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  pgPolicy,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { appRole, currentUserId, lookup, platformScope } from "./roles.ts";
import { users } from "./users.ts";
import { WORKSPACE_ROLES, workspaces } from "./workspaces.ts";

/** OIDC settings an operator enters (the client secret is sealed apart, in `secretSealed`). */
export interface OidcProviderConfig {
  issuer: string;
  clientId: string;
  scopes: string[];
}

/** SAML settings: the IdP's SSO URL and signing certificates (several while rotating), from metadata or by hand. */
export interface SamlProviderConfig {
  entryPoint: string;
  idpEntityId: string | null;
  idpCerts: string[];
  metadataUrl: string | null;
  /** The SP's own certificate (public), shown in Reef's SP metadata; its private key is `secretSealed`. */
  spCert: string;
  /** The attribute holding the email when NameID is not one. */
  emailAttribute: string | null;
  nameAttribute: string | null;
}

/**
 * Single sign-on providers, configured by operators in the admin page (platform
 * metadata: only platform scope reads or writes them; the sign-in page gets the
 * enabled ones' labels through the identity service).
 */
export const identityProviders = pgTable(
  "identity_providers",
  {
    id: uuid().primaryKey().defaultRandom(),
    kind: text({ enum: ["oidc", "saml"] }).notNull(),
    /** In callback URLs: `/api/v1/auth/sso/<slug>/…`. */
    slug: text().notNull(),
    /** The button label: "Sign in with <name>". */
    name: text().notNull(),
    enabled: boolean().notNull().default(true),
    config: jsonb().$type<OidcProviderConfig | SamlProviderConfig>().notNull(),
    /** OIDC: the client secret; SAML: the SP private key. Sealed under the root key, never returned. */
    secretSealed: text(),
    /** Email domains that may sign in (lower case); empty: any. */
    allowedDomains: text().array().notNull().default(sql`'{}'::text[]`),
    /** Where just-in-time accounts join; null: each gets their own personal workspace. */
    defaultWorkspaceId: uuid().references(() => workspaces.id, { onDelete: "set null" }),
    defaultRole: text({ enum: WORKSPACE_ROLES }).notNull().default("member"),
    /** The claim (OIDC) or attribute (SAML) listing the person's groups; null: no mapping. */
    groupClaim: text(),
    /** Group name to workspace role; the highest mapped role wins, else `defaultRole`. */
    groupRoles: jsonb().$type<Record<string, (typeof WORKSPACE_ROLES)[number]>>().notNull().default({}),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedBy: uuid().references(() => users.id, { onDelete: "set null" }),
  },
  (t) => [
    uniqueIndex("identity_providers_slug_key").on(t.slug),
    pgPolicy("identity_providers_platform", {
      for: "all",
      to: appRole,
      using: platformScope,
      withCheck: platformScope,
    }),
  ],
).enableRLS();

/** A person's account at a provider: (provider, subject) names exactly one Reef user. */
export const userIdentities = pgTable(
  "user_identities",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    providerId: uuid()
      .notNull()
      .references(() => identityProviders.id, { onDelete: "cascade" }),
    /** OIDC `sub` or SAML NameID. */
    subject: text().notNull(),
    email: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastLoginAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex("user_identities_subject_key").on(t.providerId, t.subject),
    index("user_identities_user_idx").on(t.userId),
    pgPolicy("user_identities_own", {
      for: "all",
      to: appRole,
      using: sql`${t.userId} = ${currentUserId} or ${platformScope}`,
      withCheck: sql`${t.userId} = ${currentUserId} or ${platformScope}`,
    }),
  ],
).enableRLS();

export const AUTH_TOKEN_KINDS = [
  "magic_link",
  "password_reset",
  "email_change",
  /** A password (or magic link) sign-in waiting for its second factor or its TOTP enrolment. */
  "two_factor",
  /** An OIDC or SAML sign-in in flight: state, nonce, PKCE verifier or AuthnRequest id. */
  "sso_state",
  /** Linking an SSO identity to an existing password account, waiting for the password. */
  "sso_link",
] as const;
export type AuthTokenKind = (typeof AUTH_TOKEN_KINDS)[number];

/**
 * Single-use, short-lived tokens of the sign-in flows. The link or cookie holds
 * the token; this table only its SHA-256 (`lookup('auth_token')` reads exactly
 * that row). `bindingHash` ties a token to the browser that asked (a cookie).
 */
export const authTokens = pgTable(
  "auth_tokens",
  {
    id: uuid().primaryKey().defaultRandom(),
    kind: text({ enum: AUTH_TOKEN_KINDS }).notNull(),
    tokenHash: text().notNull(),
    userId: uuid().references(() => users.id, { onDelete: "cascade" }),
    providerId: uuid().references(() => identityProviders.id, { onDelete: "cascade" }),
    email: text(),
    bindingHash: text(),
    data: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    attempts: integer().notNull().default(0),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    usedAt: timestamp({ withTimezone: true }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("auth_tokens_token_key").on(t.tokenHash),
    index("auth_tokens_user_idx").on(t.userId, t.kind),
    index("auth_tokens_expires_idx").on(t.expiresAt),
    pgPolicy("auth_tokens_access", {
      for: "all",
      to: appRole,
      using: sql`${t.userId} = ${currentUserId} or ${platformScope} or ${t.tokenHash} = ${lookup("auth_token")}`,
      withCheck: sql`${t.userId} = ${currentUserId} or ${platformScope} or ${t.tokenHash} = ${lookup("auth_token")}`,
    }),
  ],
).enableRLS();

/** A person's TOTP authenticator. The seed is sealed under the root key; `confirmedAt` null: enrolment not finished. */
export const userTotp = pgTable(
  "user_totp",
  {
    userId: uuid()
      .primaryKey()
      .references(() => users.id, { onDelete: "cascade" }),
    secretSealed: text().notNull(),
    confirmedAt: timestamp({ withTimezone: true }),
    /** The last accepted time step: a code is accepted once. */
    lastStep: bigint({ mode: "number" }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    pgPolicy("user_totp_own", {
      for: "all",
      to: appRole,
      using: sql`${t.userId} = ${currentUserId} or ${platformScope}`,
      withCheck: sql`${t.userId} = ${currentUserId} or ${platformScope}`,
    }),
  ],
).enableRLS();

/** One-time recovery codes (SHA-256 of each), replaced as a set. */
export const recoveryCodes = pgTable(
  "recovery_codes",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    codeHash: text().notNull(),
    usedAt: timestamp({ withTimezone: true }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("recovery_codes_user_idx").on(t.userId),
    pgPolicy("recovery_codes_own", {
      for: "all",
      to: appRole,
      using: sql`${t.userId} = ${currentUserId} or ${platformScope}`,
      withCheck: sql`${t.userId} = ${currentUserId} or ${platformScope}`,
    }),
  ],
).enableRLS();
