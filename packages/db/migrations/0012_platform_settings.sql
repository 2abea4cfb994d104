CREATE TABLE "platform_settings" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"public_url" text,
	"smtp_host" text,
	"smtp_port" integer,
	"smtp_security" text,
	"smtp_username" text,
	"smtp_password_sealed" text,
	"smtp_from" text,
	"runtime_idle_timeout_minutes" integer,
	"setup_step" smallint DEFAULT 0 NOT NULL,
	"setup_completed_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" uuid,
	CONSTRAINT "platform_settings_single_row" CHECK ("platform_settings"."id" = 1)
);
--> statement-breakpoint
ALTER TABLE "platform_settings" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "platform_settings" ADD CONSTRAINT "platform_settings_updated_by_users_id_fk" FOREIGN KEY ("updated_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE POLICY "platform_settings_platform" ON "platform_settings" AS PERMISSIVE FOR ALL TO "reef_app" USING (reef_platform_scope()) WITH CHECK (reef_platform_scope());--> statement-breakpoint
ALTER TABLE "platform_settings" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
-- An install that already has accounts was set up through its configuration:
-- its operators are not sent through the first-run wizard.
INSERT INTO "platform_settings" ("id", "setup_completed_at")
  VALUES (1, CASE WHEN EXISTS (SELECT 1 FROM "users") THEN now() END)
  ON CONFLICT DO NOTHING;
