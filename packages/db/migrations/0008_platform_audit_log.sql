CREATE TABLE "platform_audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
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
ALTER TABLE "platform_audit_log" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
-- Platform entries written before the split move, keeping their ids, hashes and
-- order, so the platform chain still verifies. RLS is lifted for the owner while
-- it moves them (a non-superuser owner is otherwise bound by FORCE).
ALTER TABLE "audit_log" NO FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
INSERT INTO "platform_audit_log" ("id", "occurred_at", "actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "ip", "user_agent", "request_id", "details", "prev_hash", "hash")
  SELECT "id", "occurred_at", "actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "ip", "user_agent", "request_id", "details", "prev_hash", "hash"
    FROM "audit_log" WHERE "workspace_id" IS NULL ORDER BY "id";
--> statement-breakpoint
SELECT setval(pg_get_serial_sequence('platform_audit_log', 'id'), greatest((SELECT max("id") FROM "platform_audit_log"), 1));
--> statement-breakpoint
DELETE FROM "audit_log" WHERE "workspace_id" IS NULL;
--> statement-breakpoint
ALTER TABLE "audit_log" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "audit_log" ALTER COLUMN "workspace_id" SET NOT NULL;--> statement-breakpoint
CREATE INDEX "platform_audit_action_idx" ON "platform_audit_log" USING btree ("action","id");--> statement-breakpoint
CREATE POLICY "platform_audit_read" ON "platform_audit_log" AS PERMISSIVE FOR SELECT TO "reef_app" USING (reef_platform_scope());--> statement-breakpoint
CREATE POLICY "platform_audit_append" ON "platform_audit_log" AS PERMISSIVE FOR INSERT TO "reef_app" WITH CHECK (true);--> statement-breakpoint
ALTER POLICY "audit_read" ON "audit_log" TO reef_app USING ("audit_log"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
ALTER POLICY "audit_append" ON "audit_log" TO reef_app WITH CHECK ("audit_log"."workspace_id" = reef_current_workspace_id());
--> statement-breakpoint
ALTER TABLE "platform_audit_log" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
REVOKE UPDATE, DELETE, TRUNCATE ON "platform_audit_log" FROM reef_app;
