-- One bound lease per address: two DHCP nodes sharing the lease
-- table cannot hand one address out twice; the second insert fails. Older
-- duplicates (only possible from a past bug) keep the newest lease.
DELETE FROM leases WHERE state = 'bound' AND ip <> '' AND EXISTS (
    SELECT 1 FROM leases b WHERE b.ip = leases.ip AND b.state = 'bound' AND b.mac <> leases.mac
    AND (b.expires > leases.expires OR (b.expires = leases.expires AND b.mac > leases.mac)));
CREATE UNIQUE INDEX leases_ip_bound ON leases(ip) WHERE state = 'bound' AND ip <> '';
