-- Password set/reset links sent by e-mail (welcome, reset, forgot
-- password). Only the SHA-256 of the link's secret is kept, so a copy of
-- the database opens no account. A link works once (used_at) and until
-- expires_at.
CREATE TABLE password_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users(id),
    hash       TEXT    NOT NULL UNIQUE,
    purpose    TEXT    NOT NULL DEFAULT '',
    created_at BIGINT  NOT NULL DEFAULT 0,
    expires_at BIGINT  NOT NULL DEFAULT 0,
    used_at    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX password_tokens_user ON password_tokens(user_id);
CREATE INDEX password_tokens_expires ON password_tokens(expires_at);
