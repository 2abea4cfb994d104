-- Scopes read by RLS policies. Each is a transaction-local setting made by the
-- db package's helpers (withUser, withPlatformScope, withLookup); outside them
-- every function returns NULL / false and policies match nothing.
CREATE OR REPLACE FUNCTION reef_current_user_id() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION reef_platform_scope() RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT coalesce(current_setting('app.platform_scope', true), '') = 'on' $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION reef_lookup(kind text) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('app.lookup_' || kind, true), '') $$;
