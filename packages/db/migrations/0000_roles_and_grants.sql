-- The application's group role. Application logins are members of it; it never
-- owns tables and never bypasses row-level security.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reef_app') THEN
    CREATE ROLE reef_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END
$$;
--> statement-breakpoint
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO reef_app;
--> statement-breakpoint
-- Tables created by later migrations are readable and writable by the app;
-- append-only tables revoke UPDATE and DELETE in their own migration.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO reef_app;
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO reef_app;
--> statement-breakpoint
-- Readiness checks read which migrations are applied.
GRANT USAGE ON SCHEMA drizzle TO reef_app;
--> statement-breakpoint
GRANT SELECT ON drizzle.__drizzle_migrations TO reef_app;
--> statement-breakpoint
-- The tenant of the current transaction, set by withWorkspace() with
-- set_config('app.workspace_id', id, true). Outside such a transaction the
-- setting reads '' (or is missing), which maps to NULL and matches no row.
CREATE OR REPLACE FUNCTION reef_current_workspace_id() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('app.workspace_id', true), '')::uuid $$;
