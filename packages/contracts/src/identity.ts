import { z } from "zod";
import { emailSchema, nameSchema, roleSchema } from "./common.ts";

export const userSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string(),
  platformRole: z.enum(["super_admin", "user"]),
  createdAt: z.string(),
});

export const signupBodySchema = z.object({
  email: emailSchema,
  // Length and strength are checked by the password policy, with a clearer message.
  password: z.string().min(1).max(1024),
  name: nameSchema,
  /**
   * Signing up through an invite link: the account joins the inviting workspace (the invite is used)
   * instead of getting an empty personal workspace. The email must be the invited one.
   */
  inviteToken: z.string().min(10).max(100).optional(),
});

export const loginBodySchema = z.object({ email: z.string().min(1).max(254), password: z.string().min(1).max(1024) });

export const membershipSchema = z.object({ id: z.uuid(), name: z.string(), role: roleSchema, personal: z.boolean() });

export const signupResponseSchema = z.object({
  user: userSchema,
  workspace: z.object({ id: z.uuid(), name: z.string(), role: roleSchema }),
});

export const meResponseSchema = z.object({ user: userSchema, workspaces: z.array(membershipSchema) });

export const sessionSchema = z.object({
  id: z.uuid(),
  createdAt: z.string(),
  lastSeenAt: z.string(),
  expiresAt: z.string(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  current: z.boolean(),
  /**
   * How it signed in: `password`, `magic_link` (either with `+totp` after an authenticator code), `signup`,
   * `oidc:<slug>` / `saml:<slug>` (single sign-on); null for sessions from before methods were recorded.
   */
  method: z.string().nullable(),
});
