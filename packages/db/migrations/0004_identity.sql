CREATE TABLE "audit_chain_heads" (
	"chain" text PRIMARY KEY NOT NULL,
	"last_hash" text
);
--> statement-breakpoint
ALTER TABLE "audit_chain_heads" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"workspace_id" uuid,
	"occurred_at" timestamp (3) with time zone NOT NULL,
	"actor_type" text NOT NULL,
	"actor_id" text,
	"action" text NOT NULL,
	"target_type" text,
	"target_id" text,
	"outcome" text NOT NULL,
	"ip" text,
	"user_agent" text,
	"request_id" text,
	"details" jsonb,
	"prev_hash" text,
	"hash" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "audit_log" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "rate_limits" (
	"key" varchar(255) PRIMARY KEY NOT NULL,
	"points" integer DEFAULT 0 NOT NULL,
	"expire" bigint
);
--> statement-breakpoint
ALTER TABLE "rate_limits" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "platform_state" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"first_user_id" uuid
);
--> statement-breakpoint
ALTER TABLE "platform_state" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "sessions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"token_hash" text NOT NULL,
	"ip" "inet",
	"user_agent" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "sessions_tokenHash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
ALTER TABLE "sessions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY NOT NULL,
	"email" text NOT NULL,
	"name" text NOT NULL,
	"password_hash" text,
	"platform_role" text DEFAULT 'user' NOT NULL,
	"deactivated_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "users" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"workspace_id" uuid NOT NULL,
	"name" text NOT NULL,
	"role" text NOT NULL,
	"prefix" text NOT NULL,
	"key_hash" text NOT NULL,
	"created_by" uuid,
	"expires_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "api_keys_keyHash_unique" UNIQUE("key_hash")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "invites" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"workspace_id" uuid NOT NULL,
	"email" text NOT NULL,
	"role" text NOT NULL,
	"token_hash" text NOT NULL,
	"invited_by" uuid,
	"expires_at" timestamp with time zone NOT NULL,
	"accepted_at" timestamp with time zone,
	"accepted_by" uuid,
	"revoked_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "invites_tokenHash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
ALTER TABLE "invites" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "role_permissions" (
	"role" text NOT NULL,
	"action" text NOT NULL,
	CONSTRAINT "role_permissions_role_action_pk" PRIMARY KEY("role","action")
);
--> statement-breakpoint
ALTER TABLE "role_permissions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "workspace_members" (
	"workspace_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"role" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "workspace_members_workspace_id_user_id_pk" PRIMARY KEY("workspace_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "workspace_members" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "workspaces" ADD COLUMN "personal" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "platform_state" ADD CONSTRAINT "platform_state_first_user_id_users_id_fk" FOREIGN KEY ("first_user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "invites" ADD CONSTRAINT "invites_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "invites" ADD CONSTRAINT "invites_invited_by_users_id_fk" FOREIGN KEY ("invited_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "invites" ADD CONSTRAINT "invites_accepted_by_users_id_fk" FOREIGN KEY ("accepted_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workspace_members" ADD CONSTRAINT "workspace_members_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workspace_members" ADD CONSTRAINT "workspace_members_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_workspace_idx" ON "audit_log" USING btree ("workspace_id","id");--> statement-breakpoint
CREATE INDEX "audit_workspace_action_idx" ON "audit_log" USING btree ("workspace_id","action","id");--> statement-breakpoint
CREATE INDEX "sessions_user_idx" ON "sessions" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_key" ON "users" USING btree (lower("email"));--> statement-breakpoint
CREATE INDEX "api_keys_workspace_idx" ON "api_keys" USING btree ("workspace_id","created_at");--> statement-breakpoint
CREATE INDEX "invites_workspace_idx" ON "invites" USING btree ("workspace_id","created_at");--> statement-breakpoint
CREATE INDEX "workspace_members_user_idx" ON "workspace_members" USING btree ("user_id");--> statement-breakpoint
CREATE POLICY "workspaces_visible_to_members" ON "workspaces" AS PERMISSIVE FOR SELECT TO "reef_app" USING (reef_platform_scope() or exists (
        select 1 from workspace_members m where m.workspace_id = "workspaces"."id" and m.user_id = reef_current_user_id()));--> statement-breakpoint
CREATE POLICY "audit_chain_heads_all" ON "audit_chain_heads" AS PERMISSIVE FOR ALL TO "reef_app" USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY "audit_read" ON "audit_log" AS PERMISSIVE FOR SELECT TO "reef_app" USING ("audit_log"."workspace_id" = reef_current_workspace_id() or ("audit_log"."workspace_id" is null and reef_platform_scope()));--> statement-breakpoint
CREATE POLICY "audit_append" ON "audit_log" AS PERMISSIVE FOR INSERT TO "reef_app" WITH CHECK ("audit_log"."workspace_id" = reef_current_workspace_id() or "audit_log"."workspace_id" is null);--> statement-breakpoint
CREATE POLICY "rate_limits_all" ON "rate_limits" AS PERMISSIVE FOR ALL TO "reef_app" USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY "platform_state_all" ON "platform_state" AS PERMISSIVE FOR ALL TO "reef_app" USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY "sessions_own" ON "sessions" AS PERMISSIVE FOR ALL TO "reef_app" USING ("sessions"."user_id" = reef_current_user_id() or reef_platform_scope() or "sessions"."token_hash" = reef_lookup('session')) WITH CHECK ("sessions"."user_id" = reef_current_user_id() or reef_platform_scope());--> statement-breakpoint
CREATE POLICY "users_visible" ON "users" AS PERMISSIVE FOR SELECT TO "reef_app" USING ("users"."id" = reef_current_user_id() or reef_platform_scope() or lower("users"."email") = reef_lookup('email') or exists (
        select 1 from workspace_members m where m.user_id = "users"."id" and m.workspace_id = reef_current_workspace_id()));--> statement-breakpoint
CREATE POLICY "users_insert_self" ON "users" AS PERMISSIVE FOR INSERT TO "reef_app" WITH CHECK ("users"."id" = reef_current_user_id());--> statement-breakpoint
CREATE POLICY "users_update" ON "users" AS PERMISSIVE FOR UPDATE TO "reef_app" USING ("users"."id" = reef_current_user_id() or reef_platform_scope()) WITH CHECK ("users"."id" = reef_current_user_id() or reef_platform_scope());--> statement-breakpoint
CREATE POLICY "api_keys_tenant_isolation" ON "api_keys" AS PERMISSIVE FOR ALL TO "reef_app" USING ("api_keys"."workspace_id" = reef_current_workspace_id() or "api_keys"."key_hash" = reef_lookup('api_key')) WITH CHECK ("api_keys"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "invites_tenant_isolation" ON "invites" AS PERMISSIVE FOR ALL TO "reef_app" USING ("invites"."workspace_id" = reef_current_workspace_id() or "invites"."token_hash" = reef_lookup('invite')) WITH CHECK ("invites"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "role_permissions_readable" ON "role_permissions" AS PERMISSIVE FOR SELECT TO "reef_app" USING (true);--> statement-breakpoint
CREATE POLICY "members_tenant_isolation" ON "workspace_members" AS PERMISSIVE FOR ALL TO "reef_app" USING ("workspace_members"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("workspace_members"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "members_own_memberships" ON "workspace_members" AS PERMISSIVE FOR SELECT TO "reef_app" USING ("workspace_members"."user_id" = reef_current_user_id() or reef_platform_scope());--> statement-breakpoint
ALTER POLICY "workspaces_tenant_isolation" ON "workspaces" TO reef_app USING ("workspaces"."id" = reef_current_workspace_id()) WITH CHECK ("workspaces"."id" = reef_current_workspace_id());