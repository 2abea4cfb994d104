import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { type Db, schema, withWorkspace } from "@reef/db";
import { eq } from "drizzle-orm";
import { canonicalAddress, classifyAddress } from "../shared/address-class.ts";
import { hostAllowed } from "../shared/guarded-http.ts";

/**
 * Why the egress proxy refused a connection: a stable code, sent to the
 * gateway in the `x-reef-egress-refused` header and counted per day.
 */
export type EgressRefusalReason =
  /** The host resolves to a loopback, private, link-local, unique-local or otherwise non-public address. */
  | "private_address"
  /** The workspace's deny list names the host (or an address it resolves to). */
  | "denied_host"
  /** The workspace has an allow list and the host is not on it. */
  | "not_allowed_host"
  /** The host name does not resolve (or not in time). */
  | "dns_failed"
  /** The workspace already has as many open tunnels as Reef allows one workspace. */
  | "too_many_connections"
  /** The workspace no longer exists (its gateway outlived it): nothing to count against. */
  | "unknown_workspace";

/** The words the proxy answers with: short, and the same whatever listens at the target. */
export const REFUSAL_TEXT: Record<EgressRefusalReason, string> = {
  private_address: "Reef does not connect agents to private or local addresses.",
  denied_host: "This host is on the workspace's deny list.",
  not_allowed_host: "This host is not on the workspace's allow list.",
  dns_failed: "The host name did not resolve.",
  too_many_connections: "Too many open connections for this workspace.",
  unknown_workspace: "This workspace no longer exists.",
};

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** DNS for the proxy: every address a name resolves to (replaced in tests to stage rebinding). */
export type EgressResolver = (host: string) => Promise<ResolvedAddress[]>;

export type EgressDecision =
  | { allowed: true; addresses: ResolvedAddress[] }
  | { allowed: false; reason: EgressRefusalReason };

/** A workspace's own lists, as operators set them. */
export interface WorkspaceEgressLists {
  allowHosts: string[];
  denyHosts: string[];
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** A host name (ASCII, punycode for IDNs) without a trailing dot, or undefined. */
function hostName(text: string): string | undefined {
  const name = text.replace(/\.$/, "");
  if (!name || name.length > 253) return undefined;
  return name.split(".").every((label) => LABEL.test(label)) ? name : undefined;
}

/**
 * Reads a host as a CONNECT target or an absolute URI names it: a host name
 * (lower-cased, trailing dot dropped) or an IP address in one canonical
 * spelling (brackets dropped). Undefined when it is neither.
 */
export function normalizeHost(text: string): string | undefined {
  const bare = text
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  // A zone id (fe80::1%eth0) is not something a gateway may name.
  if (bare.includes("%")) return undefined;
  if (isIP(bare)) return canonicalAddress(bare);
  if (bare.includes(":")) return undefined;
  return hostName(bare);
}

/**
 * Reads one entry of a workspace's allow or deny list: `example.com` (that host
 * only), `*.example.com` (its subdomains, not `example.com` itself) or an IP
 * address. Returns the canonical spelling, or undefined when it is none of these.
 */
export function normalizeHostPattern(entry: string): string | undefined {
  const text = entry.trim().toLowerCase();
  if (text.startsWith("*.")) {
    const suffix = hostName(text.slice(2));
    return suffix && !isIP(suffix) ? `*.${suffix}` : undefined;
  }
  return normalizeHost(text);
}

/** Whether a list entry (already normalized) names `host` (already normalized). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && !isIP(host);
  return pattern === host;
}

/**
 * Parses a CONNECT request's authority (`host:port`, `[v6]:port`). The port is
 * required and 1–65535; undefined for anything else.
 */
export function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(authority.trim());
  if (!m?.[1] || !m[2]) return undefined;
  const port = Number(m[2]);
  const host = normalizeHost(m[1]);
  if (!host || port < 1 || port > 65535) return undefined;
  // An IPv6 address must come in brackets here, or `::1:443` would be ambiguous.
  if (isIP(host) === 6 && !m[1].startsWith("[")) return undefined;
  return { host, port };
}

const defaultResolver: EgressResolver = (host) => lookup(host, { all: true, verbatim: true });

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

export interface EgressPolicyDeps {
  db: Db;
  /**
   * Non-public hosts the operator lets gateways reach (`REEF_EGRESS_ALLOWED_HOSTS`):
   * `host`, `host:port`, `[v6]:port`, matched against the name asked for or an
   * address it resolves to, as for provider hosts. None by default.
   */
  operatorAllowedHosts: () => Promise<readonly string[]>;
  /** Replaces DNS (tests). */
  resolve?: EgressResolver | undefined;
  /** How long a name may take to resolve. */
  dnsTimeoutMs?: number | undefined;
  /** How long a workspace's lists are cached: a change reaches every replica within this. */
  cacheMs?: number | undefined;
}

/**
 * The egress policy of gateways: what a workspace's agents may connect to
 * through Reef. Public addresses on any port, unless the workspace's deny list
 * names the host (always wins) or its allow list is non-empty and does not;
 * non-public addresses only where the operator allowed the host. Names are
 * resolved once here and every address is checked; callers connect to the
 * addresses returned, so a second DNS answer cannot swap in another.
 */
export function createEgressPolicy(deps: EgressPolicyDeps) {
  const resolve = deps.resolve ?? defaultResolver;
  const dnsTimeoutMs = deps.dnsTimeoutMs ?? 5000;
  const cacheMs = deps.cacheMs ?? 5000;
  const cache = new Map<string, { at: number; value: Promise<WorkspaceEgressLists | undefined> }>();

  function readLists(workspaceId: string): Promise<WorkspaceEgressLists | undefined> {
    return withWorkspace(deps.db, workspaceId, async (tx) => {
      const [row] = await tx
        .select({ allow: schema.workspaces.egressAllowHosts, deny: schema.workspaces.egressDenyHosts })
        .from(schema.workspaces)
        .where(eq(schema.workspaces.id, workspaceId));
      if (!row) return undefined;
      const clean = (list: string[] | null) =>
        (list ?? []).map(normalizeHostPattern).filter((p): p is string => p !== undefined);
      return { allowHosts: clean(row.allow), denyHosts: clean(row.deny) };
    });
  }

  function lists(workspaceId: string): Promise<WorkspaceEgressLists | undefined> {
    const hit = cache.get(workspaceId);
    if (hit && Date.now() - hit.at <= cacheMs) return hit.value;
    // Bounded: a burst across many workspaces starts the cache over rather than growing it.
    if (cache.size >= 10_000) cache.clear();
    const value = readLists(workspaceId);
    cache.set(workspaceId, { at: Date.now(), value });
    value.catch(() => {
      if (cache.get(workspaceId)?.value === value) cache.delete(workspaceId);
    });
    return value;
  }

  return {
    /**
     * Decides a connection of `workspaceId`'s gateway to `host` (normalized, see
     * {@link normalizeHost}) on `port`. Allowed answers carry the checked
     * addresses to connect to.
     *
     * @throws when the workspace's lists cannot be read (callers fail closed).
     */
    async decide(workspaceId: string, host: string, port: number): Promise<EgressDecision> {
      const own = await lists(workspaceId);
      if (!own) return { allowed: false, reason: "unknown_workspace" };
      if (own.denyHosts.some((p) => hostMatches(p, host))) return { allowed: false, reason: "denied_host" };
      if (own.allowHosts.length > 0 && !own.allowHosts.some((p) => hostMatches(p, host))) {
        return { allowed: false, reason: "not_allowed_host" };
      }
      let addresses: ResolvedAddress[];
      const literal = isIP(host);
      if (literal) {
        addresses = [{ address: host, family: literal }];
      } else {
        try {
          addresses = await withTimeout(resolve(host), dnsTimeoutMs);
        } catch {
          return { allowed: false, reason: "dns_failed" };
        }
        addresses = addresses.filter((a) => isIP(a.address) !== 0);
        if (addresses.length === 0) return { allowed: false, reason: "dns_failed" };
      }
      if (addresses.some((a) => own.denyHosts.includes(canonicalAddress(a.address)))) {
        return { allowed: false, reason: "denied_host" };
      }
      const operator = await deps.operatorAllowedHosts();
      if (!hostAllowed(operator, host, port)) {
        // Every address must pass: one private answer among public ones is how rebinding hides.
        for (const { address } of addresses) {
          if (classifyAddress(address) !== "public" && !hostAllowed(operator, address, port)) {
            return { allowed: false, reason: "private_address" };
          }
        }
      }
      return { allowed: true, addresses };
    },

    /** Forgets a workspace's cached lists (after an operator changed them here). */
    invalidate(workspaceId: string): void {
      cache.delete(workspaceId);
    },
  };
}

export type EgressPolicy = ReturnType<typeof createEgressPolicy>;
