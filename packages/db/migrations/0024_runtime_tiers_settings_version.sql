ALTER TABLE "platform_settings" ADD COLUMN "runtime_pause_after_minutes" integer;--> statement-breakpoint
ALTER TABLE "runtimes" ADD COLUMN "settings_version" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runtimes" ADD COLUMN "paused_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runtimes" ADD COLUMN "swapped_out_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "chat_messages_streaming_idx" ON "chat_messages" USING btree ("workspace_id") WHERE "chat_messages"."status" = 'streaming';
--> statement-breakpoint
-- Every write to what a workspace's gateway settings are made of bumps its runtime's settings_version, in the
-- writer's transaction, so a replica's cached settings are never trusted past a change (runtime-settings-cache.ts).
-- It runs as the writer (not SECURITY DEFINER): the write already passed the same tenant policy that runtimes has.
-- Where the workspace has no runtime row yet there is nothing to invalidate; a workspace being deleted takes its
-- row with it.
CREATE OR REPLACE FUNCTION reef_bump_gateway_settings() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    UPDATE runtimes SET settings_version = settings_version + 1 WHERE workspace_id = OLD.workspace_id;
  END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.workspace_id IS DISTINCT FROM OLD.workspace_id) THEN
    UPDATE runtimes SET settings_version = settings_version + 1 WHERE workspace_id = NEW.workspace_id;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER agents_gateway_settings AFTER INSERT OR UPDATE OR DELETE ON agents
  FOR EACH ROW EXECUTE FUNCTION reef_bump_gateway_settings();
--> statement-breakpoint
CREATE TRIGGER providers_gateway_settings AFTER INSERT OR UPDATE OR DELETE ON providers
  FOR EACH ROW EXECUTE FUNCTION reef_bump_gateway_settings();
--> statement-breakpoint
CREATE TRIGGER connectors_gateway_settings AFTER INSERT OR UPDATE OR DELETE ON connectors
  FOR EACH ROW EXECUTE FUNCTION reef_bump_gateway_settings();
--> statement-breakpoint
CREATE TRIGGER agent_connectors_gateway_settings AFTER INSERT OR UPDATE OR DELETE ON agent_connectors
  FOR EACH ROW EXECUTE FUNCTION reef_bump_gateway_settings();
