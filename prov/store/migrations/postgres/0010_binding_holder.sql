-- The cluster node holding a binding: the node whose socket the
-- phone registered through, which therefore reaches it (its NAT mapping,
-- its TCP/TLS connection). Empty on a single node.
ALTER TABLE bindings ADD COLUMN holder TEXT NOT NULL DEFAULT '';
CREATE INDEX bindings_holder ON bindings(holder);
