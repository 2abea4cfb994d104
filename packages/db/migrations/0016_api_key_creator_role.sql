-- An API key answers for its creator: it acts with the lower of its own role and
-- its creator's current role in the key's workspace, and not at all once the
-- creator has left the workspace, been deactivated or deleted. Checked on every
-- lookup (still one round trip), so a demotion or removal takes effect at once.
-- The creator's membership row is readable here through the
-- members_own_memberships policy, as app.user_id is the creator.
CREATE OR REPLACE FUNCTION reef_api_key_actor(p_key_hash text)
RETURNS TABLE (o_key_id uuid, o_workspace_id uuid, o_role text, o_last_used_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  k record;
  creator_role text;
BEGIN
  PERFORM set_config('app.lookup_api_key', p_key_hash, true);
  SELECT ak.id, ak.workspace_id, ak.role, ak.last_used_at, ak.created_by INTO k
    FROM api_keys ak
   WHERE ak.key_hash = p_key_hash AND ak.revoked_at IS NULL AND (ak.expires_at IS NULL OR ak.expires_at > now());
  IF NOT FOUND OR k.created_by IS NULL THEN
    RETURN;
  END IF;
  PERFORM set_config('app.user_id', k.created_by::text, true);
  SELECT m.role INTO creator_role
    FROM workspace_members m
    JOIN users u ON u.id = m.user_id AND u.deactivated_at IS NULL
   WHERE m.workspace_id = k.workspace_id AND m.user_id = k.created_by;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT k.id, k.workspace_id,
    CASE WHEN array_position(ARRAY['viewer', 'member', 'admin', 'owner'], creator_role)
            < array_position(ARRAY['viewer', 'member', 'admin', 'owner'], k.role)
         THEN creator_role ELSE k.role END,
    k.last_used_at;
END
$$;
