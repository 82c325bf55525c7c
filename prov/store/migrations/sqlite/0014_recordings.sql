-- Call recordings of the media bridge: the WAV file's name under the data
-- directory's recordings/, whose call, and its size for the budget.
CREATE TABLE recordings (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT  NOT NULL,
    call_id     TEXT    NOT NULL DEFAULT '',
    peer        TEXT    NOT NULL DEFAULT '',
    incoming    INTEGER NOT NULL DEFAULT 0,
    start_at    BIGINT  NOT NULL,
    duration_ms BIGINT  NOT NULL DEFAULT 0,
    bytes       BIGINT  NOT NULL DEFAULT 0,
    file        TEXT    NOT NULL UNIQUE
);
CREATE INDEX recordings_user ON recordings(user_id, start_at);
CREATE INDEX recordings_start ON recordings(start_at);
