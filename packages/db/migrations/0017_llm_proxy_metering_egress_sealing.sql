CREATE TABLE "egress_refusals" (
	"workspace_id" uuid NOT NULL,
	"day" date NOT NULL,
	"host" text NOT NULL,
	"port" integer NOT NULL,
	"reason" text NOT NULL,
	"count" integer DEFAULT 0 NOT NULL,
	"last_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "egress_refusals_workspace_id_day_host_port_reason_pk" PRIMARY KEY("workspace_id","day","host","port","reason")
);
--> statement-breakpoint
ALTER TABLE "egress_refusals" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "llm_calls" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "llm_calls_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"workspace_id" uuid NOT NULL,
	"provider_id" uuid,
	"agent_id" uuid,
	"model" text DEFAULT '' NOT NULL,
	"endpoint" text DEFAULT '' NOT NULL,
	"prompt_tokens" integer DEFAULT 0 NOT NULL,
	"completion_tokens" integer DEFAULT 0 NOT NULL,
	"first_byte_ms" integer,
	"latency_ms" integer DEFAULT 0 NOT NULL,
	"outcome" text NOT NULL,
	"http_status" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "llm_calls" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "llm_credentials" (
	"credential_hash" text PRIMARY KEY NOT NULL,
	"workspace_id" uuid NOT NULL,
	"provider_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "llm_credentials" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "chat_messages" ADD COLUMN "sealed" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "title_sealed" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "workspaces" ADD COLUMN "monthly_token_budget" bigint;--> statement-breakpoint
ALTER TABLE "workspaces" ADD COLUMN "egress_allow_hosts" text[];--> statement-breakpoint
ALTER TABLE "workspaces" ADD COLUMN "egress_deny_hosts" text[];--> statement-breakpoint
ALTER TABLE "egress_refusals" ADD CONSTRAINT "egress_refusals_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD CONSTRAINT "llm_calls_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD CONSTRAINT "llm_calls_provider_id_providers_id_fk" FOREIGN KEY ("provider_id") REFERENCES "public"."providers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD CONSTRAINT "llm_calls_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "llm_credentials" ADD CONSTRAINT "llm_credentials_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "llm_credentials" ADD CONSTRAINT "llm_credentials_provider_id_providers_id_fk" FOREIGN KEY ("provider_id") REFERENCES "public"."providers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "egress_refusals_recent_idx" ON "egress_refusals" USING btree ("workspace_id","last_at");--> statement-breakpoint
CREATE INDEX "llm_calls_workspace_idx" ON "llm_calls" USING btree ("workspace_id","created_at","id");--> statement-breakpoint
CREATE INDEX "llm_credentials_workspace_idx" ON "llm_credentials" USING btree ("workspace_id");--> statement-breakpoint
CREATE INDEX "chat_messages_unsealed_idx" ON "chat_messages" USING btree ("workspace_id","id") WHERE not "chat_messages"."sealed";--> statement-breakpoint
CREATE INDEX "chat_sessions_title_unsealed_idx" ON "chat_sessions" USING btree ("workspace_id") WHERE not "chat_sessions"."title_sealed";--> statement-breakpoint
CREATE POLICY "egress_refusals_tenant_isolation" ON "egress_refusals" AS PERMISSIVE FOR ALL TO "reef_app" USING ("egress_refusals"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("egress_refusals"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "llm_calls_tenant_isolation" ON "llm_calls" AS PERMISSIVE FOR ALL TO "reef_app" USING ("llm_calls"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("llm_calls"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "llm_credentials_tenant_isolation" ON "llm_credentials" AS PERMISSIVE FOR ALL TO "reef_app" USING ("llm_credentials"."workspace_id" = reef_current_workspace_id()) WITH CHECK ("llm_credentials"."workspace_id" = reef_current_workspace_id());--> statement-breakpoint
CREATE POLICY "llm_credentials_lookup" ON "llm_credentials" AS PERMISSIVE FOR SELECT TO "reef_app" USING ("llm_credentials"."credential_hash" = reef_lookup('llm_credential'));--> statement-breakpoint
ALTER TABLE "llm_credentials" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "llm_calls" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "egress_refusals" FORCE ROW LEVEL SECURITY;
