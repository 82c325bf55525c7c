-- Voicemail messages: the WAV file is in the data directory; heard_at is 0
-- while the message is new (message-waiting counts those).
CREATE TABLE voicemails (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    from_number TEXT    NOT NULL DEFAULT '',
    path        TEXT    NOT NULL,
    duration_ms BIGINT  NOT NULL DEFAULT 0,
    size        BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    heard_at    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX voicemails_user ON voicemails(user_id, created_at);
CREATE INDEX voicemails_created ON voicemails(created_at);
