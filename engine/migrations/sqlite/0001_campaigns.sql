-- Dialcast schema, first slice: organisations, trunks, scripts, campaigns,
-- records, attempts and the event outbox.
--
-- Portable on purpose: plain types (INTEGER/BIGINT, TEXT), timestamps as
-- BIGINT milliseconds since the Unix epoch (UTC), JSON kept in TEXT columns,
-- no SQLite-only functions. A PostgreSQL migration differs only in how ids are
-- generated (BIGINT GENERATED ALWAYS AS IDENTITY instead of INTEGER PRIMARY KEY).

CREATE TABLE organisations (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    default_country TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE trunks (
    id              INTEGER PRIMARY KEY,
    organisation_id BIGINT  NOT NULL REFERENCES organisations (id),
    name            TEXT    NOT NULL,
    uri             TEXT    NOT NULL,
    transport       TEXT    NOT NULL,
    max_cps         INTEGER NOT NULL,
    max_channels    INTEGER NOT NULL,
    caller_id       TEXT,
    UNIQUE (organisation_id, name)
);

CREATE TABLE scripts (
    id              INTEGER PRIMARY KEY,
    organisation_id BIGINT  NOT NULL REFERENCES organisations (id),
    name            TEXT    NOT NULL,
    file_name       TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (organisation_id, name)
);

-- A campaign is a script plus its settings; records are imported into it.
-- state: idle (records may be imported), running, paused, finished.
CREATE TABLE campaigns (
    id              INTEGER PRIMARY KEY,
    organisation_id BIGINT  NOT NULL REFERENCES organisations (id),
    name            TEXT    NOT NULL,
    script_id       BIGINT  NOT NULL REFERENCES scripts (id),
    trunk_id        BIGINT  NOT NULL REFERENCES trunks (id),
    state           TEXT    NOT NULL,
    max_attempts    INTEGER NOT NULL,
    retry_delay_ms  BIGINT  NOT NULL,
    ring_timeout_ms BIGINT  NOT NULL,
    max_call_ms     BIGINT  NOT NULL,
    amd             INTEGER NOT NULL,
    created_at      BIGINT  NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT,
    UNIQUE (organisation_id, name)
);

-- One person to reach. state: pending (waiting for next_attempt_at),
-- dialing (an attempt is in flight), done (final_status is set).
CREATE TABLE records (
    id               INTEGER PRIMARY KEY,
    campaign_id      BIGINT  NOT NULL REFERENCES campaigns (id),
    record_id        TEXT    NOT NULL,
    client_reference TEXT,
    fields_json      TEXT    NOT NULL,
    phones_json      TEXT    NOT NULL,
    import_line      BIGINT  NOT NULL,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    final_status     TEXT,
    imported_at      BIGINT  NOT NULL,
    UNIQUE (campaign_id, record_id)
);
CREATE INDEX records_due ON records (campaign_id, state, next_attempt_at);

-- One call attempt. An attempt row is written (state dialing) before its
-- INVITE leaves and is never dialled again: after a crash it becomes
-- interrupted and the record gets a new attempt under the normal rules.
-- dialled = 0 for numbers reported invalid without a call.
CREATE TABLE attempts (
    id             INTEGER PRIMARY KEY,
    record_id      BIGINT  NOT NULL REFERENCES records (id),
    attempt_no     INTEGER NOT NULL,
    number         TEXT    NOT NULL,
    dialled        INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    status         TEXT,
    sip_code       INTEGER,
    started_at     BIGINT  NOT NULL,
    answered_at    BIGINT,
    ended_at       BIGINT,
    ring_ms        BIGINT,
    talk_ms        BIGINT,
    success_point  INTEGER NOT NULL,
    success_at     BIGINT,
    amd            TEXT,
    dtmf           TEXT    NOT NULL,
    outputs_json   TEXT    NOT NULL,
    call_id        TEXT,
    UNIQUE (record_id, attempt_no)
);
CREATE INDEX attempts_state ON attempts (state);
CREATE INDEX attempts_started ON attempts (started_at);

-- Outbox: every event is written in the same transaction as the state change
-- it describes; publishers read it in id order.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    campaign_id  BIGINT  NOT NULL,
    record_id    BIGINT,
    attempt_id   BIGINT,
    kind         TEXT    NOT NULL,
    payload_json TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);
