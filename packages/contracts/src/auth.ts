import { z } from "zod";
import { emailSchema, nameSchema, roleSchema } from "./common.ts";
import { userSchema } from "./identity.ts";

/** What the sign-in page needs before anyone signs in; always 200, so a first visit logs no error. */
export const authStateSchema = z.object({
  signedIn: z.boolean(),
  /** No account exists yet: the visitor creates the first one (the operator). */
  firstRun: z.boolean(),
  /** Email and password sign-in is on for ordinary accounts (off when the operator requires SSO). */
  passwordSignIn: z.boolean(),
  /** Sign-up with a password is open (invite links still work when it is not). */
  signupOpen: z.boolean(),
  /** Mail is configured: magic links and password reset by email are available. */
  emailLinks: z.boolean(),
  providers: z.array(z.object({ slug: z.string(), name: z.string(), kind: z.enum(["oidc", "saml"]) })),
});
export type AuthState = z.infer<typeof authStateSchema>;

/** A sign-in that needs a second factor (or its enrolment) before a session is issued. */
export const twoFactorChallengeSchema = z.object({
  next: z.enum(["two_factor", "two_factor_enrol"]),
  /** Single use, 10 minutes; send it back with the code. */
  challenge: z.string(),
});

/** A password or magic-link sign-in: the user (session cookie set), or a second-factor step. */
export const signInResultSchema = z.union([z.object({ user: userSchema }), twoFactorChallengeSchema]);

const codeSchema = z
  .string()
  .trim()
  .regex(/^\d{6}$/, "a 6-digit code from your authenticator app");
const recoveryCodeSchema = z.string().trim().min(8).max(40);

export const twoFactorVerifyBodySchema = z
  .object({
    challenge: z.string().min(10).max(200),
    code: codeSchema.optional(),
    recoveryCode: recoveryCodeSchema.optional(),
  })
  .refine((b) => (b.code === undefined) !== (b.recoveryCode === undefined), {
    message: "give either code or recoveryCode",
  });

/** A new authenticator: the secret (base32) and the `otpauth://` URI for a QR code. Shown only while enrolling. */
export const totpSetupSchema = z.object({ secret: z.string(), otpauthUri: z.string() });
export const recoveryCodesSchema = z.object({ recoveryCodes: z.array(z.string()) });
/** A finished second-factor sign-in (cookie set); with a recovery code, how many are left. */
export const twoFactorSignInResultSchema = z.object({
  user: userSchema,
  recoveryCodeUsed: z.boolean(),
  recoveryCodesLeft: z.number().int(),
});
/** Enrolment finished at sign-in (cookie set): the ten recovery codes, shown once. */
export const enrolSignInResultSchema = z.object({ user: userSchema, recoveryCodes: z.array(z.string()) });

export const twoFactorStatusSchema = z.object({
  enabled: z.boolean(),
  enabledAt: z.string().nullable(),
  recoveryCodesLeft: z.number().int(),
  /** The platform, or one of the person's workspaces, requires a second factor (so it cannot be turned off). */
  required: z.boolean(),
});

export const passwordConfirmBodySchema = z.object({ password: z.string().min(1).max(1024) });
export const totpConfirmBodySchema = z.object({ code: codeSchema });
export const enrolConfirmBodySchema = z.object({ challenge: z.string().min(10).max(200), code: codeSchema });
export const enrolStartBodySchema = z.object({ challenge: z.string().min(10).max(200) });

export const profilePatchSchema = z.object({ name: nameSchema });
export const passwordChangeBodySchema = z.object({
  currentPassword: z.string().min(1).max(1024),
  newPassword: z.string().min(1).max(1024),
});
export const emailChangeBodySchema = z.object({ newEmail: emailSchema, password: z.string().min(1).max(1024) });
export const emailOnlyBodySchema = z.object({ email: z.string().trim().min(1).max(254) });
export const magicLinkBodySchema = z.object({
  email: z.string().trim().min(1).max(254),
  /** A path inside Reef to land on after signing in. */
  next: z.string().startsWith("/").max(2000).optional(),
});
export const linkTokenBodySchema = z.object({ token: z.string().min(10).max(200) });
export const passwordResetCompleteBodySchema = z.object({
  token: z.string().min(10).max(200),
  password: z.string().min(1).max(1024),
});
/** "Sign out everywhere": every other session, or with `includeCurrent` this one too. */
export const revokeSessionsBodySchema = z.object({ includeCurrent: z.boolean().default(false) });

/** Linking a provider's identity to an existing password account: prove the password once. */
export const ssoLinkBodySchema = z.object({
  token: z.string().min(10).max(200),
  password: z.string().min(1).max(1024),
});

export const identitySchema = z.object({
  id: z.uuid(),
  provider: z.object({ slug: z.string(), name: z.string(), kind: z.enum(["oidc", "saml"]) }),
  email: z.string(),
  createdAt: z.string(),
  lastLoginAt: z.string().nullable(),
});

// --- operators: identity providers -----------------------------------------------------------

const slugSchema = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "lower-case letters, digits and dashes (used in the callback URL)");
const domainSchema = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$|^localhost$/, "a domain such as example.com");
const groupRolesSchema = z.record(z.string().min(1).max(200), roleSchema).refine((r) => Object.keys(r).length <= 100, {
  message: "at most 100 group mappings",
});
const pemCertSchema = z
  .string()
  .trim()
  .max(20_000)
  .regex(
    /^(?:-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----|[A-Za-z0-9+/=\s]+)$/,
    "a PEM or base64 X.509 certificate",
  );

/** Who may sign in through a provider and where they land. */
const provisioningSchema = z.object({
  name: z.string().trim().min(1).max(60),
  enabled: z.boolean().optional(),
  allowedDomains: z.array(domainSchema).max(50).optional(),
  /** null: each new person gets their own personal workspace. */
  defaultWorkspaceId: z.uuid().nullable().optional(),
  defaultRole: roleSchema.exclude(["owner"]).optional(),
  groupClaim: z.string().trim().min(1).max(200).nullable().optional(),
  groupRoles: groupRolesSchema.optional(),
});

export const oidcProviderBodySchema = provisioningSchema.extend({
  kind: z.literal("oidc"),
  slug: slugSchema,
  issuer: z.url({ protocol: /^https?$/ }).max(2000),
  clientId: z.string().trim().min(1).max(500),
  /** Write-only. Omit on update to keep it; public clients (PKCE only) may have none. */
  clientSecret: z.string().min(1).max(2000).nullable().optional(),
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/))
    .max(20)
    .optional(),
});

export const samlProviderBodySchema = provisioningSchema.extend({
  kind: z.literal("saml"),
  slug: slugSchema,
  /** Fetch the IdP's metadata from here (entry point and certificates)… */
  metadataUrl: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .nullable()
    .optional(),
  /** …or paste it… */
  metadataXml: z.string().max(500_000).optional(),
  /** …or give the parts by hand. */
  entryPoint: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .optional(),
  idpEntityId: z.string().max(1000).nullable().optional(),
  /** Every certificate the IdP may sign with (two while it rotates). */
  idpCerts: z.array(pemCertSchema).min(1).max(5).optional(),
  emailAttribute: z.string().max(200).nullable().optional(),
  nameAttribute: z.string().max(200).nullable().optional(),
});

export const identityProviderBodySchema = z.discriminatedUnion("kind", [
  oidcProviderBodySchema,
  samlProviderBodySchema,
]);
export const identityProviderPatchSchema = z.union([
  oidcProviderBodySchema
    .omit({ kind: true, slug: true })
    .partial()
    .extend({ kind: z.literal("oidc") }),
  samlProviderBodySchema
    .omit({ kind: true, slug: true })
    .partial()
    .extend({ kind: z.literal("saml") }),
]);

/** A provider as operators see it: never the client secret or the SP private key. */
export const identityProviderSchema = z.object({
  id: z.uuid(),
  kind: z.enum(["oidc", "saml"]),
  slug: z.string(),
  name: z.string(),
  enabled: z.boolean(),
  allowedDomains: z.array(z.string()),
  defaultWorkspaceId: z.uuid().nullable(),
  defaultRole: roleSchema,
  groupClaim: z.string().nullable(),
  groupRoles: z.record(z.string(), roleSchema),
  /** Where the IdP sends people back: the redirect URI (OIDC) or ACS URL (SAML). */
  callbackUrl: z.string(),
  oidc: z
    .object({ issuer: z.string(), clientId: z.string(), scopes: z.array(z.string()), hasClientSecret: z.boolean() })
    .nullable(),
  saml: z
    .object({
      entryPoint: z.string(),
      idpEntityId: z.string().nullable(),
      metadataUrl: z.string().nullable(),
      /** Subject and expiry of each IdP certificate, for rotation. */
      idpCerts: z.array(z.object({ subject: z.string(), notAfter: z.string(), fingerprint: z.string() })),
      spEntityId: z.string(),
      spMetadataUrl: z.string(),
      emailAttribute: z.string().nullable(),
      nameAttribute: z.string().nullable(),
    })
    .nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type IdentityProviderView = z.infer<typeof identityProviderSchema>;
