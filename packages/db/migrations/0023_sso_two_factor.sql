CREATE TABLE "auth_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"token_hash" text NOT NULL,
	"user_id" uuid,
	"provider_id" uuid,
	"email" text,
	"binding_hash" text,
	"data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "auth_tokens" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "identity_providers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"slug" text NOT NULL,
	"name" text NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"config" jsonb NOT NULL,
	"secret_sealed" text,
	"allowed_domains" text[] DEFAULT '{}'::text[] NOT NULL,
	"default_workspace_id" uuid,
	"default_role" text DEFAULT 'member' NOT NULL,
	"group_claim" text,
	"group_roles" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" uuid
);
--> statement-breakpoint
ALTER TABLE "identity_providers" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "recovery_codes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"code_hash" text NOT NULL,
	"used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "recovery_codes" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "user_identities" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"provider_id" uuid NOT NULL,
	"subject" text NOT NULL,
	"email" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_login_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "user_identities" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "user_totp" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"secret_sealed" text NOT NULL,
	"confirmed_at" timestamp with time zone,
	"last_step" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "user_totp" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "platform_settings" ADD COLUMN "require_sso" boolean;--> statement-breakpoint
ALTER TABLE "platform_settings" ADD COLUMN "require_two_factor" boolean;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "method" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "breakglass" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "workspaces" ADD COLUMN "require_two_factor" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "auth_tokens" ADD CONSTRAINT "auth_tokens_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auth_tokens" ADD CONSTRAINT "auth_tokens_provider_id_identity_providers_id_fk" FOREIGN KEY ("provider_id") REFERENCES "public"."identity_providers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "identity_providers" ADD CONSTRAINT "identity_providers_default_workspace_id_workspaces_id_fk" FOREIGN KEY ("default_workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "identity_providers" ADD CONSTRAINT "identity_providers_updated_by_users_id_fk" FOREIGN KEY ("updated_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "recovery_codes" ADD CONSTRAINT "recovery_codes_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_identities" ADD CONSTRAINT "user_identities_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_identities" ADD CONSTRAINT "user_identities_provider_id_identity_providers_id_fk" FOREIGN KEY ("provider_id") REFERENCES "public"."identity_providers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_totp" ADD CONSTRAINT "user_totp_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "auth_tokens_token_key" ON "auth_tokens" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "auth_tokens_user_idx" ON "auth_tokens" USING btree ("user_id","kind");--> statement-breakpoint
CREATE INDEX "auth_tokens_expires_idx" ON "auth_tokens" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "identity_providers_slug_key" ON "identity_providers" USING btree ("slug");--> statement-breakpoint
CREATE INDEX "recovery_codes_user_idx" ON "recovery_codes" USING btree ("user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "user_identities_subject_key" ON "user_identities" USING btree ("provider_id","subject");--> statement-breakpoint
CREATE INDEX "user_identities_user_idx" ON "user_identities" USING btree ("user_id");--> statement-breakpoint
CREATE POLICY "auth_tokens_access" ON "auth_tokens" AS PERMISSIVE FOR ALL TO "reef_app" USING ("auth_tokens"."user_id" = reef_current_user_id() or reef_platform_scope() or "auth_tokens"."token_hash" = reef_lookup('auth_token')) WITH CHECK ("auth_tokens"."user_id" = reef_current_user_id() or reef_platform_scope() or "auth_tokens"."token_hash" = reef_lookup('auth_token'));--> statement-breakpoint
CREATE POLICY "identity_providers_platform" ON "identity_providers" AS PERMISSIVE FOR ALL TO "reef_app" USING (reef_platform_scope()) WITH CHECK (reef_platform_scope());--> statement-breakpoint
CREATE POLICY "recovery_codes_own" ON "recovery_codes" AS PERMISSIVE FOR ALL TO "reef_app" USING ("recovery_codes"."user_id" = reef_current_user_id() or reef_platform_scope()) WITH CHECK ("recovery_codes"."user_id" = reef_current_user_id() or reef_platform_scope());--> statement-breakpoint
CREATE POLICY "user_identities_own" ON "user_identities" AS PERMISSIVE FOR ALL TO "reef_app" USING ("user_identities"."user_id" = reef_current_user_id() or reef_platform_scope()) WITH CHECK ("user_identities"."user_id" = reef_current_user_id() or reef_platform_scope());--> statement-breakpoint
CREATE POLICY "user_totp_own" ON "user_totp" AS PERMISSIVE FOR ALL TO "reef_app" USING ("user_totp"."user_id" = reef_current_user_id() or reef_platform_scope()) WITH CHECK ("user_totp"."user_id" = reef_current_user_id() or reef_platform_scope());--> statement-breakpoint
ALTER TABLE "identity_providers" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "user_identities" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "auth_tokens" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "user_totp" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "recovery_codes" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
-- The session's sign-in method rides along with the actor, so workspaces that require a second factor can check it for free.
DROP FUNCTION reef_session_actor(text);--> statement-breakpoint
CREATE FUNCTION reef_session_actor(p_token_hash text)
RETURNS TABLE (o_session_id uuid, o_user_id uuid, o_platform_role text, o_last_seen_at timestamptz, o_method text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  s record;
BEGIN
  PERFORM set_config('app.lookup_session', p_token_hash, true);
  SELECT ss.id, ss.user_id, ss.last_seen_at, ss.method INTO s
    FROM sessions ss
   WHERE ss.token_hash = p_token_hash AND ss.revoked_at IS NULL AND ss.expires_at > now();
  IF NOT FOUND THEN
    RETURN;
  END IF;
  PERFORM set_config('app.user_id', s.user_id::text, true);
  RETURN QUERY
    SELECT s.id, u.id, u.platform_role, s.last_seen_at, s.method
      FROM users u
     WHERE u.id = s.user_id AND u.deactivated_at IS NULL;
END
$$;
