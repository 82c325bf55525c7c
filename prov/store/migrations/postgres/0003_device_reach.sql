-- Which handset a binding reaches, whichever credential made it (device
-- account, a login session's line, a third-party phone's account): a
-- logout finds the phone through any line it keeps registered.
ALTER TABLE bindings ADD COLUMN device_id BIGINT NOT NULL DEFAULT 0;

-- What the reboot-versus-logout decision needs of each handset, so that a
-- restart decides the same: a re-sync the phone has not yet finished
-- applying, a boot-file fetch the next registration will explain, and a login line the phone took down itself, awaiting the next
-- signal (with the binding it removed, to reach the phone afterwards).
CREATE TABLE device_signals (
    device_id         BIGINT PRIMARY KEY,
    sync_at           BIGINT NOT NULL DEFAULT 0,
    sync_fetched_at   BIGINT NOT NULL DEFAULT 0,
    boot_at           BIGINT NOT NULL DEFAULT 0,
    line_down_session TEXT   NOT NULL DEFAULT '',
    line_down_at      BIGINT NOT NULL DEFAULT 0,
    reach             TEXT   NOT NULL DEFAULT '',
    updated_at        BIGINT NOT NULL DEFAULT 0
);
