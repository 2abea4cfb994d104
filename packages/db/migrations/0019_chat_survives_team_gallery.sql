ALTER TABLE "chat_sessions" ADD COLUMN "pinned_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "description" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "starter_prompts" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "runtimes" ADD COLUMN "last_start_ms" integer;--> statement-breakpoint
ALTER TABLE "workspaces" ADD COLUMN "default_agent_id" uuid;