-- Call park slots occupied on any node: a claim is a conditional insert
-- (two nodes cannot park on one slot); addr is where the parking node's
-- proxy takes a pickup handed over by another node.
CREATE TABLE park_slots (
    slot       TEXT    PRIMARY KEY,
    site_id    BIGINT  NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    node       TEXT    NOT NULL,
    addr       TEXT    NOT NULL DEFAULT '',
    parked_at  BIGINT  NOT NULL
);
CREATE INDEX park_slots_node ON park_slots(node);
