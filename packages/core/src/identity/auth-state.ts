import { type Db, schema, withScope } from "@reef/db";
import { asc, eq } from "drizzle-orm";
import type { Mailer } from "../mail/mailer.ts";
import type { RequestContext } from "../shared/context.ts";
import type { SignInPolicy } from "./sign-in.ts";

const { users, identityProviders } = schema;

/** What the sign-in page needs before anyone signs in (the `authStateSchema` contract). */
export interface AuthState {
  signedIn: boolean;
  firstRun: boolean;
  passwordSignIn: boolean;
  signupOpen: boolean;
  emailLinks: boolean;
  providers: { slug: string; name: string; kind: "oidc" | "saml" }[];
}

export type AuthStateService = ReturnType<typeof createAuthState>;

/**
 * The web app boots from this instead of `/me`, so a first visit (or a signed-out one) gets a 200 and the
 * browser logs no error. It tells only what the sign-in page shows anyway: whether anyone has an account
 * yet, which ways in are on, and the enabled providers' labels (never their settings).
 */
export function createAuthState(deps: { db: Db; policy: SignInPolicy; mailer: () => Promise<Mailer | undefined> }) {
  const { db, policy } = deps;
  return {
    async state(ctx: RequestContext): Promise<AuthState> {
      const [{ firstRun, providers }, requireSso, mailer] = await Promise.all([
        // Users and providers are platform data: only platform scope reads them before anyone signs in.
        withScope(db, { platform: true }, async (tx) => {
          const anyone = await tx.select({ id: users.id }).from(users).limit(1);
          const rows = await tx
            .select({ slug: identityProviders.slug, name: identityProviders.name, kind: identityProviders.kind })
            .from(identityProviders)
            .where(eq(identityProviders.enabled, true))
            .orderBy(asc(identityProviders.name));
          return { firstRun: anyone.length === 0, providers: rows };
        }),
        policy.requireSso(),
        deps.mailer(),
      ]);
      return {
        signedIn: ctx.actor.kind === "user",
        firstRun,
        passwordSignIn: !requireSso,
        // The very first account (the operator's) is always made with a password.
        signupOpen: firstRun || !requireSso,
        emailLinks: mailer !== undefined,
        providers,
      };
    },
  };
}
