ALTER TABLE "chat_messages" ADD COLUMN "error_code" text;--> statement-breakpoint
ALTER TABLE "chat_messages" ADD COLUMN "abort_requested_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "gateway_retell_pending" boolean DEFAULT false NOT NULL;