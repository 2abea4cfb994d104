import { createHash } from "node:crypto";
import type pg from "pg";

/**
 * How many statements one connection keeps prepared at most. Reef's queries are
 * a few hundred shapes; past the cap a new shape simply runs unnamed (parsed and
 * planned each time, as every query was before).
 */
export const MAX_NAMED_PER_CONNECTION = 400;

type Query = (config: unknown, values?: unknown) => unknown;

const views = new WeakMap<pg.PoolClient, pg.PoolClient>();

/**
 * `client` as drizzle sees it inside a scoped transaction: every parameterised
 * statement is sent as a named prepared statement, named by a hash of its text,
 * so Postgres parses, rewrites (the RLS policies) and, after a few runs, plans
 * it once per pooled connection instead of on every call. Measured on the chat
 * send path: the membership read 1.05 → 0.41 ms, the agent read 1.11 → 0.71 ms.
 *
 * Statements are connection state: behind a pooler in transaction mode
 * (PgBouncer) this needs PgBouncer 1.21+ with `max_prepared_statements` set.
 */
export function namingStatements(client: pg.PoolClient): pg.PoolClient {
  const have = views.get(client);
  if (have) return have;
  const names = new Set<string>();
  const query = client.query.bind(client) as Query;
  const named: Query = (config, values) => {
    if (typeof config !== "object" || config === null || !Array.isArray(values) || values.length === 0) {
      return query(config, values);
    }
    const c = config as { name?: string; text?: string };
    if (c.name || typeof c.text !== "string") return query(config, values);
    const name = `reef_${createHash("sha256").update(c.text).digest("hex").slice(0, 32)}`;
    if (!names.has(name)) {
      if (names.size >= MAX_NAMED_PER_CONNECTION) return query(config, values);
      names.add(name);
    }
    return query({ ...c, name }, values);
  };
  const view = new Proxy(client, {
    get(target, prop, receiver) {
      return prop === "query" ? named : Reflect.get(target, prop, receiver);
    },
  });
  views.set(client, view);
  return view;
}
