-- Portal accounts, API keys and audit log (issue 7, first slice).
-- Tables are prefixed portal_ because they share the engine's database file.
-- Times are Unix seconds (UTC).

CREATE TABLE portal_organisations (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE portal_users (
    id                   INTEGER PRIMARY KEY,
    email                TEXT NOT NULL UNIQUE COLLATE NOCASE,
    -- argon2id PHC string.
    password_hash        TEXT NOT NULL,
    -- Set for a temporary password: it must be changed at first login.
    must_change_password INTEGER NOT NULL DEFAULT 1,
    -- When a temporary password stops working (14 days after it is issued).
    temp_expires_at      INTEGER,
    -- Passwords expire 6 months after this.
    password_changed_at  INTEGER NOT NULL,
    default_org_id       INTEGER REFERENCES portal_organisations(id),
    created_at           INTEGER NOT NULL
);

CREATE TABLE portal_memberships (
    user_id INTEGER NOT NULL REFERENCES portal_users(id),
    org_id  INTEGER NOT NULL REFERENCES portal_organisations(id),
    role    TEXT NOT NULL
        CHECK (role IN ('normal', 'dashboard', 'scheduler', 'file', 'manager')),
    -- Comma-separated module names granted to the user (paylink, emandate).
    modules TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, org_id)
);

CREATE TABLE portal_api_keys (
    id              INTEGER PRIMARY KEY,
    -- The public part of the key (dc_<prefix>_<secret>), to find the row.
    prefix          TEXT NOT NULL UNIQUE,
    -- SHA-256 of the whole key; the key itself is never stored.
    hash            BLOB NOT NULL,
    org_id          INTEGER NOT NULL REFERENCES portal_organisations(id),
    role            TEXT NOT NULL
        CHECK (role IN ('normal', 'dashboard', 'scheduler', 'file', 'manager')),
    name            TEXT NOT NULL DEFAULT '',
    -- Comma-separated CIDR blocks; empty means any address.
    cidrs           TEXT NOT NULL DEFAULT '',
    -- Who created it: "apikey:<id>", "user:<id>" or "cli".
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    last_used_at    INTEGER
);
CREATE INDEX portal_api_keys_org ON portal_api_keys (org_id);

CREATE TABLE portal_audit_log (
    id      INTEGER PRIMARY KEY,
    org_id  INTEGER NOT NULL REFERENCES portal_organisations(id),
    at      INTEGER NOT NULL,
    -- The credential that made the change ("apikey:<id>", "user:<id>", "cli").
    actor   TEXT NOT NULL,
    -- A stable name such as "apikey.create".
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX portal_audit_log_org_at ON portal_audit_log (org_id, at);
