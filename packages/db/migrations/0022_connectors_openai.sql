CREATE TABLE "agent_connectors" (
	"workspace_id" uuid NOT NULL,
	"agent_id" uuid NOT NULL,
	"connector_id" uuid NOT NULL,
	"tools" text[],
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "agent_connectors_agent_id_connector_id_pk" PRIMARY KEY("agent_id","connector_id")
);
--> statement-breakpoint
ALTER TABLE "agent_connectors" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "connector_credentials" (
	"credential_hash" text PRIMARY KEY NOT NULL,
	"workspace_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "connector_credentials" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "connectors" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"workspace_id" uuid NOT NULL,
	"name" text NOT NULL,
	"slug" text NOT NULL,
	"kind" text NOT NULL,
	"transport" text NOT NULL,
	"url" text,
	"instance_url" text,
	"catalog_entry_id" text,
	"header_names" text[] DEFAULT '{}'::text[] NOT NULL,
	"headers_sealed" text,
	"secret_hint" text,
	"api_key_sealed" text,
	"tool_allowlist" text[],
	"enabled" boolean DEFAULT true NOT NULL,
	"tools" jsonb,
	"last_tested_at" timestamp with time zone,
	"last_test_ok" boolean,
	"last_test_error" text,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "connectors" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "openai_fingerprint" text;--> statement-breakpoint
ALTER TABLE "platform_settings" ADD COLUMN "connectors_enabled" boolean;--> statement-breakpoint
ALTER TABLE "platform_settings" ADD COLUMN "connector_allowed_hosts" text[];--> statement-breakpoint
ALTER TABLE "agent_connectors" ADD CONSTRAINT "agent_connectors_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "agent_connectors" ADD CONSTRAINT "agent_connectors_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "agent_connectors" ADD CONSTRAINT "agent_connectors_connector_id_connectors_id_fk" FOREIGN KEY ("connector_id") REFERENCES "public"."connectors"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connector_credentials" ADD CONSTRAINT "connector_credentials_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connectors" ADD CONSTRAINT "connectors_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connectors" ADD CONSTRAINT "connectors_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "agent_connectors_connector_idx" ON "agent_connectors" USING btree ("connector_id");--> statement-breakpoint
CREATE INDEX "connector_credentials_workspace_idx" ON "connector_credentials" USING btree ("workspace_id");--> statement-breakpoint
CREATE INDEX "connectors_workspace_idx" ON "connectors" USING btree ("workspace_id","created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "connectors_slug_idx" ON "connectors" USING btree ("workspace_id","slug");--> statement-breakpoint
CREATE INDEX "chat_sessions_openai_idx" ON "chat_sessions" USING btree ("workspace_id","api_key_id","openai_fingerprint") WHERE "chat_sessions"."openai_fingerprint" is not null;--> statement-breakpoint
CREATE POLICY "agent_connectors_tenant_isolation" ON "agent_connectors" AS PERMISSIVE FOR ALL TO "reef_app" USING ("agent_connectors"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("agent_connectors"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "connector_credentials_tenant_isolation" ON "connector_credentials" AS PERMISSIVE FOR ALL TO "reef_app" USING ("connector_credentials"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("connector_credentials"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "connector_credentials_lookup" ON "connector_credentials" AS PERMISSIVE FOR SELECT TO "reef_app" USING ("connector_credentials"."credential_hash" = reef_lookup('connector_credential'));--> statement-breakpoint
CREATE POLICY "connectors_tenant_isolation" ON "connectors" AS PERMISSIVE FOR ALL TO "reef_app" USING ("connectors"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("connectors"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
ALTER TABLE "connectors" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "agent_connectors" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "connector_credentials" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
INSERT INTO "role_permissions" ("role", "action") VALUES
  ('owner', 'connectors:read'), ('owner', 'connectors:manage'),
  ('admin', 'connectors:read'), ('admin', 'connectors:manage'),
  ('member', 'connectors:read'),
  ('viewer', 'connectors:read')
ON CONFLICT DO NOTHING;
