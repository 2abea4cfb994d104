CREATE TABLE "approvals" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"workspace_id" uuid NOT NULL,
	"gateway_approval_id" text NOT NULL,
	"kind" text NOT NULL,
	"agent_id" uuid,
	"session_id" uuid,
	"message_id" bigint,
	"requested_by_user_id" uuid,
	"requested_by_api_key_id" uuid,
	"subject" text NOT NULL,
	"cwd" text,
	"status" text DEFAULT 'pending' NOT NULL,
	"decision" text,
	"decided_by_user_id" uuid,
	"decided_via" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"decided_at" timestamp with time zone,
	"notified_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "approvals" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "chat_messages" ADD COLUMN "trace" text;--> statement-breakpoint
ALTER TABLE "platform_settings" ADD COLUMN "grantable_tools" text[];--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "exec_policy" text DEFAULT 'ask' NOT NULL;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "exec_allowlist" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_session_id_chat_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."chat_sessions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_requested_by_user_id_users_id_fk" FOREIGN KEY ("requested_by_user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_requested_by_api_key_id_api_keys_id_fk" FOREIGN KEY ("requested_by_api_key_id") REFERENCES "public"."api_keys"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_decided_by_user_id_users_id_fk" FOREIGN KEY ("decided_by_user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "approvals_gateway_id_idx" ON "approvals" USING btree ("workspace_id","gateway_approval_id");--> statement-breakpoint
CREATE INDEX "approvals_list_idx" ON "approvals" USING btree ("workspace_id","created_at","id");--> statement-breakpoint
CREATE INDEX "approvals_pending_idx" ON "approvals" USING btree ("expires_at") WHERE "approvals"."status" = 'pending';--> statement-breakpoint
CREATE POLICY "approvals_tenant_isolation" ON "approvals" AS PERMISSIVE FOR ALL TO "reef_app" USING ("approvals"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("approvals"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
ALTER TABLE "approvals" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
INSERT INTO "role_permissions" ("role", "action") VALUES
  ('owner', 'approvals:read'), ('owner', 'approvals:decide'),
  ('admin', 'approvals:read'), ('admin', 'approvals:decide'),
  ('member', 'approvals:read'),
  ('viewer', 'approvals:read')
ON CONFLICT DO NOTHING;--> statement-breakpoint
-- Agents granted the shell before approvals existed ran every command: keep that until an admin chooses otherwise.
UPDATE "agents" SET "exec_policy" = 'allow' WHERE "tools" ? 'shell';
