INSERT INTO "role_permissions" ("role", "action") VALUES
  ('owner', 'runtime:read'), ('owner', 'runtime:manage'),
  ('admin', 'runtime:read'), ('admin', 'runtime:manage'),
  ('member', 'runtime:read'),
  ('viewer', 'runtime:read')
ON CONFLICT DO NOTHING;
