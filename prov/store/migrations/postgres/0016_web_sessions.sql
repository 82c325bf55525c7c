-- Portal sessions, shared by every node. key_hash is the SHA-256 of the
-- cookie's secret ID, so a reader of the database cannot present it. The
-- softphone credential minted for the session keeps only digest HA1s for
-- the SIP realm (sp_*; sp_user '' when none), never its password.
CREATE TABLE web_sessions (
    key_hash     TEXT    PRIMARY KEY,
    csrf         TEXT    NOT NULL,
    admin        BOOLEAN NOT NULL DEFAULT FALSE,
    name         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    seen_at      BIGINT  NOT NULL,
    flash        TEXT    NOT NULL DEFAULT '',
    sp_user      TEXT    NOT NULL DEFAULT '',
    sp_user_id   BIGINT  NOT NULL DEFAULT 0,
    sp_number    TEXT    NOT NULL DEFAULT '',
    sp_ha1_md5   TEXT    NOT NULL DEFAULT '',
    sp_ha1_sha256 TEXT   NOT NULL DEFAULT '',
    sp_expires   BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX web_sessions_seen ON web_sessions(seen_at);
CREATE INDEX web_sessions_name ON web_sessions(name);
CREATE INDEX web_sessions_sp_user_id ON web_sessions(sp_user_id);
