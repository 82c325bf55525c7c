-- Each cluster node's last sign of life, written every few seconds: a park
-- slot held by a node gone silent is free at once, not after the park
-- timeout.
CREATE TABLE cluster_nodes (
    node     TEXT    PRIMARY KEY,
    seen_at  BIGINT  NOT NULL
);
