ALTER TABLE "users" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "sessions" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "platform_state" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "workspace_members" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "invites" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "api_keys" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "role_permissions" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "audit_log" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "audit_chain_heads" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "rate_limits" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
-- The audit trail is append-only for the application.
REVOKE UPDATE, DELETE, TRUNCATE ON "audit_log" FROM reef_app;
--> statement-breakpoint
-- Permissions are data and change only by migration.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "role_permissions" FROM reef_app;
--> statement-breakpoint
INSERT INTO "platform_state" ("id") VALUES (1) ON CONFLICT DO NOTHING;
--> statement-breakpoint
INSERT INTO "role_permissions" ("role", "action") VALUES
  ('owner', 'workspace:read'), ('owner', 'workspace:update'), ('owner', 'workspace:delete'),
  ('owner', 'members:read'), ('owner', 'members:invite'), ('owner', 'members:update'), ('owner', 'members:remove'),
  ('owner', 'api_keys:read'), ('owner', 'api_keys:create'), ('owner', 'api_keys:revoke'),
  ('owner', 'audit:read'),
  ('admin', 'workspace:read'), ('admin', 'workspace:update'),
  ('admin', 'members:read'), ('admin', 'members:invite'), ('admin', 'members:update'), ('admin', 'members:remove'),
  ('admin', 'api_keys:read'), ('admin', 'api_keys:create'), ('admin', 'api_keys:revoke'),
  ('admin', 'audit:read'),
  ('member', 'workspace:read'), ('member', 'members:read'),
  ('viewer', 'workspace:read'), ('viewer', 'members:read');
