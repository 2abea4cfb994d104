CREATE TABLE "schedule_runs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"workspace_id" uuid NOT NULL,
	"schedule_id" uuid NOT NULL,
	"trigger" text NOT NULL,
	"scheduled_for" timestamp with time zone NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"error_code" text,
	"error" text,
	"prompt_sealed" text,
	"delivery_id" text,
	"requested_by_user_id" uuid,
	"session_id" uuid,
	"message_id" bigint,
	"prompt_tokens" integer,
	"completion_tokens" integer,
	"notify_status" text,
	"queued_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "schedule_runs" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "schedules" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"workspace_id" uuid NOT NULL,
	"agent_id" uuid,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"cron" text,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"run_at" timestamp with time zone,
	"prompt" text NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"share_output" boolean DEFAULT false NOT NULL,
	"timeout_seconds" integer DEFAULT 600 NOT NULL,
	"next_run_at" timestamp with time zone,
	"secret_sealed" text,
	"notify_url" text,
	"created_by_user_id" uuid,
	"created_by_api_key_id" uuid,
	"consecutive_failures" integer DEFAULT 0 NOT NULL,
	"failure_alerted_at" timestamp with time zone,
	"last_run_at" timestamp with time zone,
	"last_run_status" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "schedules" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "schedule_id" uuid;--> statement-breakpoint
ALTER TABLE "schedule_runs" ADD CONSTRAINT "schedule_runs_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedule_runs" ADD CONSTRAINT "schedule_runs_schedule_id_schedules_id_fk" FOREIGN KEY ("schedule_id") REFERENCES "public"."schedules"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedule_runs" ADD CONSTRAINT "schedule_runs_requested_by_user_id_users_id_fk" FOREIGN KEY ("requested_by_user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedule_runs" ADD CONSTRAINT "schedule_runs_session_id_chat_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."chat_sessions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedule_runs" ADD CONSTRAINT "schedule_runs_message_id_chat_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "public"."chat_messages"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_created_by_user_id_users_id_fk" FOREIGN KEY ("created_by_user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_created_by_api_key_id_api_keys_id_fk" FOREIGN KEY ("created_by_api_key_id") REFERENCES "public"."api_keys"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "schedule_runs_schedule_idx" ON "schedule_runs" USING btree ("schedule_id","queued_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "schedule_runs_firing_idx" ON "schedule_runs" USING btree ("schedule_id","scheduled_for") WHERE "schedule_runs"."trigger" = 'schedule';--> statement-breakpoint
CREATE UNIQUE INDEX "schedule_runs_delivery_idx" ON "schedule_runs" USING btree ("schedule_id","delivery_id") WHERE "schedule_runs"."delivery_id" is not null;--> statement-breakpoint
CREATE INDEX "schedules_workspace_idx" ON "schedules" USING btree ("workspace_id","created_at","id");--> statement-breakpoint
CREATE POLICY "schedule_runs_tenant_isolation" ON "schedule_runs" AS PERMISSIVE FOR ALL TO "reef_app" USING ("schedule_runs"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("schedule_runs"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "schedules_tenant_isolation" ON "schedules" AS PERMISSIVE FOR ALL TO "reef_app" USING ("schedules"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("schedules"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
ALTER TABLE "schedules" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "schedule_runs" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE INDEX "chat_sessions_schedule_idx" ON "chat_sessions" USING btree ("schedule_id") WHERE "chat_sessions"."schedule_id" is not null;--> statement-breakpoint
INSERT INTO "role_permissions" ("role", "action") VALUES
  ('owner', 'schedules:read'), ('owner', 'schedules:write'), ('owner', 'schedules:manage'),
  ('admin', 'schedules:read'), ('admin', 'schedules:write'), ('admin', 'schedules:manage'),
  ('member', 'schedules:read'), ('member', 'schedules:write'),
  ('viewer', 'schedules:read')
ON CONFLICT DO NOTHING;--> statement-breakpoint
-- The job queue (pg-boss) keeps its tables here, created by the app role at start: no tenant data, only ids.
CREATE SCHEMA IF NOT EXISTS pgboss;--> statement-breakpoint
GRANT USAGE, CREATE ON SCHEMA pgboss TO reef_app;
