-- What a node kept in memory about a phone for a few seconds, kept in the
-- store so that another node (or the node restarted) knows it too.

-- A native login's session that ended: for NativeRefuseWindow the phone's
-- re-fetch of <user>.cfg with the login it stored is refused, on every node.
CREATE TABLE native_logouts (
    device_id INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (device_id, user_id)
);

-- A check-sync held while the phone applies the previous one, per device
-- and node that held it, with the lines a logout captured (and their
-- passwords): the node the phone registers with next sends it.
CREATE TABLE held_syncs (
    device_id INTEGER NOT NULL,
    node      TEXT   NOT NULL,
    due_at    INTEGER NOT NULL,
    targets   TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (device_id, node)
);
CREATE INDEX held_syncs_node ON held_syncs (node);
