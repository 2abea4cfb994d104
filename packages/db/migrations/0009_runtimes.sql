CREATE TABLE "runtimes" (
	"workspace_id" uuid PRIMARY KEY NOT NULL,
	"driver" text NOT NULL,
	"state" text DEFAULT 'stopped' NOT NULL,
	"endpoint" text,
	"handle" jsonb,
	"token_sealed" text,
	"config_hash" text,
	"claimed_by" text,
	"claimed_at" timestamp with time zone,
	"restarts" integer DEFAULT 0 NOT NULL,
	"failure_reason" text,
	"started_at" timestamp with time zone,
	"last_activity_at" timestamp with time zone,
	"stopped_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "runtimes" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "runtimes" ADD CONSTRAINT "runtimes_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "runtimes_state_idx" ON "runtimes" USING btree ("state","last_activity_at");--> statement-breakpoint
CREATE POLICY "runtimes_tenant_isolation" ON "runtimes" AS PERMISSIVE FOR ALL TO "reef_app" USING ("runtimes"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("runtimes"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "runtimes_platform" ON "runtimes" AS PERMISSIVE FOR ALL TO "reef_app" USING (reef_platform_scope()) WITH CHECK (reef_platform_scope());--> statement-breakpoint
ALTER TABLE "runtimes" FORCE ROW LEVEL SECURITY;
