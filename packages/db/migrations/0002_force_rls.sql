-- Table owners bypass RLS unless it is forced; force it so that no role other
-- than a superuser ever reads across workspaces.
ALTER TABLE "workspaces" FORCE ROW LEVEL SECURITY;
