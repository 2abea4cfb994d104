import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { selfSignedKeyPair } from "@reef/core";
import * as samlify from "samlify";

/** The IdP's signing keys: `primary` (the old one while rotating), `rotated` (the new one), `stranger` (never trusted). */
export type SamlKeyName = "primary" | "rotated" | "stranger";

/** A person the stand-in SAML IdP signs in. */
export interface SamlUser {
  /** NameID (an email unless the test says otherwise). */
  nameId: string;
  name?: string;
  groups?: string[];
  /** More attributes, by name. */
  attributes?: Record<string, string | string[]>;
}

/** How the next response departs from a correct one (tests of refusals). */
export interface SamlVariant {
  /** Which key signs the assertion; `none` leaves it unsigned. Default `primary`. */
  signWith?: SamlKeyName | "none";
  /** An Audience other than the SP's entity id. */
  audience?: string;
  /** Timestamps an hour in the past (expired long before the allowed clock skew). */
  expired?: boolean;
  /** Answers another request id than the one the SP sent. */
  inResponseTo?: string;
}

/** What the stand-in read from the SP's AuthnRequest (after checking its redirect signature). */
export interface ParsedAuthnRequest {
  id: string;
  issuer: string;
  relayState: string | undefined;
}

/** The auto-post form an IdP sends the browser back with. */
export interface SamlPost {
  action: string;
  SAMLResponse: string;
  RelayState: string | undefined;
  request: ParsedAuthnRequest;
}

/** A running stand-in SAML IdP: its entity id, endpoints and certificates, and a browser-like sign-in (with variants for refusal tests). */
export interface SamlStandIn {
  entityId: string;
  /** Where the SP sends people (HTTP-Redirect). */
  ssoUrl: string;
  /** Metadata with the `primary` certificate; `?certs=primary,rotated` for others. */
  metadataUrl: string;
  certs: Record<SamlKeyName, string>;
  /** IdP metadata XML listing these signing certificates. */
  metadataXml(certs?: SamlKeyName[]): string;
  /** The SP this IdP answers (its metadata XML, as Reef serves it). */
  trustSp(spMetadataXml: string): void;
  /**
   * Follows the SP's redirect to this IdP over HTTP (as a browser would), signs
   * `user` in and @returns the form the browser would post to the ACS.
   */
  signIn(redirectUrl: string, user: SamlUser, variant?: SamlVariant): Promise<SamlPost>;
  /** Every AuthnRequest received, oldest first. */
  requests: ParsedAuthnRequest[];
  close(): Promise<void>;
}

const REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const UNSPECIFIED_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

let validatorSet = false;
function acceptAllSchemas() {
  if (validatorSet) return;
  // samlify insists on an XML schema validator; the tests check Reef's validation, not samlify's.
  samlify.setSchemaValidator({ validate: async () => "skipped (test stand-in)" });
  validatorSet = true;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function keyPair(cn: string) {
  const pair = await selfSignedKeyPair(cn, 1);
  return { cert: pair.cert, key: pair.privateKey };
}

/** The raw (still encoded) query parameters in the order a redirect signature covers them. */
function octetString(url: URL): string {
  const raw = new Map(
    url.search
      .slice(1)
      .split("&")
      .map((pair) => [pair.slice(0, pair.indexOf("=")), pair] as const),
  );
  return ["SAMLRequest", "RelayState", "SigAlg"]
    .map((k) => raw.get(k))
    .filter(Boolean)
    .join("&");
}

function formField(html: string, name: string): string | undefined {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  return m?.[1]?.replace(/&quot;/g, '"').replace(/&amp;/g, "&");
}

/**
 * A local SAML 2.0 identity provider (samlify) on 127.0.0.1: it serves its
 * metadata, checks the SP's signed AuthnRequest (HTTP-Redirect) and answers with
 * a signed assertion (HTTP-POST form) for the user the test names, or one of
 * the broken variants Reef must refuse. Keys are made at start (selfsigned).
 */
export async function startSamlStandIn(): Promise<SamlStandIn> {
  acceptAllSchemas();
  const [primary, rotated, stranger] = await Promise.all([
    keyPair("Stand-in IdP primary"),
    keyPair("Stand-in IdP rotated"),
    keyPair("Stand-in IdP stranger"),
  ]);
  const keys: Record<SamlKeyName, { cert: string; key: string }> = { primary, rotated, stranger };
  let sp: ReturnType<typeof samlify.ServiceProvider> | undefined;
  const pending: { user: SamlUser; variant: SamlVariant }[] = [];
  const requests: ParsedAuthnRequest[] = [];

  const server: Server = createServer((req, res) => {
    handle(req.url ?? "/").then(
      ({ status, type, body }) => {
        res.writeHead(status, { "content-type": type });
        res.end(body);
      },
      (err: unknown) => {
        res.writeHead(400, { "content-type": "text/plain" });
        res.end(`stand-in IdP refused: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const entityId = `${base}/metadata`;
  const ssoUrl = `${base}/sso`;

  const idpFor = (names: SamlKeyName[], wantSigned = true) =>
    samlify.IdentityProvider({
      entityID: entityId,
      signingCert: names.map((n) => keys[n].cert),
      privateKey: keys.primary.key,
      wantAuthnRequestsSigned: wantSigned,
      nameIDFormat: [EMAIL_FORMAT],
      singleSignOnService: [{ Binding: REDIRECT, Location: ssoUrl }],
    });

  function attributeStatement(user: SamlUser): string {
    const attrs: Record<string, string[]> = {};
    if (user.name) attrs.displayName = [user.name];
    if (user.groups) attrs.groups = user.groups;
    for (const [k, v] of Object.entries(user.attributes ?? {})) attrs[k] = Array.isArray(v) ? v : [v];
    const body = Object.entries(attrs)
      .map(
        ([name, vals]) =>
          `<saml:Attribute Name="${escapeXml(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${vals
            .map((v) => `<saml:AttributeValue xsi:type="xs:string">${escapeXml(v)}</saml:AttributeValue>`)
            .join("")}</saml:Attribute>`,
      )
      .join("");
    return body ? `<saml:AttributeStatement>${body}</saml:AttributeStatement>` : "";
  }

  function loginResponse(request: ParsedAuthnRequest, user: SamlUser, variant: SamlVariant): string {
    if (!sp) throw new Error("call trustSp() with Reef's SP metadata first");
    const acs = sp.entityMeta.getAssertionConsumerService("post");
    const acsUrl = Array.isArray(acs) ? String(acs[0]) : String(acs);
    const shift = variant.expired ? -3_600_000 : 0;
    const now = new Date(Date.now() + shift);
    const later = new Date(now.getTime() + 5 * 60_000).toISOString();
    const id = () => `_${randomBytes(16).toString("hex")}`;
    // samlify escapes every tag value, so the two XML fragments go in afterwards.
    const template = samlify.SamlLib.defaultLoginResponseTemplate.context;
    const filled = samlify.SamlLib.replaceTagsByValue(template, {
      ID: id(),
      AssertionID: id(),
      Destination: acsUrl,
      Audience: variant.audience ?? sp.entityMeta.getEntityID(),
      SubjectRecipient: acsUrl,
      Issuer: entityId,
      IssueInstant: now.toISOString(),
      StatusCode: "urn:oasis:names:tc:SAML:2.0:status:Success",
      ConditionsNotBefore: now.toISOString(),
      ConditionsNotOnOrAfter: later,
      SubjectConfirmationDataNotOnOrAfter: later,
      NameIDFormat: user.nameId.includes("@") ? EMAIL_FORMAT : UNSPECIFIED_FORMAT,
      NameID: user.nameId,
      InResponseTo: variant.inResponseTo ?? request.id,
    });
    const xml = filled
      .replace(
        "{AuthnStatement}",
        `<saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="${id()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
      )
      .replace("{AttributeStatement}", attributeStatement(user));
    const signWith = variant.signWith ?? "primary";
    const signed =
      signWith === "none"
        ? xml
        : samlify.SamlLib.constructSAMLSignature({
            rawSamlMessage: xml,
            referenceTagXPath: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']",
            privateKey: keys[signWith].key,
            // samlify wants the bare base64 body here (it adds the PEM armour itself).
            signingCert: keys[signWith].cert.replace(/-----[A-Z ]+-----|\s+/g, ""),
            signatureAlgorithm: RSA_SHA256,
            isBase64Output: false,
            signatureConfig: {
              prefix: "ds",
              location: {
                reference: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']",
                action: "after",
              },
            },
          });
    return Buffer.from(signed).toString("base64");
  }

  async function handle(path: string): Promise<{ status: number; type: string; body: string }> {
    const url = new URL(path, base);
    if (url.pathname === "/metadata") {
      const names = (url.searchParams.get("certs") ?? "primary").split(",") as SamlKeyName[];
      return { status: 200, type: "application/samlmetadata+xml", body: idpFor(names).getMetadata() };
    }
    if (url.pathname === "/sso") {
      if (!sp) throw new Error("no SP is trusted yet");
      const query = Object.fromEntries(url.searchParams);
      // Throws unless the AuthnRequest is signed by the key in the SP's metadata.
      const parsed = await idpFor(["primary"]).parseLoginRequest(sp, "redirect", {
        query,
        octetString: octetString(url),
      });
      const extract = parsed.extract as { request?: { id?: string }; issuer?: string };
      const request: ParsedAuthnRequest = {
        id: String(extract.request?.id ?? ""),
        issuer: String(extract.issuer ?? ""),
        relayState: url.searchParams.get("RelayState") ?? undefined,
      };
      requests.push(request);
      const next = pending.shift();
      if (!next) throw new Error("no user is waiting to sign in");
      const acs = sp.entityMeta.getAssertionConsumerService("post");
      const action = Array.isArray(acs) ? String(acs[0]) : String(acs);
      const body = `<!doctype html><form method="post" action="${escapeXml(action)}"><input type="hidden" name="SAMLResponse" value="${loginResponse(request, next.user, next.variant)}"/><input type="hidden" name="RelayState" value="${escapeXml(request.relayState ?? "")}"/><input type="hidden" name="RequestId" value="${escapeXml(request.id)}"/></form>`;
      return { status: 200, type: "text/html", body };
    }
    return { status: 404, type: "text/plain", body: "not found" };
  }

  return {
    entityId,
    ssoUrl,
    metadataUrl: entityId,
    certs: { primary: primary.cert, rotated: rotated.cert, stranger: stranger.cert },
    requests,
    metadataXml: (certs = ["primary"]) => idpFor(certs).getMetadata(),
    trustSp(spMetadataXml) {
      sp = samlify.ServiceProvider({ metadata: spMetadataXml });
    },
    async signIn(redirectUrl, user, variant = {}) {
      pending.push({ user, variant });
      const res = await fetch(redirectUrl, { redirect: "manual" });
      const html = await res.text();
      if (res.status !== 200) {
        pending.pop();
        throw new Error(`the stand-in IdP answered ${res.status}: ${html}`);
      }
      const request = requests.at(-1) as ParsedAuthnRequest;
      const relay = formField(html, "RelayState");
      return {
        action: new URL(String(/action="([^"]*)"/.exec(html)?.[1] ?? "")).toString(),
        SAMLResponse: formField(html, "SAMLResponse") ?? "",
        RelayState: relay ? relay : undefined,
        request,
      };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
