-- The digest username that created a binding: the registrar answers a
-- phone's challenge to its check-sync NOTIFY with it, also after a restart.
ALTER TABLE bindings ADD COLUMN auth_user TEXT NOT NULL DEFAULT '';
