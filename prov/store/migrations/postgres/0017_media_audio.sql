-- Voicemail messages', greetings' and recordings' audio, for nodes that
-- share this store: each node keeps the files it recorded on its own disk,
-- and any node reads the others' from here. A media object is named by
-- kind and name (a message's mailbox/file, a greeting's user id, a
-- recording's file); its chunks (256 KiB) are read one at a time, so
-- serving never loads a whole recording. The object row is written last in
-- the transaction that writes its chunks.
CREATE TABLE media_objects (
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    size       BIGINT  NOT NULL DEFAULT 0,
    chunks     INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE INDEX media_objects_created ON media_objects(kind, created_at);
CREATE TABLE media_chunks (
    kind TEXT    NOT NULL,
    name TEXT    NOT NULL,
    seq  INTEGER NOT NULL,
    data BYTEA   NOT NULL,
    PRIMARY KEY (kind, name, seq),
    FOREIGN KEY (kind, name) REFERENCES media_objects(kind, name) ON DELETE CASCADE
);
