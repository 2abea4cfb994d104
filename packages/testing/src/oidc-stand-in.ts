import { generateKeyPairSync } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** A person the stand-in IdP knows: sign in at its form with `login` (any password). */
export interface OidcTestUser {
  email: string;
  /** Default true; false sends `email_verified: false`. */
  emailVerified?: boolean;
  name?: string;
  groups?: string[];
}

/** Who the stand-in IdP knows and which client and callback it accepts. */
export interface OidcStandInOptions {
  /** Reef's callback URL(s) for this provider (`<publicUrl>/api/v1/auth/sso/<slug>/callback`). */
  redirectUris: string[];
  /** People by login. */
  users: Record<string, OidcTestUser>;
  clientId?: string;
  clientSecret?: string;
}

/** A running stand-in OpenID Provider: what Reef's provider settings need, and hooks for tampering. */
export interface OidcStandIn {
  /** `http://127.0.0.1:<port>` (http: Reef needs `ssoAllowHttp`). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The next authorization request's nonce is replaced, so its id token carries a nonce Reef did not send. */
  tamperNextNonce(): void;
  /**
   * The next sign-in's redirect back to Reef is not sent: the browser gets a plain "held" page and the
   * promise the callback URL (with its code and state), for a test to tamper with or replay.
   */
  holdNextCallback(): Promise<string>;
  /** Authorization requests received (their query), in order: what a test checks PKCE and state against. */
  authorizations: URLSearchParams[];
  close(): Promise<void>;
}

// oidc-provider ships no types; the little used here is typed by hand.
interface KoaContext {
  path: string;
  method: string;
  status: number;
  body: unknown;
  type: string;
  response: { get(header: string): string };
  remove(header: string): void;
  query: Record<string, string | string[] | undefined>;
  oidc: {
    client?: { clientId: string };
    session?: { accountId?: string; grantIdFor(clientId: string): string | undefined };
    result?: { consent?: { grantId?: string } };
    provider: { Grant: GrantCtor };
  };
}
interface Grant {
  addOIDCScope(scope: string): void;
  save(): Promise<string>;
}
type GrantCtor = (new (opts: {
  clientId: string;
  accountId: string;
}) => Grant) & {
  find(id: string): Promise<Grant | undefined>;
};
interface ProviderInstance {
  use(mw: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  callback(): (req: http.IncomingMessage, res: http.ServerResponse) => void;
}
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => ProviderInstance;

const SCOPES = "openid email profile groups";

/**
 * A real OpenID Provider (`oidc-provider`) on 127.0.0.1 for single sign-on
 * tests: one confidential client (client_secret_basic, PKCE required), its
 * built-in login form (any password; the login names the person), consent
 * granted without a screen, and claims from `users` (email, email_verified,
 * name, groups). Signed with a fresh RSA key per stand-in.
 */
export async function startOidcStandIn(opts: OidcStandInOptions): Promise<OidcStandIn> {
  const specifier = "oidc-provider";
  const { default: Provider } = (await import(specifier)) as { default: ProviderCtor };
  const clientId = opts.clientId ?? "reef-test";
  const clientSecret = opts.clientSecret ?? "stand-in-client-secret-0123456789";
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "stand-in", use: "sig", alg: "RS256" };
  let tamper = false;
  let hold: ((url: string) => void) | undefined;
  const authorizations: URLSearchParams[] = [];

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ["oidc-stand-in-cookie-key"] },
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name"],
      groups: ["groups"],
    },
    scopes: ["openid", "email", "profile", "groups"],
    pkce: { required: () => true },
    // Explicit lifetimes (seconds), so oidc-provider does not print a notice for each default it uses.
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx: unknown, id: string) {
      const user = opts.users[id];
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: user.email,
            email_verified: user.emailVerified ?? true,
            ...(user.name ? { name: user.name } : {}),
            groups: user.groups ?? [],
          };
        },
      };
    },
    // Consent without a screen: the test is about Reef, not the IdP's consent page.
    async loadExistingGrant(ctx: KoaContext) {
      const client = ctx.oidc.client;
      const session = ctx.oidc.session;
      if (!client || !session?.accountId) return undefined;
      const grantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(SCOPES);
      await grant.save();
      return grant;
    },
  });
  provider.use(async (ctx, next) => {
    if (ctx.path === "/auth" && ctx.method === "GET") {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(ctx.query)) if (typeof v === "string") q.set(k, v);
      authorizations.push(q);
      if (tamper) {
        tamper = false;
        ctx.query = { ...ctx.query, nonce: "not-the-nonce-reef-sent" };
      }
    }
    await next();
    const location = ctx.status >= 300 && ctx.status < 400 ? ctx.response.get("location") : "";
    if (hold && location && opts.redirectUris.some((uri) => location.startsWith(uri))) {
      hold(location);
      hold = undefined;
      ctx.remove("location");
      ctx.status = 200;
      ctx.type = "text/plain";
      ctx.body = "held";
    }
  });
  server.on("request", provider.callback());

  return {
    issuer,
    clientId,
    clientSecret,
    authorizations,
    tamperNextNonce() {
      tamper = true;
    },
    holdNextCallback: () =>
      new Promise<string>((resolve) => {
        hold = resolve;
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
