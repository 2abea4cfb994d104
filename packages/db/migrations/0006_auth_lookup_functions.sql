-- Resolving a credential is the hottest path (every authenticated request), so it
-- is one round trip: these functions run as the caller (not SECURITY DEFINER), set
-- the lookup scopes the RLS policies expect, and return the actor. The settings
-- are transaction-local and end with the caller's transaction.
CREATE OR REPLACE FUNCTION reef_session_actor(p_token_hash text)
RETURNS TABLE (o_session_id uuid, o_user_id uuid, o_platform_role text, o_last_seen_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  s record;
BEGIN
  PERFORM set_config('app.lookup_session', p_token_hash, true);
  SELECT ss.id, ss.user_id, ss.last_seen_at INTO s
    FROM sessions ss
   WHERE ss.token_hash = p_token_hash AND ss.revoked_at IS NULL AND ss.expires_at > now();
  IF NOT FOUND THEN
    RETURN;
  END IF;
  PERFORM set_config('app.user_id', s.user_id::text, true);
  RETURN QUERY
    SELECT s.id, u.id, u.platform_role, s.last_seen_at
      FROM users u
     WHERE u.id = s.user_id AND u.deactivated_at IS NULL;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION reef_api_key_actor(p_key_hash text)
RETURNS TABLE (o_key_id uuid, o_workspace_id uuid, o_role text, o_last_used_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  k record;
BEGIN
  PERFORM set_config('app.lookup_api_key', p_key_hash, true);
  SELECT ak.id, ak.workspace_id, ak.role, ak.last_used_at, ak.created_by INTO k
    FROM api_keys ak
   WHERE ak.key_hash = p_key_hash AND ak.revoked_at IS NULL AND (ak.expires_at IS NULL OR ak.expires_at > now());
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF k.created_by IS NOT NULL THEN
    PERFORM set_config('app.user_id', k.created_by::text, true);
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = k.created_by AND u.deactivated_at IS NULL) THEN
      RETURN;
    END IF;
  END IF;
  RETURN QUERY SELECT k.id, k.workspace_id, k.role, k.last_used_at;
END
$$;
