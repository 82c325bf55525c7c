-- 0001_init: every table of the first design (users, sites, devices, sessions, bindings, uploads, leases, audit).
-- Times are BIGINT unix milliseconds (0 = unset); structured fields are JSON
-- text; booleans are INTEGER 0/1 (BOOLEAN there). The SQL the store runs is shared with
-- PostgreSQL, so only this file's types differ in migrations/postgres.

CREATE TABLE sites (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    domain        TEXT    NOT NULL DEFAULT '',
    time_zone     TEXT    NOT NULL DEFAULT '',
    language      TEXT    NOT NULL DEFAULT '',
    subnets       TEXT    NOT NULL DEFAULT '[]',
    login         TEXT    NOT NULL DEFAULT '{}',
    authorized    TEXT    NOT NULL DEFAULT '[]',
    emergency     TEXT    NOT NULL DEFAULT '[]',
    feature_codes TEXT    NOT NULL DEFAULT '{}',
    trunk         TEXT    NOT NULL DEFAULT '{}',
    params        TEXT    NOT NULL DEFAULT '{}',
    updated_at    BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE users (
    id                INTEGER PRIMARY KEY,
    username          TEXT    NOT NULL UNIQUE,
    first_name        TEXT    NOT NULL DEFAULT '',
    last_name         TEXT    NOT NULL DEFAULT '',
    email             TEXT    NOT NULL DEFAULT '',
    language          TEXT    NOT NULL DEFAULT '',
    directory_scope   TEXT    NOT NULL DEFAULT '',
    custom1           TEXT    NOT NULL DEFAULT '',
    custom2           TEXT    NOT NULL DEFAULT '',
    custom3           TEXT    NOT NULL DEFAULT '',
    kind              TEXT    NOT NULL DEFAULT 'person',
    responsible_email TEXT    NOT NULL DEFAULT '',
    status            TEXT    NOT NULL DEFAULT 'active',
    site_id           BIGINT  REFERENCES sites(id),
    password_hash     TEXT    NOT NULL DEFAULT '',
    login_ha1         TEXT    NOT NULL DEFAULT '',
    sip_password      TEXT    NOT NULL DEFAULT '',
    portal            TEXT    NOT NULL DEFAULT '',
    call_handling     TEXT    NOT NULL DEFAULT '',
    params            TEXT    NOT NULL DEFAULT '',
    created_at        BIGINT  NOT NULL DEFAULT 0,
    updated_at        BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX users_site ON users(site_id);

CREATE TABLE numbers (
    number  TEXT   PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id)
);
CREATE INDEX numbers_user ON numbers(user_id);

CREATE TABLE contacts (
    user_id    BIGINT  NOT NULL REFERENCES users(id),
    position   INTEGER NOT NULL,
    first_name TEXT    NOT NULL DEFAULT '',
    last_name  TEXT    NOT NULL DEFAULT '',
    number     TEXT    NOT NULL DEFAULT '',
    speed_dial INTEGER NOT NULL DEFAULT 0,
    label      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, position)
);

CREATE TABLE devices (
    id               INTEGER PRIMARY KEY,
    mac              TEXT    NOT NULL UNIQUE,
    vendor           TEXT    NOT NULL DEFAULT '',
    model            TEXT    NOT NULL DEFAULT '',
    firmware         TEXT    NOT NULL DEFAULT '',
    site_id          BIGINT  REFERENCES sites(id),
    assigned_user_id BIGINT  REFERENCES users(id),
    kind             TEXT    NOT NULL DEFAULT 'managed',
    status           TEXT    NOT NULL DEFAULT 'not_deployed',
    deployment_pin   TEXT    NOT NULL DEFAULT '',
    security_pin     TEXT    NOT NULL DEFAULT '',
    last_seen        BIGINT  NOT NULL DEFAULT 0,
    last_ip          TEXT    NOT NULL DEFAULT '',
    prov_user        TEXT    NOT NULL DEFAULT '',
    prov_password    TEXT    NOT NULL DEFAULT '',
    sip_user         TEXT    NOT NULL DEFAULT '',
    sip_password     TEXT    NOT NULL DEFAULT '',
    authorized       TEXT    NOT NULL DEFAULT '',
    params           TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL DEFAULT 0,
    updated_at       BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX devices_site ON devices(site_id);
CREATE INDEX devices_user ON devices(assigned_user_id);

CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY,
    user_id       BIGINT  REFERENCES users(id),
    device_id     BIGINT  REFERENCES devices(id),
    door          TEXT    NOT NULL DEFAULT '',
    started_at    BIGINT  NOT NULL DEFAULT 0,
    last_activity BIGINT  NOT NULL DEFAULT 0,
    persistent    INTEGER NOT NULL DEFAULT 0,
    ended_at      BIGINT  NOT NULL DEFAULT 0,
    end_reason    TEXT    NOT NULL DEFAULT '',
    sip_user      TEXT    NOT NULL DEFAULT '',
    sip_password  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id, started_at);
CREATE INDEX sessions_device ON sessions(device_id, started_at);
-- Partial indexes: "who is logged in here / where is she logged in" stay
-- fast however much ended history piles up.
CREATE INDEX sessions_active ON sessions(started_at) WHERE ended_at = 0;
CREATE INDEX sessions_user_active ON sessions(user_id) WHERE ended_at = 0;
CREATE INDEX sessions_device_active ON sessions(device_id) WHERE ended_at = 0;

CREATE TABLE bindings (
    aor        TEXT    NOT NULL,
    contact    TEXT    NOT NULL,
    instance   TEXT    NOT NULL DEFAULT '',
    reg_id     TEXT    NOT NULL DEFAULT '',
    call_id    TEXT    NOT NULL DEFAULT '',
    cseq       BIGINT  NOT NULL DEFAULT 0,
    expires    BIGINT  NOT NULL DEFAULT 0,
    q          REAL    NOT NULL DEFAULT 0,
    path       TEXT    NOT NULL DEFAULT '',
    source     TEXT    NOT NULL DEFAULT '',
    transport  TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    owner      TEXT    NOT NULL DEFAULT '',
    node       TEXT    NOT NULL DEFAULT '',
    updated_at BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (aor, contact)
);

CREATE TABLE uploads (
    owner      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    created_at BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, name, version)
);

CREATE TABLE leases (
    mac          TEXT   PRIMARY KEY,
    ip           TEXT   NOT NULL DEFAULT '',
    hostname     TEXT   NOT NULL DEFAULT '',
    vendor_class TEXT   NOT NULL DEFAULT '',
    expires      BIGINT NOT NULL DEFAULT 0,
    state        TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX leases_ip ON leases(ip);

CREATE TABLE call_records (
    id          INTEGER PRIMARY KEY,
    call_id     TEXT    NOT NULL DEFAULT '',
    owner       TEXT    NOT NULL DEFAULT '',
    user_id     BIGINT  NOT NULL DEFAULT 0,
    device_id   BIGINT  NOT NULL DEFAULT 0,
    session_id  TEXT    NOT NULL DEFAULT '',
    locked      INTEGER NOT NULL DEFAULT 0,
    from_number TEXT    NOT NULL DEFAULT '',
    to_number   TEXT    NOT NULL DEFAULT '',
    route       TEXT    NOT NULL DEFAULT '',
    result      INTEGER NOT NULL DEFAULT 0,
    start_at    BIGINT  NOT NULL DEFAULT 0,
    answer_at   BIGINT  NOT NULL DEFAULT 0,
    end_at      BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX call_records_user ON call_records(user_id, start_at);
CREATE INDEX call_records_start ON call_records(start_at);

CREATE TABLE audit_events (
    id     INTEGER PRIMARY KEY,
    at     BIGINT  NOT NULL,
    actor  TEXT    NOT NULL DEFAULT '',
    action TEXT    NOT NULL DEFAULT '',
    object TEXT    NOT NULL DEFAULT '',
    before_data TEXT NOT NULL DEFAULT '',
    after_data  TEXT NOT NULL DEFAULT '',
    remote TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit_events(at);
CREATE INDEX audit_object ON audit_events(object, at);

CREATE TABLE admins (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL DEFAULT '',
    created_at    BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL DEFAULT '',
    admin_id   BIGINT  NOT NULL REFERENCES admins(id),
    hash       TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_admin ON api_tokens(admin_id);
