-- API tokens expire, remember when they were last used and can be revoked
-- The prefix is the secret's first characters, so an admin can
-- tell tokens apart in a listing that never shows the secret. Tokens made
-- before this migration expire 90 days after they were created.
ALTER TABLE api_tokens ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
UPDATE api_tokens SET expires_at = created_at + 7776000000 WHERE expires_at = 0;
