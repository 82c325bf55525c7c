-- The secure bootstrap: a device's provisioning credentials are handed out
-- once, unauthenticated; from then on its files need them. creds_addr is
-- where the credentials live (the address they went to, then the last
-- address that authenticated with them), so that an unauthenticated fetch
-- from elsewhere is told apart from the phone. The last identity conflict
-- (a second device presenting the MAC) is kept for the admin.
ALTER TABLE devices ADD COLUMN creds_delivered_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN creds_addr TEXT NOT NULL DEFAULT '';
-- A login made away from the phone (an assignment, an admin's) before the
-- credentials went out: whoever fetched them is not known to be that phone,
-- so that user's lines wait for a deployment-PIN claim or an admin's check.
ALTER TABLE devices ADD COLUMN creds_held_user INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN conflict_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN conflict_from TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN conflict_reason TEXT NOT NULL DEFAULT '';

-- Upload quotas sum sizes per owner and in all on every upload: from an
-- index, not from rows that hold the data.
CREATE INDEX uploads_owner_size ON uploads (owner, size);

-- Deployed phones hold their credentials already.
UPDATE devices SET creds_delivered_at = created_at WHERE status = 'deployed' AND creds_delivered_at = 0;
