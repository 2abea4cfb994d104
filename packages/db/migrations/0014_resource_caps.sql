ALTER TABLE "platform_settings" ADD COLUMN "max_workspaces_per_user" integer;--> statement-breakpoint
ALTER TABLE "platform_settings" ADD COLUMN "max_runtimes_per_user" integer;--> statement-breakpoint
ALTER TABLE "platform_settings" ADD COLUMN "max_runtimes" integer;